"""One thread per node: source batches -> parser -> node state."""

from __future__ import annotations

import logging
import threading

from exporter.sources.base import Source
from exporter.state import NodeState

log = logging.getLogger("exporter.runner")


class NodeRunner:
    """Feeds one node's log source into its state until stopped."""

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
                log.exception("node %s: reading %s failed; restarting the source",
                              self.name, self.source.description)
                self.source.stats.up = False
                self._stop.wait(5.0)
