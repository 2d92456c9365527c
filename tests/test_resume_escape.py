"""A crafted resume point must not make the forwarder stream other files (issue 12, item 10).

The real forwarder serves node.log from a directory that also holds the node's config.yaml
(with a secret), a symlink named like a rotated log pointing at it, and a copy of it named
like a backup. An authenticated client (the exporter's own ForwarderSource, so the handshake
is the real one) resumes with positions naming config.yaml by inode, by a 1-byte or a full
fingerprint, through the symlink, with offsets out of range and values of the wrong type. The
forwarder streams only node.log, never a byte of config.yaml, logs one escaped line per
unusable position, and starts such a client as a new one (at the end of the log)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from exporter.sources.forwarder import ForwarderSource
from tests.test_forwarder import (  # noqa: F401 - the fixtures forwarders, token_file
    TOKEN,
    append,
    forwarders,
    token_file,
    upload_line,
)

SECRET = "api-secret: 7f3c1b9e-never-stream-me"


def _session(port: int, file_pos, log: Path, new_line: str) -> tuple[list[str], list]:
    """Resume with `file_pos`, append one line once the stream is ready, collect for a while."""
    src = ForwarderSource("127.0.0.1", port, "n1", token=TOKEN,
                          resume={"log": "n1", "file": file_pos}, backoff_initial=5)
    stop = threading.Event()
    lines: list[str] = []
    positions: list = []
    deadline = time.monotonic() + 3
    timer = threading.Timer(3, stop.set)
    timer.start()
    try:
        for batch in src.batches(stop):
            if not positions:
                append(log, [new_line])  # the stream is ready: a line for a "new client"
            positions.append(batch.position)
            lines.extend(batch.lines)
            if new_line.rstrip("\n") in lines or time.monotonic() > deadline:
                time.sleep(0.3)  # anything else that would come
                stop.set()
    finally:
        timer.cancel()
        stop.set()
    return lines, positions


@pytest.fixture
def served(tmp_path, token_file, forwarders):  # noqa: F811
    config = tmp_path / "config.yaml"
    config.write_text(f"{SECRET}\n" + "storage.allocated-disk-space: 1.00 TB\n" * 5)
    (tmp_path / "node.log.1").symlink_to(config)  # poses as a rotated log
    (tmp_path / "config.yaml.bak").write_bytes(config.read_bytes())
    log = tmp_path / "node.log"
    append(log, [upload_line(i) for i in range(5)])
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    return fwd, log, config


def test_crafted_resume_points_never_stream_other_files(served):
    fwd, log, config = served
    st = os.stat(config)
    head = config.read_bytes()[:64].hex()
    live = os.stat(log)
    crafted = {
        "config by inode, no fingerprint": {"dev": st.st_dev, "ino": st.st_ino, "offset": 0,
                                            "fingerprint": ""},
        "config by inode, 1-byte fingerprint": {"dev": st.st_dev, "ino": st.st_ino,
                                                "offset": 1, "fingerprint": head[:2]},
        "config by inode, full fingerprint": {"dev": st.st_dev, "ino": st.st_ino, "offset": 0,
                                              "fingerprint": head},
        "config by fingerprint, other inode": {"dev": st.st_dev, "ino": 1, "offset": 3,
                                               "fingerprint": head},
        "config by path": {"path": str(config), "dev": st.st_dev, "ino": st.st_ino,
                           "offset": 0, "fingerprint": head},
        "negative offset": {"dev": live.st_dev, "ino": live.st_ino, "offset": -5,
                            "fingerprint": ""},
        "absurd offset": {"dev": live.st_dev, "ino": live.st_ino, "offset": 10**30,
                          "fingerprint": ""},
        "offset as text": {"dev": live.st_dev, "ino": live.st_ino, "offset": "12",
                           "fingerprint": ""},
        "offset as bool": {"dev": live.st_dev, "ino": live.st_ino, "offset": True,
                           "fingerprint": ""},
        "fingerprint not hex": {"dev": live.st_dev, "ino": live.st_ino, "offset": 0,
                                "fingerprint": "zz\nforged log line"},
        "fingerprint a list": {"dev": live.st_dev, "ino": live.st_ino, "offset": 0,
                               "fingerprint": [1, 2]},
        "dev as text with a newline": {"dev": "1\ninjected: yes", "ino": 5, "offset": 0,
                                       "fingerprint": ""},
    }
    for n, (name, pos) in enumerate(crafted.items()):
        new_line = upload_line(100 + n)
        lines, positions = _session(fwd.port, pos, log, new_line)
        text = "\n".join(lines)
        assert SECRET not in text and "allocated-disk-space" not in text, name
        assert new_line.rstrip("\n") in lines, name  # started as a new client, at the end
        for p in positions:
            file_pos = (p or {}).get("file") or {}
            assert file_pos.get("path") == str(log), (name, p)
            assert head[:16] not in str(file_pos.get("fingerprint")), (name, p)
    logged = fwd.text()
    assert SECRET not in logged
    refusals = [ln for ln in logged.splitlines() if "ignoring a resume position" in ln]
    assert len(refusals) == len(crafted) - 1, logged
    # a well-formed position of a file that is not there (inode 1): as if rotated away and
    # deleted, the log itself is read from its start
    assert logged.count("is not among the log's files") == 1, logged
    for bad in ("\ninjected", "\nforged"):
        assert bad not in logged  # escaped, one line each


def test_the_log_itself_and_its_rotated_files_still_resume(served):
    """The rule keeps honest resumes working: the log at its saved offset, exactly."""
    fwd, log, _config = served
    live = os.stat(log)
    pos = {"path": str(log), "dev": live.st_dev, "ino": live.st_ino, "offset": live.st_size,
           "fingerprint": log.read_bytes()[:64].hex()}
    lines, positions = _session(fwd.port, pos, log, upload_line(50))
    assert lines == [upload_line(50).rstrip("\n")]
    assert positions[0]["file"]["offset"] == live.st_size
    assert "ignoring a resume position" not in fwd.text()
