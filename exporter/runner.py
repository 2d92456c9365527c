"""A node's log source feeding its state: file sources through the shared poll loop, the
others (stdin, forwarder client, OTLP: they block on a pipe or a socket) in a thread each."""

from __future__ import annotations

import logging
import threading

from exporter.checkpoint import file_of
from exporter.state import NodeState
from logstream.loop import PollLoop, Tail, shared_loop
from logstream.source import Batch, PolledSource, Source

log = logging.getLogger("exporter.runner")


class NodeRunner:
    """Feeds one node's log source into its state until stopped.

    Each batch is applied under the state lock and its position recorded with it, so a
    checkpoint holds exactly the lines before that position. A line that cannot be applied
    costs only itself (NodeState.feed). Should the source itself fail, it is restarted after
    `retry_delay` from the position of the last applied batch (`state.position`), so no line
    is read twice or skipped; other nodes, in the same loop or not, go on.
    """

    #: seconds between a source failure and its restart
    retry_delay = 5.0

    def __init__(self, name: str, source: Source, state: NodeState,
                 loop: PollLoop | None = None) -> None:
        self.name = name
        self.source = source
        self.state = state
        self._loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tail: Tail | None = None
        #: set after each applied batch; tests and `demo` use it to wait for progress
        self.progress = threading.Event()
        #: set when a batch moves the node to another file (its first one, a rotation): the
        #: Checkpointer saves then at once, not only every few seconds
        self.file_changed: threading.Event | None = None

    def start(self) -> None:
        if isinstance(self.source, PolledSource):
            loop = self._loop or shared_loop()
            self._tail = loop.add(self.source, self._apply, self._failed, self._stop)
            self._loop = loop
            return
        self._thread = threading.Thread(target=self._run, name=f"node-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """After this returns (within `timeout`) no batch is applied any more."""
        self._stop.set()
        if self._tail is not None:
            self._loop.remove(self._tail, timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _apply(self, batch: Batch) -> None:
        state = self.state
        with state.lock:
            state.feed(batch.lines, batch.read_time)
            if batch.position is not None:
                if (self.file_changed is not None
                        and file_of(batch.position) != file_of(state.position)):
                    self.file_changed.set()
                state.position = batch.position
        self.progress.set()

    def _failed(self, exc: BaseException) -> float:
        """A bug in the source (or in applying a batch) must not go unnoticed nor stop the
        other nodes: log it, resume from the last applied line after `retry_delay`."""
        log.error("node %s: reading %s failed; restarting the source in %.0f s from the last "
                  "applied line", self.name, self.source.description, self.retry_delay,
                  exc_info=exc)
        self.source.stats.up = False
        self._resume_from_state()
        return self.retry_delay

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for batch in self.source.batches(self._stop):
                    self._apply(batch)
                return
            except Exception as exc:  # a bug must not kill the node's thread silently
                self._stop.wait(self._failed(exc))

    def _resume_from_state(self) -> None:
        """Point a restartable source (one with a saved-position `resume`, as FileSource and
        DockerJsonSource have) at the last position applied to the state: a batch it read
        but failed to deliver must be read again, nothing before it."""
        with self.state.lock:
            position = self.state.position
        if position is not None and hasattr(self.source, "resume"):
            self.source.resume = position
