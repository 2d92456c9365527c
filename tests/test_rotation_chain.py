"""Rotations while the exporter is down (issue 12, item 3): the real exporter with --state-file
is killed with SIGKILL, the test rotates the log the way logrotate does (renames with
numbering or dateext, gzip right away or delayed, copytruncate), and after the restart every
counter equals what `report` computes from all the log's files: no line lost, none twice."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import total, wait_for
from tests.test_checkpoint import Exporter, lines_counted, log_line, log_metrics, report


class Lines:
    """Appends numbered log lines; `next` is how many exist in the log's files."""

    def __init__(self, path: Path) -> None:
        self.path, self.next = path, 0
        self.lock = threading.Lock()
        self.partial = ""

    def append(self, n: int, half: bool = False) -> None:
        """n whole lines, then (half=True) the first half of the next one."""
        text = self.partial + "".join(log_line(i) for i in range(self.next, self.next + n))
        self.next += n
        self.partial = ""
        if half:
            line = log_line(self.next)
            text, self.partial = text + line[: len(line) // 2], line[len(line) // 2:]
            self.next += 1
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)


def gzip_file(path: Path) -> Path:
    """What gzip(1) does: path.gz with the same modification time, the original removed."""
    target = path.with_name(path.name + ".gz")
    st = path.stat()
    with open(path, "rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    path.unlink()
    return target


def logrotate(log: Path, *, compress: bool = False, delay: bool = False) -> None:
    """logrotate's numbering: node.log.N[.gz] -> N+1 (oldest first), node.log -> node.log.1,
    then gzip node.log.1 (compress) or node.log.2 (compress + delaycompress)."""
    numbered = []
    for path in log.parent.iterdir():
        rest = path.name[len(log.name) + 1:]
        if path.name.startswith(log.name + ".") and rest.split(".")[0].isdigit():
            numbered.append((int(rest.split(".")[0]), path))
    for n, path in sorted(numbered, reverse=True):
        os.rename(path, path.with_name(path.name.replace(f".{n}", f".{n + 1}", 1)))
    os.rename(log, log.with_name(log.name + ".1"))
    if compress:
        victim = log.with_name(log.name + (".2" if delay else ".1"))
        if victim.exists():
            gzip_file(victim)


def _log_files(tmp_path: Path) -> list[Path]:
    """The log's files, oldest first (the order `report` pairs started/finished lines in)."""
    def age(path: Path) -> tuple:
        rest = path.name[len("node.log"):].removesuffix(".gz")
        if not rest:
            return (1, 0)
        return (0, -int(rest[1:]) if rest[0] == "." else int(rest[1:]))
    return sorted((p for p in tmp_path.iterdir() if p.name.startswith("node.log")), key=age)


def _check(exporter: Exporter, lines: Lines, files: list[Path]) -> dict[str, float]:
    """Wait for every line, make sure nothing more comes, compare with `report`."""
    written = lines.next - (1 if lines.partial else 0)
    wait_for(lambda: lines_counted(exporter.scrape()) >= written, timeout=20,
             what=f"{written} lines")
    time.sleep(0.5)  # duplicates would arrive now
    live = exporter.scrape()
    logs = exporter.stop()
    assert "Traceback" not in logs
    expected = report(*files)
    assert lines_counted(expected) == written
    assert lines_counted(live) == written
    assert log_metrics(live) == log_metrics(expected)
    return live


def _twice(log: Path, lines: Lines) -> list[Path]:
    lines.append(10)
    logrotate(log)
    lines.append(10)
    logrotate(log)  # the saved file is node.log.2 now, node.log.1 is between
    lines.append(10)
    return _log_files(log.parent)


def _rename_then_gzip(log: Path, lines: Lines) -> list[Path]:
    lines.append(10)
    logrotate(log, compress=True)  # the saved file is node.log.1.gz
    lines.append(10)
    return _log_files(log.parent)


def _delaycompress_twice(log: Path, lines: Lines) -> list[Path]:
    lines.append(10)
    logrotate(log, compress=True, delay=True)
    lines.append(10)
    logrotate(log, compress=True, delay=True)  # saved: node.log.2.gz, then node.log.1
    lines.append(10)
    return _log_files(log.parent)


def _dateext_gzip(log: Path, lines: Lines) -> list[Path]:
    lines.append(10)
    os.rename(log, log.with_name("node.log-20261201"))
    lines.append(10)
    gzip_file(log.with_name("node.log-20261201"))
    os.rename(log, log.with_name("node.log-20261202"))
    lines.append(10)
    return _log_files(log.parent)


def _copytruncate_next_to_a_growing_copy(log: Path, lines: Lines) -> list[Path]:
    """A copy of the log that keeps growing (a backup, a tee) starts with the same bytes and
    is newer than the rotated file; it is not one of the log's rotated files."""
    lines.append(10)
    files = [log.with_name("node.log.1"), log]
    shutil.copyfile(log, files[0])
    os.truncate(log, 0)
    backup = log.with_name("node.log.bak")
    shutil.copyfile(files[0], backup)
    with open(backup, "a", encoding="utf-8") as fh:
        fh.write("".join(log_line(i) for i in range(100_000, 100_300)))
    lines.append(10)
    return files


@pytest.mark.parametrize("downtime", [_twice, _rename_then_gzip, _delaycompress_twice,
                                      _dateext_gzip, _copytruncate_next_to_a_growing_copy],
                         ids=lambda f: f.__name__.strip("_"))
def test_rotations_while_down_count_every_line_once(tmp_path, downtime):
    log = tmp_path / "node.log"
    lines = Lines(log)
    lines.append(300, half=True)  # a line half written when the exporter dies
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--from-start",
                                   "--state-file", str(tmp_path / "state.json")])
    exporter.start()
    # this scrape also saves the state: the position after line 299, before the half line
    wait_for(lambda: lines_counted(exporter.scrape()) == 300, what="300 lines")
    exporter.kill9()
    files = downtime(log, lines)
    exporter.start()
    _check(exporter, lines, files)
    assert "rotated while the exporter was not running" in exporter.err.read_text()


def test_crash_loop_with_a_rotation_in_each_downtime(tmp_path):
    """A node writing all the time; the exporter killed at random moments (also while it is
    still reading the rotated files), the log rotated (compress, delaycompress) while down."""
    log = tmp_path / "node.log"
    lines = Lines(log)
    lines.append(500)
    exporter = Exporter(tmp_path, ["--node", f"n1:{log}", "--from-start",
                                   "--state-file", str(tmp_path / "state.json")])
    seed = int(os.environ.get("CHECKPOINT_TEST_SEED") or random.randrange(1 << 30))
    print(f"kill moments: CHECKPOINT_TEST_SEED={seed}")  # shown when the test fails
    rng = random.Random(seed)
    done = threading.Event()

    def write() -> None:
        while not done.is_set():
            with lines.lock:
                lines.append(rng.randint(1, 20))
            time.sleep(0.005)

    writer = threading.Thread(target=write, daemon=True)
    try:
        exporter.start()
        writer.start()
        for cycle in range(4):
            time.sleep(rng.uniform(0.05, 0.8))
            exporter.kill9()
            with lines.lock:
                logrotate(log, compress=True, delay=cycle % 2 == 1)
            time.sleep(0.1)  # the node goes on writing into the new file
            exporter.start()
        time.sleep(0.3)
    finally:
        done.set()
        writer.join()
    live = _check(exporter, lines, _log_files(tmp_path))
    assert total(live, "storagenode_transfers_total", action="PUT", result="success") == sum(
        1 for i in range(lines.next) if i % 10 in (1, 2, 3))
    assert len(list(tmp_path.glob("node.log.*.gz"))) >= 2
