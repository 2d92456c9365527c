"""The contract every log source fulfils.

A source turns "somewhere a node writes its log" into batches of complete lines. The
exporter's node runner (exporter/runner.py) applies each batch to the node's state under the
state lock and then records `batch.position`, so a checkpoint always holds a position and the
counters that belong to exactly the lines before it; the forwarder (forwarder/tail.py) sends
each batch with its position, so the exporter can resume it the same way.

Sources that read files never need to block: they are `PolledSource`s, whose `steps()` does a
bounded amount of work per step and says when there is nothing to read now. The exporter
polls all of them from one thread (logstream/loop.py), however many nodes it tails; sources
that wait on a socket or a pipe (stdin, the forwarder client, OTLP) implement `batches()` and
keep a thread each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Batch:
    """Complete lines (no trailing newline) read together.

    `read_time` is the wall-clock time the lines were read (one float for the whole batch), or
    one float per line when the source knows better (Docker's `time`, the forwarder's read
    stamps). `position` is a JSON-serialisable resume point *after* the last line, or None for
    sources that cannot resume (stdin).
    """

    lines: list[str]
    read_time: float | list[float]
    position: dict[str, Any] | None = None


@dataclass
class SourceStats:
    """Counters a source keeps about itself; rendered as storagenode_log_source_* metrics."""

    up: bool = False
    bytes_read: int = 0
    rotations: int = 0
    truncations: int = 0
    reconnects: int = 0
    oversized_lines: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Source:
    """Base class: subclasses implement `batches()`; `stats` is read by the scrape thread."""

    #: Human-readable description for log lines ("file /var/log/node.log").
    description: str = "source"

    def __init__(self) -> None:
        self.stats = SourceStats()

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        """Yield batches until `stop` is set. Never raises for I/O problems: logs them,
        sets `stats.up = False`, and waits for the source to come back."""
        raise NotImplementedError


class PolledSource(Source):
    """A source read without blocking. `steps()` is the reading itself; `batches()` is the same
    reading for one caller with a thread of its own (the forwarder's client connections),
    sleeping `poll_interval` where there is nothing to read."""

    #: seconds between looks at a source with nothing new (the shared loop backs off from it)
    poll_interval: float = 0.1

    def steps(self, stop: threading.Event) -> Iterator[Batch | None]:
        """Yield batches, and None whenever there is nothing to read right now (the caller
        waits or moves on to another source). Each step does a bounded amount of work and
        never sleeps. Ends when `stop` is set; an exception ends it too, and a new `steps()`
        continues from `resume` (the position of the last delivered batch)."""
        raise NotImplementedError

    def watched(self) -> str | None:
        """The path whose filesystem events should wake this source early (None: poll only)."""
        return None

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        with closing(self.steps(stop)) as steps:
            for item in steps:
                if item is None:
                    stop.wait(self.poll_interval)
                else:
                    yield item
