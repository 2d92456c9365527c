"""One thread reads every file source of the process, backing off from idle ones.

Why: a thread and a 10 Hz poll per tailed log made an exporter with 50 nodes run 200 threads
and spend 2.7 % of a core doing nothing. Here every `PolledSource` (plain files, Docker
json-file logs, docker-name containers) is a `Tail` of one `PollLoop`:

* a source that delivered something in the last `IDLE_AFTER` seconds is looked at every
  `poll_interval` (0.1 s): a busy log costs what it did before, and never an event per line;
* once idle, a one-shot inotify watch is put on the file (logstream/notify.py) and the poll
  interval doubles up to `MAX_INTERVAL` (2 s). The first write after the quiet spell, or a
  create/rename/delete in the file's directory, wakes it at once and it is busy again. So a
  new line is read within about 0.1 s where inotify works, and within 2 s where it does not
  (NFS, SMB, no inotify): the idle poll is the bound;
* idle polls fall on a 0.25 s grid, so one wakeup of the loop serves many sources.

A source takes at most `TURN_BATCHES` batches per turn, so a backlog of one node does not
starve the others. An exception out of a source costs only that source: its `failed`
callback (the node runner) logs it, points it back at the last applied position and says
when to start it again; the other sources go on. `remove()` returns once no batch of that
source will be delivered any more (a node stopped by a reload).

The loop reads with plain blocking reads: a log on a hung network mount stalls every source
of the loop, where it used to stall only its own node.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable

from logstream.notify import DIR_EVENTS, IDLE_EVENTS, IN_IGNORED, IN_Q_OVERFLOW, Inotify
from logstream.source import Batch, PolledSource

log = logging.getLogger("exporter.source")

IDLE_AFTER = 1.0  # seconds without a batch before a source counts as idle
MAX_INTERVAL = 2.0  # the longest idle poll: the bound on a new line's delay without events
IDLE_GRID = 0.25  # idle polls are aligned to this, so one wakeup serves many sources
TURN_BATCHES = 16  # batches (up to 256 KiB each) a source delivers before the next one's turn
SLACK = 0.02  # sources due within this are served in the same wakeup
FAILED_DELAY = 5.0  # restart delay when the failure callback itself fails


class Tail:
    """One source in the loop: its reading (a `steps()` generator) and its schedule."""

    def __init__(self, source: PolledSource, deliver: Callable[[Batch], None],
                 failed: Callable[[BaseException], float], stop: threading.Event) -> None:
        self.source = source
        self.deliver = deliver
        self.failed = failed
        self.stop = stop
        self.steps = None  # created at the first turn and again after a failure
        self.lock = threading.Lock()  # held while the loop reads it; remove() waits for it
        self.closed = False
        self.finished = threading.Event()  # the reading ended (stopped, or the source ended)
        now = time.monotonic()
        self.due = now
        self.last_data = now
        self.interval = source.poll_interval
        self.rest_until = 0.0  # after a failure: not started again before (events included)
        self.path: str | None = None  # the path its directory watch is for
        self.armed: int | None = None  # the one-shot watch on its idle file


class PollLoop:
    """The shared reader; `add()` a source, `remove()` it. Its thread starts with the first."""

    def __init__(self, name: str = "logstream-poll", *, events: bool = True) -> None:
        """`events=False`: poll only, as where inotify is missing (tests, benchmarks)."""
        self.name = name
        self._events_wanted = events
        self._lock = threading.Lock()
        self._tails: list[Tail] = []
        self._thread: threading.Thread | None = None
        self._notify: Inotify | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._dirs: dict[str, int] = {}  # directory -> watch
        self._names: dict[int, dict[str, set[Tail]]] = {}  # directory watch -> file -> tails
        self._dir_of: dict[int, str] = {}
        self._files: dict[int, set[Tail]] = {}  # one-shot watch -> tails
        #: wakeups and turns, for tests and benchmarks
        self.wakeups = 0
        self.turns = 0

    @property
    def inotify(self) -> bool:
        return self._notify is not None

    def add(self, source: PolledSource, deliver: Callable[[Batch], None],
            failed: Callable[[BaseException], float], stop: threading.Event) -> Tail:
        """Read `source` from now on; `deliver` gets each batch in order (in the loop's
        thread), `failed` an exception out of the source and returns the seconds until it
        is started again."""
        tail = Tail(source, deliver, failed, stop)
        with self._lock:
            self._tails.append(tail)
            if self._thread is None:
                self._notify = Inotify.open() if self._events_wanted else None
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._poke()
        return tail

    def remove(self, tail: Tail, timeout: float = 5.0) -> bool:
        """Stop reading `tail`; once this returns True none of its batches is delivered any
        more and its reading is closed (its position kept in `source.resume`)."""
        tail.stop.set()
        locked = tail.lock.acquire(timeout=timeout)
        try:
            tail.closed = True
            with self._lock:
                if tail in self._tails:
                    self._tails.remove(tail)
                self._unwatch(tail)
            if locked:
                self._close(tail)
        finally:
            if locked:
                tail.lock.release()
        self._poke()
        return locked

    # ---- the loop ------------------------------------------------------------------------

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while True:
            try:
                self._once()
            except Exception:  # a bug here would silently end every node's reading
                log.exception("the log poll loop failed; going on in 1 s")
                time.sleep(1.0)

    def _once(self) -> None:
        """Serve the sources that are due, then wait for the next one or an event."""
        now = time.monotonic()
        with self._lock:
            tails = list(self._tails)
        for tail in tails:
            if tail.due <= now + SLACK:
                self._turn(tail)
        with self._lock:
            due = min((t.due for t in self._tails), default=None)
        timeout = None if due is None else max(0.0, due - time.monotonic())
        fds = [self._wake_r] if self._notify is None else [self._wake_r, self._notify.fd]
        ready, _, _ = select.select(fds, [], [], timeout)
        self.wakeups += 1
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        if self._notify is not None and self._notify.fd in ready:
            self._events()

    def _turn(self, tail: Tail) -> None:
        """Read what `tail` has now (at most TURN_BATCHES batches) and schedule its next look."""
        if not tail.lock.acquire(blocking=False):
            return  # being removed
        try:
            if tail.closed:
                self._close(tail)  # removed while this turn waited (remove() timed out)
                return
            self.turns += 1
            delivered, more = 0, False
            try:
                if tail.steps is None:
                    tail.steps = tail.source.steps(tail.stop)
                for item in tail.steps:
                    if item is None:
                        break
                    if tail.closed:
                        self._close(tail)
                        return
                    tail.deliver(item)
                    delivered += 1
                    if delivered >= TURN_BATCHES:
                        more = True
                        break
                else:  # the reading ended: stopped, or a source with nothing more to read
                    tail.steps = None
                    self._finish(tail)
                    return
                self._watch(tail)
            except Exception as exc:  # one source's bug stops only that source
                steps, tail.steps = tail.steps, None
                if steps is not None:  # raised by `deliver`: the reading is still open
                    with contextlib.suppress(Exception):
                        steps.close()
                self._failed(tail, exc)
                return
            self._schedule(tail, delivered, more)
        finally:
            tail.lock.release()

    def _failed(self, tail: Tail, exc: BaseException) -> None:
        try:
            delay = tail.failed(exc)
        except Exception:  # keep the loop alive whatever the callback does
            log.exception("handling the failure of %s failed", tail.source.description)
            delay = FAILED_DELAY
        now = time.monotonic()
        tail.due = tail.rest_until = now + delay
        tail.last_data, tail.interval = now, tail.source.poll_interval

    def _finish(self, tail: Tail) -> None:
        tail.closed = True
        with self._lock:
            if tail in self._tails:
                self._tails.remove(tail)
            self._unwatch(tail)
        tail.finished.set()

    def _close(self, tail: Tail) -> None:
        steps, tail.steps = tail.steps, None
        if steps is not None:
            try:
                steps.close()  # runs the source's cleanup: position kept, file closed
            except Exception:
                log.exception("closing %s failed", tail.source.description)
        tail.finished.set()

    def _schedule(self, tail: Tail, delivered: int, more: bool) -> None:
        now = time.monotonic()
        base = tail.source.poll_interval
        if more:
            tail.due = now
            return
        if delivered:
            tail.last_data, tail.interval, tail.due = now, base, now + base
            return
        if now - tail.last_data < IDLE_AFTER:
            tail.due = now + base
            return
        if tail.armed is None and self._arm(tail):
            tail.due = now  # once more: a line written just before the watch existed
            return
        tail.interval = min(max(tail.interval * 2, base), max(MAX_INTERVAL, base))
        aligned = math.floor((now + tail.interval) / IDLE_GRID) * IDLE_GRID
        tail.due = max(now + base, aligned)

    # ---- filesystem events -----------------------------------------------------------------

    def _watch(self, tail: Tail) -> None:
        """Keep the directory watch on the path the source reads now (docker-name switches)."""
        if self._notify is None:
            return
        path = tail.source.watched()
        if path == tail.path:
            return
        with self._lock:
            if tail.closed:
                return
            self._unwatch(tail)
            if path is None:
                return
            directory, name = os.path.split(os.path.abspath(path))
            wd = self._dirs.get(directory)
            if wd is None:
                wd = self._notify.add(directory, DIR_EVENTS)
                if wd is None:
                    return  # not there yet: tried again at the next turn
                self._dirs[directory], self._dir_of[wd] = wd, directory
            self._names.setdefault(wd, {}).setdefault(name, set()).add(tail)
            tail.path = path

    def _arm(self, tail: Tail) -> bool:
        """Put the one-shot watch for its next write on the idle source's file."""
        if self._notify is None or tail.path is None:
            return False
        wd = self._notify.add(tail.path, IDLE_EVENTS)
        if wd is None:
            return False
        with self._lock:
            if tail.closed:
                return False
            self._files.setdefault(wd, set()).add(tail)
            tail.armed = wd
        return True

    def _unwatch(self, tail: Tail) -> None:
        """Drop the tail's watches (under self._lock); a watch nobody needs is removed."""
        if tail.armed is not None:
            users = self._files.get(tail.armed)
            if users is not None:
                users.discard(tail)
                if not users:
                    del self._files[tail.armed]
                    self._notify.remove(tail.armed)
            tail.armed = None
        if tail.path is None:
            return
        directory, name = os.path.split(os.path.abspath(tail.path))
        tail.path = None
        wd = self._dirs.get(directory)
        names = self._names.get(wd)
        if names is None or name not in names:
            return
        names[name].discard(tail)
        if not names[name]:
            del names[name]
        if not names:
            self._drop_dir(wd)
            self._notify.remove(wd)

    def _drop_dir(self, wd: int) -> None:
        self._names.pop(wd, None)
        directory = self._dir_of.pop(wd, None)
        if directory is not None:
            self._dirs.pop(directory, None)

    def _events(self) -> None:
        woken: set[Tail] = set()
        with self._lock:
            for wd, mask, name in self._notify.read():
                if mask & IN_Q_OVERFLOW:
                    woken.update(self._tails)
                    continue
                armed = self._files.pop(wd, None)
                if armed:
                    for tail in armed:
                        tail.armed = None
                    woken.update(armed)
                names = self._names.get(wd)
                if names is None:
                    continue
                if mask & IN_IGNORED:  # the directory went away: watched again once back
                    for tails in names.values():
                        for tail in tails:
                            tail.path = None
                            woken.add(tail)
                    self._drop_dir(wd)
                elif name in names:
                    woken.update(names[name])
        now = time.monotonic()
        for tail in woken:
            tail.interval, tail.last_data = tail.source.poll_interval, now
            tail.due = max(now, tail.rest_until)


_shared: PollLoop | None = None
_shared_lock = threading.Lock()


def shared_loop() -> PollLoop:
    """The process's one loop (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PollLoop()
        return _shared
