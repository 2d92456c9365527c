"""One thread per node: source batches -> parser -> node state."""

from __future__ import annotations

import logging
import threading

from exporter.state import NodeState
from logstream.source import Source

log = logging.getLogger("exporter.runner")


class NodeRunner:
    """Feeds one node's log source into its state until stopped.

    A line that cannot be applied costs only itself (NodeState.feed). Should the source
    itself fail, it is restarted after `retry_delay` from the position of the last applied
    batch (`state.position`), so no line is read twice or skipped.
    """

    #: seconds between a source failure and its restart
    retry_delay = 5.0

    def __init__(self, name: str, source: Source, state: NodeState) -> None:
        self.name = name
        self.source = source
        self.state = state
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: set after each applied batch; tests and `demo` use it to wait for progress
        self.progress = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"node-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        state = self.state
        while not self._stop.is_set():
            try:
                for batch in self.source.batches(self._stop):
                    with state.lock:
                        state.feed(batch.lines, batch.read_time)
                        if batch.position is not None:
                            state.position = batch.position
                    self.progress.set()
                return
            except Exception:  # a bug must not kill the node's thread silently
                log.exception("node %s: reading %s failed; restarting the source in %.0f s "
                              "from the last applied line", self.name,
                              self.source.description, self.retry_delay)
                self.source.stats.up = False
                self._resume_from_state()
                self._stop.wait(self.retry_delay)

    def _resume_from_state(self) -> None:
        """Point a restartable source (one with a saved-position `resume`, as FileSource and
        DockerJsonSource have) at the last position applied to the state: a batch it read
        but failed to deliver must be read again, nothing before it."""
        with self.state.lock:
            position = self.state.position
        if position is not None and hasattr(self.source, "resume"):
            self.source.resume = position
