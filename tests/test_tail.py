"""The real exporter process tailing real files: rotation, truncation, waiting, bad input."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest

from tests.conftest import total, wait_for

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"


def upload_line(i: int) -> str:
    return (
        f'2026-08-20T10:15:03Z\tINFO\tpiecestore\tuploaded\t{{"process": "storagenode", '
        f'"piece_id": "P{i:051d}", "satellite_id": "{US1}", "action": "PUT", '
        f'"remote_address": "198.51.100.1:{1000 + i % 1000}", "size": {i}}}\n'
    )


def uploads(proc) -> float:
    return total(proc.samples(), "storagenode_transfers_total", action="PUT", result="success")


def source_up(proc) -> bool:
    return proc.samples().get('storagenode_log_source_up{node="n1"}') == 1.0


def append(path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(lines)


def test_starts_at_end_by_default(tmp_path, exporter_process):
    log = tmp_path / "node.log"
    append(log, [upload_line(i) for i in range(50)])
    proc = exporter_process("--node", f"n1:{log}")
    wait_for(lambda: source_up(proc), what="the file to be opened")
    append(log, [upload_line(i) for i in range(7)])
    wait_for(lambda: uploads(proc) == 7, what="7 new uploads")
    time.sleep(0.5)
    assert uploads(proc) == 7


def test_waits_for_missing_file(tmp_path, exporter_process):
    log = tmp_path / "later" / "node.log"
    log.parent.mkdir()
    proc = exporter_process("--node", f"n1:{log}")
    # the file must appear after the tailer found it missing (else it is tailed from its end)
    wait_for(lambda: "does not exist yet" in proc.logged(), what="the missing-file log line")
    assert proc.samples()['storagenode_log_source_up{node="n1"}'] == 0.0
    append(log, [upload_line(i) for i in range(3)])
    wait_for(lambda: uploads(proc) == 3, what="lines of the file that appeared")
    assert proc.samples()['storagenode_log_source_up{node="n1"}'] == 1.0
    log_text = proc.stop()
    assert log_text.count("does not exist yet") == 1


def _writer(path, count: int, rotate_at: set[int], rotate, delay: float = 0.002):
    def run():
        for i in range(count):
            if i in rotate_at:
                rotate()
            append(path, [upload_line(i)])
            time.sleep(delay)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _rename(log, n: int) -> None:
    os.rename(log, log.with_name(f"node.log.{n}"))


def _copytruncate(log, n: int) -> None:
    """logrotate copytruncate: copy, then truncate in place; the tailer starts over at 0."""
    shutil.copyfile(log, log.with_name(f"node.log.{n}"))
    os.truncate(log, 0)


@pytest.mark.parametrize(
    ("rotate", "at", "counter"),
    [(_rename, {150, 300, 450}, "rotations"), (_copytruncate, {200, 400}, "truncations")],
)
def test_rotation_while_writing(tmp_path, exporter_process, rotate, at, counter):
    log = tmp_path / "node.log"
    log.touch()
    proc = exporter_process("--node", f"n1:{log}")
    wait_for(lambda: source_up(proc), what="the file to be opened")
    done = []

    def rotate_next():
        done.append(1)
        rotate(log, len(done))

    _writer(log, 600, at, rotate_next).join()
    wait_for(lambda: uploads(proc) == 600, timeout=15, what="all 600 lines")
    time.sleep(1.2)
    samples = proc.samples()
    assert total(samples, "storagenode_transfers_total") == 600
    assert samples[f'storagenode_log_source_{counter}_total{{node="n1"}}'] == len(at)
    assert samples['storagenode_log_unparsed_lines_total{node="n1"}'] == 0.0


def test_bad_input_is_counted_and_the_process_goes_on(tmp_path, exporter_process):
    log = tmp_path / "node.log"
    log.touch()
    proc = exporter_process("--node", f"n1:{log}")
    wait_for(lambda: source_up(proc), what="the file to be opened")
    with open(log, "ab") as fh:
        fh.write(os.urandom(4096).replace(b"\n", b"x") + b"\n")  # binary garbage: 1 line
        fh.write(b"\xff\xfe invalid utf-8 \x80\n")  # 1 line
        fh.write(b"A" * (5 * 1024 * 1024) + b"\n")  # a 5 MB line
        fh.write(upload_line(1)[:80].encode() + b"\n")  # truncated JSON
        fh.write(b'2026-08-20T10:15:03Z\tINFO\tnew\tsomething nobody knows\t{"a": 1}\n')
        fh.write(upload_line(2).encode())
    wait_for(lambda: uploads(proc) == 1, what="the good line after the bad ones")
    samples = proc.samples()
    assert samples['storagenode_log_unparsed_lines_total{node="n1"}'] == 4.0
    assert samples['storagenode_log_oversized_lines_total{node="n1"}'] == 1.0
    assert total(samples, "storagenode_log_lines_total") == 2.0  # unknown message + upload
    assert proc.proc.poll() is None


def test_docker_json_file_with_split_lines(tmp_path, exporter_process):
    log = tmp_path / "abc-json.log"
    log.touch()
    proc = exporter_process("--node", f"n1:docker:{log}")
    wait_for(lambda: source_up(proc), what="the file to be opened")
    line = upload_line(5)[:-1]
    long_error = "x" * 40000  # Docker splits lines over 16 KiB into pieces without "\n"
    failed = (
        f'2026-08-20T10:16:04Z\tERROR\tpiecestore\tdownload failed\t{{"process": "storagenode", '
        f'"piece_id": "J", "satellite_id": "{US1}", "action": "GET_REPAIR", "offset": 0, '
        f'"size": 10, "remote_address": "198.51.100.10:4000", "error": "hashstore: file does '
        f'not exist", "errorVerbose": "{long_error}"}}\n'
    )
    entries = [{"log": line + "\n", "stream": "stdout", "time": "2026-08-20T10:15:03.5Z"}]
    for start in range(0, len(failed), 16384):
        entries.append({"log": failed[start:start + 16384], "stream": "stdout",
                        "time": "2026-08-20T10:16:04.123456789Z"})
    entries.append({"log": "downloading storagenode\n", "stream": "stdout",
                    "time": "2026-08-20T10:16:05Z"})
    append(log, [json.dumps(e) + "\n" for e in entries])
    wait_for(lambda: total(proc.samples(), "storagenode_transfers_total") == 2, what="2 transfers")
    samples = proc.samples()
    assert total(samples, "storagenode_transfer_errors_total", reason="file_not_found") == 1
    assert samples['storagenode_log_unparsed_lines_total{node="n1"}'] == 1.0
    assert total(samples, "storagenode_log_lines_total") == 2


def test_stdin_source(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, free_port, parse_exposition

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--node", "n1:-",
         "--web.listen-address", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    try:
        proc.stdin.write("".join(upload_line(i) for i in range(4)).encode())
        proc.stdin.flush()
        import urllib.request

        def count():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    return total(parse_exposition(r.read().decode()), "storagenode_transfers_total")
            except OSError:
                return None

        wait_for(lambda: count() == 4, what="4 lines from stdin")
    finally:
        proc.terminate()
        proc.wait(10)
