"""`--node NAME:otlp`: a node whose log arrives over OTLP/HTTP (exporter/otlp/).

The listener turns each request's records into lines and hands them to the node's source
through `HUB`; the node runner applies them like any other batch (NodeState.feed under the
state lock). The listener answers 200 only once every batch of the request is applied: the
generator below resumes after a `yield` only when the runner asks for the next batch, which
it does after applying the last one, so that is where a batch is marked done.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from logstream.source import Batch, Source

#: batches waiting for one node before the listener answers 503 (the sender retries)
MAX_PENDING = 32


class Delivery:
    """One request's lines for one node; `done` is set once the runner applied them."""

    __slots__ = ("batch", "done")

    def __init__(self, lines: list[str], times: list[float]) -> None:
        self.batch = Batch(lines, times, None)
        self.done = threading.Event()


class Hub:
    """Node name -> the running OTLP source of that node (a reload swaps them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, OtlpSource] = {}

    def attach(self, name: str, source: OtlpSource) -> None:
        with self._lock:
            self._sources[name] = source

    def detach(self, name: str, source: OtlpSource) -> None:
        with self._lock:
            if self._sources.get(name) is source:
                del self._sources[name]

    def names(self) -> set[str]:
        with self._lock:
            return set(self._sources)

    def submit(self, name: str, lines: list[str], times: list[float]) -> Delivery | None:
        """Queue lines for `name`; None when the node is not an OTLP node here or its
        queue is full (the caller answers 503 so the sender retries later)."""
        with self._lock:
            source = self._sources.get(name)
        if source is None:
            return None
        delivery = Delivery(lines, times)
        try:
            source.pending.put_nowait(delivery)
        except queue.Full:
            return None
        return delivery


HUB = Hub()


class OtlpSource(Source):
    """Lines pushed by the OTLP listener; no resume point (the sender keeps what we have not
    acknowledged, and counters are saved with --state-file as for every source)."""

    def __init__(self, name: str, hub: Hub = HUB) -> None:
        super().__init__()
        self.name = name
        self.hub = hub
        self.description = "OTLP/HTTP logs"
        self.pending: queue.Queue[Delivery] = queue.Queue(MAX_PENDING)
        # attached from the start: records that come before the runner runs wait for it
        # (a reload's new source replaces the old one here at once)
        hub.attach(name, self)

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        self.hub.attach(self.name, self)
        self.stats.up = True
        try:
            while not stop.is_set():
                try:
                    delivery = self.pending.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.stats.bytes_read += sum(len(line) + 1 for line in delivery.batch.lines)
                yield delivery.batch
                delivery.done.set()  # the runner applied it before asking for more
        finally:
            if stop.is_set():  # not when the runner restarts us after an error
                self.hub.detach(self.name, self)
            self.stats.up = False
