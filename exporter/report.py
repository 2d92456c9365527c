"""`storagenode-exporter report`: whole logs in, a success-rate table or exposition out.

The replacement for the community `successrate.sh`: one pass over each log (plain, `.gz`,
or a Docker json-file log as `docker:PATH`), the same parser and state as the live
exporter, so the numbers agree with /metrics. Also the benchmark entry point.
"""

from __future__ import annotations

import gc
import gzip
import os
import sys
import time
from typing import IO

from exporter import reporttable
from exporter.runner import NodeRunner
from exporter.state import NodeState
from logstream.docker import DockerJsonSource
from logstream.lines import LineSplitter
from logstream.source import Source

# One C batch a read: 4 MiB make fewer write-backs than 1 MiB (-2 % instructions on the bench
# log) for a peak RSS of 38 instead of 29 MiB.
CHUNK = 4 << 20


def open_log(path: str) -> IO[bytes]:
    """A log file for reading bytes, decompressed if it is gzip (by its magic bytes)."""
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")
    fh.seek(0)
    return fh


class Progress:
    """Bytes read, lines/s and time left on stderr, only when stderr is a terminal."""

    def __init__(self, name: str, total: int, enabled: bool) -> None:
        self.name, self.total, self.enabled = name, total, enabled
        self.started = self.last = time.monotonic()

    def update(self, done: int, lines: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and not force):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        left = (self.total - done) / rate if rate and self.total > done else 0
        sys.stderr.write(
            f"\r{self.name}: {done / 1e6:,.0f}/{self.total / 1e6:,.0f} MB read, "
            f"{lines / elapsed:,.0f} lines/s, {left:,.0f} s left   "
        )
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def read_whole(path: str, state: NodeState, source: Source, show_progress: bool) -> None:
    """Feed every line of `path` into `state` (log timestamps, no read times)."""
    docker = None
    if path.startswith("docker:"):
        path = path[len("docker:"):]
        docker = DockerJsonSource(path, watch=False)
    splitter = LineSplitter()
    progress = Progress(os.path.basename(path), os.path.getsize(path), show_progress)
    lines_done = 0
    with open_log(path) as fh:
        raw = getattr(fh, "fileobj", None) or fh  # compressed position for .gz
        while True:
            if docker is not None:
                data = fh.read(CHUNK)
                n = len(data)
                lines = splitter.feed(data)
                state.feed(docker.make_batch(lines).lines, None)
                lines_done += len(lines)
            else:  # one reused buffer, no bytes object a chunk
                n, block = splitter.read_block(fh, CHUNK)
                if block is not None:
                    lines_done += state.feed_block(block, None)
            if n == 0:
                break
            source.stats.bytes_read += n
            progress.update(raw.tell(), lines_done)
        rest = splitter.flush()
        state.feed(docker.make_batch(rest).lines if docker and rest else rest, None)
    source.stats.oversized_lines += splitter.oversized
    progress.update(progress.total, lines_done, force=True)


def build_states(nodes: list[tuple[str, str]], show_progress: bool, geo=None):
    # The imported modules live as long as the process: the collector need not walk them
    # again on every full collection while the logs are read (~1.5 % of a report's time).
    gc.freeze()
    runners: dict[str, NodeRunner] = {}
    for name, path in nodes:
        runner = runners.get(name)
        if runner is None:
            source = Source()
            source.stats.up = True
            recorder = geo(name) if geo else None
            runner = runners[name] = NodeRunner(name, source, NodeState(name, geo=recorder))
        read_whole(path, runner.state, runner.source, show_progress)
    return list(runners.values())


def exposition(runners: list[NodeRunner], extra_collectors=()) -> bytes:
    """The text exposition of the nodes' log metrics, then of `extra_collectors` (geo)."""
    from exporter.collector import LogCollector

    if all(hasattr(c, "text") for c in extra_collectors):  # generate_latest's bytes, as text
        return "".join(c.text() for c in (LogCollector(runners), *extra_collectors)).encode()
    from prometheus_client import CollectorRegistry, generate_latest  # (~50 ms to import)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LogCollector(runners))
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry)


def table(runners: list[NodeRunner], colour: bool | None = None) -> str:
    """successrate.sh-style text (exporter/reporttable.py); colour None: decided for stdout."""
    if colour is None:
        colour = reporttable.use_colour(sys.stdout)
    return reporttable.render([(r.name, r.state.snapshot()) for r in runners], colour)
