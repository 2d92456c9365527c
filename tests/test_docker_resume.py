"""A Docker json-file line split at 16 KiB and the resume point (issue 12, item 5).

Docker writes a long line as several entries; only the last one ends in "\\n". The resume
point while pieces are held must be the start of the first piece: the real exporter killed
with SIGKILL between the pieces (state file), and the real forwarder killed between them
(the connection breaks mid-entry), both count the long line exactly once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import total, wait_for
from tests.test_checkpoint import Exporter
from tests.test_forwarder import (  # noqa: F401 - the fixtures forwarders, token_file
    append,
    docker_line,
    forwarders,
    source_up,
    token_file,
    upload_line,
    wait_counts,
)

PIECE = 16 * 1024


def long_entries(i: int) -> list[str]:
    """Upload line i, padded past 32 KiB, as the three json-file entries Docker writes."""
    line = upload_line(i)
    line = line[:-2] + ', "pad": "' + "x" * (2 * PIECE + 500) + '"}\n'
    pieces = [line[k:k + PIECE] for k in range(0, len(line), PIECE)]
    assert len(pieces) == 3 and pieces[-1].endswith("\n")
    return [json.dumps({"log": p, "stream": "stderr", "time": f"2026-08-20T10:15:03.{k}Z"}) + "\n"
            for k, p in enumerate(pieces)]


def test_exporter_killed_between_the_pieces_counts_the_long_line_once(tmp_path):
    log = tmp_path / "abc-json.log"
    pieces = long_entries(20)
    append(log, [docker_line(i) for i in range(20)] + pieces[:2])
    state = tmp_path / "state.json"
    exporter = Exporter(tmp_path, ["--node", f"n1:docker:{log}", "--from-start",
                                   "--state-file", str(state)])
    exporter.start()
    # this scrape saves the state: 20 lines counted, two pieces held
    wait_for(lambda: total(exporter.scrape() or {}, "storagenode_log_lines_total") == 20,
             what="20 lines")
    saved = json.loads(state.read_text())["nodes"]["n1"]["position"]
    exporter.kill9()
    append(log, pieces[2:] + [docker_line(i) for i in range(21, 30)])
    exporter.start()
    wait_for(lambda: total(exporter.scrape() or {}, "storagenode_transfers_total") >= 30,
             what="30 transfers")
    time.sleep(0.4)
    samples = exporter.scrape()
    exporter.stop()
    assert total(samples, "storagenode_transfers_total") == 30
    assert total(samples, "storagenode_log_lines_total") == 30
    assert total(samples, "storagenode_log_unparsed_lines_total") == 0
    assert saved["offset"] == sum(len(docker_line(i)) for i in range(20))  # the first piece


def test_connection_broken_between_the_pieces_counts_the_long_line_once(
    tmp_path: Path, token_file, forwarders, exporter_process  # noqa: F811
):
    log = tmp_path / "abc-json.log"
    log.touch()
    fwd = forwarders(["--log", f"n1=docker:{log}", "--token-file", str(token_file)])
    proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{fwd.port}",
                            "--forwarder-token-file", str(token_file))
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
    append(log, [docker_line(i) for i in range(20)])
    wait_counts(proc, 20)

    def received() -> float:
        return proc.samples()['storagenode_log_source_bytes_read_total{node="n1"}']

    before = received()
    pieces = long_entries(20)
    append(log, pieces[:2])
    # the pieces were read and their (empty) batch with its position reached the exporter
    wait_for(lambda: received() > before, what="the batch of the first pieces")
    fwd.kill()  # the connection breaks in the middle of the entry
    wait_for(lambda: source_up(proc) == 0, what="the lost connection")
    append(log, pieces[2:] + [docker_line(i) for i in range(21, 30)])
    fwd.start()
    wait_counts(proc, 30)
    assert total(proc.samples(), "storagenode_log_unparsed_lines_total") == 0
