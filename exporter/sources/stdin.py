"""Lines piped into the exporter (`--node NAME:-`), e.g. `docker logs -f node | …`."""

from __future__ import annotations

import os
import select
import sys
import threading
import time
from collections.abc import Iterator

from logstream.lines import LineSplitter
from logstream.source import Batch, Source


class StdinSource(Source):
    description = "stdin"

    def __init__(self, fd: int | None = None, max_line_bytes: int = 1 << 20) -> None:
        super().__init__()
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.splitter = LineSplitter(max_line_bytes)

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        self.stats.up = True
        while not stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                continue
            data = os.read(self.fd, 256 * 1024)
            if not data:  # end of input: deliver the last line and stop reading
                rest = self.splitter.flush()
                if rest:
                    yield Batch(rest, time.time())
                self.stats.up = False
                return
            self.stats.bytes_read += len(data)
            lines = self.splitter.feed(data)
            self.stats.oversized_lines = self.splitter.oversized
            if lines:
                yield Batch(lines, time.time())
