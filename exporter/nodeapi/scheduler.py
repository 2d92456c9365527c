"""One timer thread and a small worker pool for every node's API polls.

A thread per endpoint per node grew with the fleet (7 per node, 350 at 50 nodes) and the
satellite-dependent ones woke 5 times a second until the satellite list arrived. Here one
thread sleeps until the next due poll (a heap of due times) and hands it to WORKERS threads
that make the blocking HTTP requests.

Fairness: a job is rescheduled only after it ran, so an endpoint of a node has at most one
request in flight; a node has at most PER_OWNER requests in flight (its other due polls wait
for one of them). A node whose API hangs therefore holds at most PER_OWNER of the WORKERS
threads, each for at most its endpoint's timeout: other nodes' polls are delayed only while
more than WORKERS / PER_OWNER - 1 nodes hang at the same time, and then by at most the
longest timeout. With PER_OWNER = 2, a node's slow payout estimate and its node poll can
still run side by side. Due jobs of a lower `priority` go to the workers first (the poller
gives the node endpoint, which drives `storagenode_up`, priority 0), so with many big nodes
whose payout estimates take minutes a node poll waits only for a free worker, not behind
every queued estimate.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("exporter.nodeapi")

WORKERS = 4
PER_OWNER = 2


class Job:
    """One endpoint of one poller: `run()` polls and returns the next due time (monotonic),
    or None to park it (the owner schedules it again). `cancel()` ends it after a run under
    way."""

    __slots__ = ("cancelled", "name", "owner", "priority", "run")

    def __init__(self, owner: object, name: str, run: Callable[[], float | None],
                 priority: int = 1) -> None:
        self.owner, self.name, self.run, self.priority = owner, name, run, priority
        self.cancelled = False


class Scheduler:
    """The heap of due polls and the worker pool; threads start with the first job."""

    def __init__(self, workers: int = WORKERS, per_owner: int = PER_OWNER) -> None:
        self.workers, self.per_owner = workers, per_owner
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._work: queue.PriorityQueue[tuple[int, int, Job]] = queue.PriorityQueue()
        self._busy: dict[object, int] = {}  # owner -> jobs running or queued for a worker
        self._waiting: dict[object, deque[Job]] = {}  # owner -> due jobs over its limit
        self._threads: list[threading.Thread] = []

    def add(self, job: Job, due: float | None = None) -> None:
        """Run `job` at `due` (monotonic; default now)."""
        with self._cond:
            if not self._threads:
                self._start_threads()
            heapq.heappush(self._heap, (time.monotonic() if due is None else due,
                                        next(self._seq), job))
            self._cond.notify_all()  # the timer, not only a wait_idle caller

    def wait_idle(self, owner: object, timeout: float) -> bool:
        """Wait until none of `owner`'s jobs is running; False if one still is at `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy.get(owner):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _start_threads(self) -> None:
        for target, name, count in ((self._timer, "nodeapi-timer", 1),
                                    (self._worker, "nodeapi-worker", self.workers)):
            for i in range(count):
                thread = threading.Thread(target=target, daemon=True,
                                          name=f"{name}-{i}" if count > 1 else name)
                self._threads.append(thread)
                thread.start()

    def _timer(self) -> None:
        """Sleep until the next due job; hand due jobs to the workers (or their owner's
        waiting line when the owner is at its limit)."""
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    job = heapq.heappop(self._heap)[2]
                    if not job.cancelled:
                        self._dispatch(job)
                self._cond.wait(self._heap[0][0] - now if self._heap else None)

    def _dispatch(self, job: Job) -> None:
        """Under the lock: queue `job` for a worker, or behind its owner's running ones."""
        if self._busy.get(job.owner, 0) >= self.per_owner:
            self._waiting.setdefault(job.owner, deque()).append(job)
            return
        self._busy[job.owner] = self._busy.get(job.owner, 0) + 1
        self._work.put((job.priority, next(self._seq), job))

    def _worker(self) -> None:
        while True:
            job = self._work.get()[2]
            due = None
            try:
                if not job.cancelled:
                    due = job.run()
            except Exception:  # a bug must not end a worker shared by every node
                log.exception("node API poll %s crashed", job.name)
                due = time.monotonic() + 60.0
            with self._cond:
                owner = job.owner
                self._busy[owner] -= 1
                if not self._busy[owner]:
                    del self._busy[owner]
                line = self._waiting.get(owner)
                while line:  # the owner's next due job, skipping cancelled ones
                    nxt = line.popleft()
                    if not nxt.cancelled:
                        self._dispatch(nxt)
                        break
                if line is not None and not line:
                    del self._waiting[owner]
                if due is not None and not job.cancelled:
                    heapq.heappush(self._heap, (due, next(self._seq), job))
                self._cond.notify_all()  # the timer (new due time) and wait_idle callers


_shared: Scheduler | None = None
_shared_lock = threading.Lock()


def shared_scheduler() -> Scheduler:
    """The process's one scheduler for every NodeApiPoller."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Scheduler()
        return _shared
