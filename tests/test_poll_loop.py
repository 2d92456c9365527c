"""The shared poll loop (logstream/loop.py) with real files: idle sources back off instead of
polling at 10 Hz, a write wakes an idle source at once through inotify and within the idle
poll without it, one failing source is restarted alone, a removed one delivers nothing more.
The backoff constants are shortened so each case takes a second or two."""

from __future__ import annotations

import threading
import time

import pytest

from logstream import loop as loop_module
from logstream.file import FileSource
from logstream.loop import PollLoop
from tests.conftest import wait_for

BASE, IDLE_AFTER, MAX_INTERVAL = 0.05, 0.3, 0.8


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch):
    monkeypatch.setattr(loop_module, "IDLE_AFTER", IDLE_AFTER)
    monkeypatch.setattr(loop_module, "MAX_INTERVAL", MAX_INTERVAL)
    monkeypatch.setattr(loop_module, "IDLE_GRID", 0.1)


class Sink:
    """What a node runner does with batches, minus the parser."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.positions: list = []
        self.failures: list[BaseException] = []
        self.stop = threading.Event()

    def deliver(self, batch) -> None:
        self.lines.extend(batch.lines)
        if batch.position is not None:
            self.positions.append(batch.position)

    def failed(self, exc: BaseException) -> float:
        """As the node runner: resume from the last applied position, a little later."""
        self.failures.append(exc)
        self.source.resume = self.positions[-1]
        return 0.3


def tail(loop: PollLoop, path, source_class=FileSource) -> tuple[FileSource, Sink]:
    source = source_class(str(path), poll_interval=BASE, from_start=True)
    sink = Sink()
    sink.source = source
    sink.tail = loop.add(source, sink.deliver, sink.failed, sink.stop)
    return source, sink


def logs(tmp_path, count: int):
    paths = []
    for i in range(count):
        path = tmp_path / f"d{i}" / "node.log"
        path.parent.mkdir()
        path.write_text("")
        paths.append(path)
    return paths


def test_idle_sources_back_off(tmp_path):
    loop = PollLoop(events=False)
    sinks = [tail(loop, p)[1] for p in logs(tmp_path, 20)]
    wait_for(lambda: all(s.positions for s in sinks), what="every file opened")
    time.sleep(IDLE_AFTER + 4 * BASE + 0.2 + 0.4 + MAX_INTERVAL)  # at the longest poll now
    turns, wakeups = loop.turns, loop.wakeups
    time.sleep(2 * MAX_INTERVAL)
    # at most ~2 polls a source (10 Hz: 32 each), and idle polls share wakeups
    assert loop.turns - turns <= 20 * 3
    assert loop.wakeups - wakeups <= 2 * MAX_INTERVAL / 0.1 + 2
    for sink in sinks:
        loop.remove(sink.tail)


@pytest.mark.parametrize("events", [True, False])
def test_a_write_to_an_idle_file_is_read_soon(tmp_path, events):
    loop = PollLoop(events=events)
    path = logs(tmp_path, 1)[0]
    _, sink = tail(loop, path)
    wait_for(lambda: sink.positions, what="the file opened")
    time.sleep(IDLE_AFTER + 0.2 + 0.4 + MAX_INTERVAL)
    assert loop.inotify is events
    t0 = time.monotonic()
    with open(path, "a") as fh:
        fh.write("one line\n")
    wait_for(lambda: sink.lines == ["one line"], timeout=5, interval=0.005)
    took = time.monotonic() - t0
    # with inotify: the one-shot write watch; without: the idle poll bounds the delay
    assert took < (0.15 if events else MAX_INTERVAL + 0.15)
    loop.remove(sink.tail)


def test_a_failing_source_restarts_alone_from_the_last_delivered_line(tmp_path):
    class Flaky(FileSource):
        failed = False

        def make_batch(self, lines):
            if not Flaky.failed and "EXPLODE" in lines:
                Flaky.failed = True
                raise RuntimeError("a bug in the source")
            return super().make_batch(lines)

    loop = PollLoop()
    bad_path, good_path = logs(tmp_path, 2)
    _, bad = tail(loop, bad_path, Flaky)
    _, good = tail(loop, good_path)
    wait_for(lambda: bad.positions and good.positions, what="both files opened")
    with open(bad_path, "a") as fh:
        fh.write("a\nb\n")
    wait_for(lambda: bad.lines == ["a", "b"], what="the first lines")
    with open(bad_path, "a") as fh:
        fh.write("EXPLODE\nc\n")
    wait_for(lambda: bad.failures, what="the failure")
    with open(good_path, "a") as fh:
        fh.write("x\n")
    wait_for(lambda: good.lines == ["x"], what="the other source read on")
    wait_for(lambda: bad.lines == ["a", "b", "EXPLODE", "c"], what="the rest, once")
    loop.remove(bad.tail)
    loop.remove(good.tail)


def test_a_removed_source_delivers_nothing_more(tmp_path):
    loop = PollLoop()
    path = logs(tmp_path, 1)[0]
    source, sink = tail(loop, path)
    wait_for(lambda: sink.positions, what="the file opened")
    assert loop.remove(sink.tail)
    assert sink.tail.finished.is_set() and source._fd is None  # closed at once
    with open(path, "a") as fh:
        fh.write("late\n")
    time.sleep(3 * BASE)
    assert sink.lines == []
    assert source.resume["offset"] == 0  # where a restarted source would go on
