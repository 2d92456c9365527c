"""--state-file: the real exporter killed with SIGKILL at random moments, the log rotated
while it was down, and bad state files. At the end every counter equals what `report`
computes from the whole log, and no scraped counter ever went down."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, parse_exposition, total, wait_for

SATS = (
    "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S",
    "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs",
    "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6",
    "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE",
)
BASE = 1_787_000_000  # 2026-08-17: old log lines, so durations come from log timestamps


def _piece(kind: str, i: int) -> str:
    return f"{kind}{i:051d}"


def log_line(i: int, when: float | None = None) -> str:
    """Line number i of a synthetic storagenode log, timestamped `when` (default BASE + i):
    transfers of every result, started/finished pairs, an event, an unparsed line."""
    ts = datetime.fromtimestamp(BASE + i if when is None else when, UTC)
    ts_s = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    sat = SATS[i % 4]
    head = '{"process": "storagenode", '
    kind = i % 10
    if kind == 0:
        return (f'{ts_s}\tDEBUG\tpiecestore\tdownload started\t{head}"piece_id": '
                f'"{_piece("G", i)}", "satellite_id": "{sat}", "action": "GET", "offset": 0, '
                f'"size": {i * 7 % 9000}, "remote_address": "198.51.100.{i % 200}:4000"}}\n')
    if kind == 5:
        j = i - 5
        return (f'{ts_s}\tINFO\tpiecestore\tdownloaded\t{head}"piece_id": "{_piece("G", j)}", '
                f'"satellite_id": "{SATS[j % 4]}", "action": "GET", "offset": 0, '
                f'"size": {j * 7 % 9000}, "remote_address": "198.51.100.{j % 200}:4000"}}\n')
    if kind in (1, 2, 3):
        return (f'{ts_s}\tINFO\tpiecestore\tuploaded\t{head}"piece_id": "{_piece("U", i)}", '
                f'"satellite_id": "{sat}", "action": "PUT", "remote_address": '
                f'"203.0.113.{i % 250}:1000", "size": {i * 37 % 3_000_000}}}\n')
    if kind == 4:
        return (f'{ts_s}\tINFO\tpiecestore\tdownload canceled\t{head}"piece_id": '
                f'"{_piece("C", i)}", "satellite_id": "{sat}", "action": "GET_AUDIT", '
                f'"offset": 0, "size": 256, "remote_address": "198.51.100.9:4000", '
                f'"reason": "context canceled"}}\n')
    if kind == 6:
        return (f'{ts_s}\tERROR\tpiecestore\tdownload failed\t{head}"piece_id": '
                f'"{_piece("F", i)}", "satellite_id": "{sat}", "action": "GET_REPAIR", '
                f'"offset": 0, "size": 1159936, "remote_address": "198.51.100.10:4000", '
                f'"error": "hashstore: file does not exist", "errorVerbose": "x"}}\n')
    if kind == 7:
        return (f'{ts_s}\tERROR\tcontact:service\tping satellite failed \t{head}'
                f'"satellite_id": "{sat}", "attempts": 5, "error": "ping satellite: failed"}}\n')
    if kind == 8:
        return f"supervisor: storagenode output line {i}\n"  # unparsed
    return (f'{ts_s}\tINFO\tpiecestore\tuploaded\t{{"Process": "storagenode", "Piece ID": '
            f'"{_piece("T", i)}", "Satellite ID": "{sat}", "Action": "PUT_REPAIR", '
            f'"Remote Address": "203.0.113.1:1", "Size": {i % 5000}}}\n')


def report(*paths: Path) -> dict[str, float]:
    """What `storagenode-exporter report` computes from the whole log (the expected values)."""
    args = [sys.executable, "-m", "exporter", "report", "--format", "prometheus", "--no-progress"]
    for path in paths:
        args += ["--node", f"n1:{path}"]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return parse_exposition(out.stdout)


def log_metrics(samples: dict[str, float]) -> dict[str, float]:
    """The samples that come from log lines (not from how the source read them)."""
    return {
        k: v for k, v in samples.items()
        if k.startswith("storagenode_")
        and not k.startswith(("storagenode_log_source_", "storagenode_exporter_"))
    }


class Exporter:
    """The real `python -m exporter` on a fixed port, stderr kept in a file per start."""

    def __init__(self, tmp: Path, args: list[str]) -> None:
        self.tmp, self.args = tmp, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, scrape: bool = True) -> None:
        """Start and wait until it serves; scrape=False waits on /healthz only, so no scrape
        makes it write its state file."""
        self.starts += 1
        self.err = self.tmp / f"exporter-{self.starts}.log"
        with open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exporter", *self.args,
                 "--web.listen-address", f"127.0.0.1:{self.port}"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
            )
        wait_for(self.scrape if scrape else self.healthy, timeout=15,
                 what="the exporter to serve")

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"exporter exited: {self.err.read_text()}")
        try:
            with urllib.request.urlopen(self.url.replace("/metrics", "/healthz"), timeout=2):
                return True
        except OSError:
            return False

    def scrape(self) -> dict[str, float] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"exporter exited: {self.err.read_text()}")
        try:
            with urllib.request.urlopen(self.url, timeout=2) as r:
                return parse_exposition(r.read().decode())
        except OSError:
            return None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        return self.err.read_text()


class Writer(threading.Thread):
    """Appends numbered lines in small bursts, like a node; rotations happen under `lock`."""

    def __init__(self, path: Path, first: int) -> None:
        super().__init__(daemon=True)
        self.path, self.next = path, first
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.rng = random.Random(7)

    def run(self) -> None:
        while not self.done.is_set():
            with self.lock:
                n = self.rng.randint(1, 25)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write("".join(log_line(i) for i in range(self.next, self.next + n)))
                self.next += n
            time.sleep(0.004)


class Monitor(threading.Thread):
    """Scrapes all the time (also while the exporter is down) and records every decrease of
    a counter: Prometheus would take it for a reset."""

    def __init__(self, exporter: Exporter) -> None:
        super().__init__(daemon=True)
        self.exporter = exporter
        self.done = threading.Event()
        self.last: dict[str, float] = {}
        self.decreases: list[str] = []
        self.scrapes = 0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(self.exporter.url, timeout=2) as r:
                    samples = parse_exposition(r.read().decode())
            except OSError:
                time.sleep(0.02)
                continue
            self.scrapes += 1
            for key, value in samples.items():
                if key.startswith("storagenode_") and "_total" in key:
                    if value < self.last.get(key, 0):
                        self.decreases.append(f"{key}: {self.last[key]} -> {value}")
                    self.last[key] = value
            time.sleep(0.03)


def lines_counted(samples: dict[str, float] | None) -> float:
    if not samples:
        return -1
    return (total(samples, "storagenode_log_lines_total", node="n1")
            + total(samples, "storagenode_log_unparsed_lines_total", node="n1"))


def test_kill9_and_rotation_while_down_count_every_line_once(tmp_path):
    log = tmp_path / "node.log"
    state = tmp_path / "state.json"
    with open(log, "w", encoding="utf-8") as fh:  # a backlog to catch up on
        fh.write("".join(log_line(i) for i in range(4000)))
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--from-start",
                                   "--state-file", str(state)])
    seed = int(os.environ.get("CHECKPOINT_TEST_SEED") or random.randrange(1 << 30))
    print(f"kill moments: CHECKPOINT_TEST_SEED={seed}")  # shown when the test fails
    rng = random.Random(seed)
    writer = Writer(log, 4000)
    monitor = Monitor(exporter)
    try:
        exporter.start()
        writer.start()
        monitor.start()

        def crash_and_restart(while_down=None) -> None:
            time.sleep(rng.uniform(0.2, 1.2))
            exporter.kill9()
            time.sleep(0.2)
            if while_down is not None:
                with writer.lock:
                    while_down()
                time.sleep(0.2)
            exporter.start()

        def caught_up() -> None:
            written = writer.next
            wait_for(lambda: lines_counted(exporter.scrape()) >= written, timeout=20,
                     what=f"the exporter to count {written} lines")

        crash_and_restart()
        crash_and_restart()
        caught_up()
        crash_and_restart(lambda: os.rename(log, tmp_path / "node.log.1"))  # rename rotation

        def copytruncate() -> None:
            shutil.copyfile(log, tmp_path / "node.log.2")
            os.truncate(log, 0)

        caught_up()  # the saved position is in the new file before it is copytruncated
        crash_and_restart(copytruncate)
        crash_and_restart()
        writer.done.set()
        writer.join()
        written = writer.next
        wait_for(lambda: lines_counted(exporter.scrape()) == written, timeout=20,
                 what=f"all {written} lines counted")
        time.sleep(0.5)  # nothing more may come
        live = exporter.scrape()
    finally:
        writer.done.set()
        monitor.done.set()
        monitor.join()
        logs = exporter.stop()

    expected = report(tmp_path / "node.log.1", tmp_path / "node.log.2", log)
    assert lines_counted(expected) == written
    assert log_metrics(live) == log_metrics(expected)
    assert total(live, "storagenode_transfers_total", action="PUT", result="success") == sum(
        1 for i in range(written) if i % 10 in (1, 2, 3))
    assert total(live, "storagenode_log_unparsed_lines_total") == sum(
        1 for i in range(written) if i % 10 == 8)
    assert live['storagenode_log_source_rotations_total{node="n1"}'] >= 2
    assert monitor.scrapes > 20
    assert monitor.decreases == []
    assert "was rotated while the exporter was not running" in logs or any(
        "was rotated while the exporter was not running" in p.read_text()
        for p in tmp_path.glob("exporter-*.log"))
    assert "Traceback" not in "".join(p.read_text() for p in tmp_path.glob("exporter-*.log"))


# ---- killed before the first checkpoint (issue 12, item 4) -----------------------------------


def _lines_exactly(exporter: Exporter, n: int) -> None:
    wait_for(lambda: lines_counted(exporter.scrape()) >= n, what=f"{n} lines")
    time.sleep(0.4)  # and no more
    assert lines_counted(exporter.scrape()) == n


def test_kill9_before_the_first_checkpoint_loses_nothing(tmp_path):
    """No scrape, no periodic save yet: the starting position (the end of the log) must be
    on disk as soon as the file is open, or the restart reads from the new end."""
    log = _log_file(tmp_path)  # 1000 old lines: not counted without --from-start
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--state-file",
                                   str(tmp_path / "state.json")])
    exporter.start(scrape=False)
    time.sleep(0.5)  # the file is open
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(log_line(i) for i in range(1000, 1050)))
    time.sleep(0.3)
    exporter.kill9()  # about 1 s after the start, well before the 5 s save
    exporter.start()
    _lines_exactly(exporter, 50)
    assert "Traceback" not in exporter.stop()


@pytest.mark.parametrize("appears", ["while running", "while down"])
def test_a_log_that_appears_after_the_start_is_read_whole_across_a_kill9(tmp_path, appears):
    log = tmp_path / "node.log"
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--state-file",
                                   str(tmp_path / "state.json")])
    exporter.start(scrape=False)
    time.sleep(0.5)  # waiting for the file
    if appears == "while down":
        exporter.kill9()
    log.write_text("".join(log_line(i) for i in range(30)), encoding="utf-8")
    if appears == "while running":
        time.sleep(0.5)  # opened and read, nothing saved by a scrape or the 5 s timer
        exporter.kill9()
    exporter.start()
    _lines_exactly(exporter, 30)
    assert "Traceback" not in exporter.stop()


# ---- bad state files --------------------------------------------------------------------------


def _run_once(tmp_path: Path, log: Path, state: Path, *extra: str) -> str:
    """Start, count the whole log, stop with SIGTERM (final save); returns the log."""
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", *extra, "--from-start",
                                   "--state-file", str(state)])
    exporter.start()
    wait_for(lambda: lines_counted(exporter.scrape()) == 1000, what="1000 lines")
    if extra:
        wait_for(lambda: total(exporter.scrape(), "storagenode_log_lines_total", node="n2") > 0,
                 what="node n2's lines")
    return exporter.stop()


def _fresh_start_check(tmp_path: Path, log: Path, state: Path, bad: bytes, kind: str) -> None:
    state.write_bytes(bad)
    # without --from-start: a fresh start reads from the end, a resume would show 1000 lines
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--state-file", str(state)])
    exporter.start()
    wait_for(lambda: exporter.scrape()['storagenode_log_source_up{node="n1"}'] == 1,
             what="the log to be opened at its end")
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(log_line(i) for i in range(1000, 1010)))
    wait_for(lambda: lines_counted(exporter.scrape()) == 10, what="10 new lines only")
    logs = exporter.stop()
    aside = list(tmp_path.glob(f"state.json.{kind}-*"))
    assert len(aside) == 1, logs
    assert aside[0].read_bytes() == bad
    problem_lines = [ln for ln in logs.splitlines() if "is unusable" in ln]
    assert len(problem_lines) == 1, logs
    assert str(aside[0]) in problem_lines[0]
    assert "Traceback" not in logs
    assert json.loads(state.read_text())["version"] == 1  # a new good file was written


def _log_file(tmp_path: Path) -> Path:
    log = tmp_path / "node.log"
    log.write_text("".join(log_line(i) for i in range(1000)), encoding="utf-8")
    return log


def test_corrupt_state_file_is_set_aside(tmp_path):
    log = _log_file(tmp_path)
    _fresh_start_check(tmp_path, log, tmp_path / "state.json", os.urandom(300), "corrupt")


def test_truncated_state_file_is_set_aside(tmp_path):
    log, state = _log_file(tmp_path), tmp_path / "state.json"
    _run_once(tmp_path, log, state)
    good = state.read_bytes()
    _fresh_start_check(tmp_path, log, state, good[: len(good) // 2], "corrupt")


def test_newer_state_file_is_set_aside(tmp_path):
    log, state = _log_file(tmp_path), tmp_path / "state.json"
    _run_once(tmp_path, log, state)
    doc = json.loads(state.read_text())
    doc["version"] = 99
    _fresh_start_check(tmp_path, log, state, json.dumps(doc).encode(), "newer")


def test_unconfigured_node_is_dropped_and_the_others_resume(tmp_path):
    log, state = _log_file(tmp_path), tmp_path / "state.json"
    other = tmp_path / "other.log"
    other.write_text("".join(log_line(i) for i in range(50)), encoding="utf-8")
    _run_once(tmp_path, log, state, "--node", f"n2:{other}")
    assert set(json.loads(state.read_text())["nodes"]) == {"n1", "n2"}
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--state-file", str(state)])
    exporter.start()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(log_line(i) for i in range(1000, 1005)))
    wait_for(lambda: lines_counted(exporter.scrape()) == 1005, what="1000 saved + 5 new lines")
    samples = exporter.scrape()
    logs = exporter.stop()
    assert not any('node="n2"' in k for k in samples)
    assert [ln for ln in logs.splitlines() if "no longer configured" in ln] == [
        next(ln for ln in logs.splitlines() if "no longer configured: n2" in ln)]
    assert set(json.loads(state.read_text())["nodes"]) == {"n1"}
    assert list(tmp_path.glob("state.json.*-*")) == []


def _wakeups_per_second(pid: int, seconds: float = 2.0) -> float:
    from tests.test_api_threads import switches
    before, t0 = switches(pid), time.monotonic()
    time.sleep(seconds)
    return (switches(pid) - before) / (time.monotonic() - t0)


def test_an_idle_checkpointer_sleeps(tmp_path):
    """The saving thread waits for a file switch or its 5 s timer, not in a 50 ms loop: an
    idle exporter with --state-file wakes about as often as one without (issue 15)."""
    log = _log_file(tmp_path)
    plain = Exporter(tmp_path, ["--node", f"n1:{log}"])
    saving = Exporter(tmp_path, ["--node", f"n1:{log}", "--state-file",
                                 str(tmp_path / "state.json")])
    try:
        for exporter in (plain, saving):
            exporter.start(scrape=False)
        time.sleep(3.0)  # both idle: the log loop backed off
        extra = _wakeups_per_second(saving.proc.pid) - _wakeups_per_second(plain.proc.pid)
        print(f"\nwakeups a second added by the checkpointer: {extra:.1f}")
        assert extra < 8  # a 50 ms loop adds 20
    finally:
        plain.stop()
        saving.stop()
