"""Wait for signals in the main thread, whichever thread the kernel hands them to.

A Python signal handler runs in the main thread, and only once that thread executes bytecode.
A main thread blocked for good in `Event.wait()` sleeps on a lock; when the kernel delivers the
signal to one of the other threads (HTTP connections, tailers), nothing wakes it, and the
handler waits for bytecode that never comes. Seen: a SIGHUP that never reloaded while HTTPS
clients were connecting, and a SIGTERM can be lost the same way (`docker stop` then kills the
process after its grace period, with no final state save). The C-level handler writes the
signal's number to the `signal.set_wakeup_fd` socket in whichever thread it ran, so the main
thread sleeps in `poll()` on that socket instead.
"""

from __future__ import annotations

import collections
import select
import signal
import socket
import time
from collections.abc import Iterable


def _ignore(_signum, _frame) -> None:
    """A Python handler must be set for the C handler to catch the signal; the work is done
    by `SignalWaiter.wait` in the main thread."""


class SignalWaiter:
    """Catch `signals` and hand them out, in the order they came, to `wait()`. Construct it
    and call `wait()` in the main thread (`signal.set_wakeup_fd` refuses other threads)."""

    def __init__(self, signals: Iterable[int]) -> None:
        self.signals = frozenset(signals)
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(),
                                                 warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, _ignore) for sig in self.signals}
        self._poll = select.poll()
        self._poll.register(self._read, select.POLLIN)
        self._queue: collections.deque[int] = collections.deque()

    def wait(self, timeout: float | None = None) -> int | None:
        """The next caught signal's number, or None when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._queue:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._poll.poll(None if left is None else left * 1000):
                return None
            try:
                data = self._read.recv(4096)
            except BlockingIOError:
                continue
            self._queue.extend(sig for sig in data if sig in self.signals)
        return self._queue.popleft()

    def close(self) -> None:
        """Give back the handlers and wakeup fd there were before."""
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._read.close()
        self._write.close()
