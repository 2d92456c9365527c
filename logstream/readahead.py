"""Blocks of complete lines from a file, read by a second thread while the first parses.

Why: `report` spends ~10 % of its wall time in the kernel copying the file into its buffer
(`readinto`). The copy releases the GIL, so a reader thread can do it on another core while the
main thread scans the previous block in C. Two buffers go round: the reader fills one while the main
thread parses the other, which goes back to the reader only when the main thread asks for the
next block (so a block stays valid until then).

Each buffer keeps `ROOM` bytes in front of the data for the partial line held back from the
block before (LineSplitter.take_block), so a block is a view of the buffer, not a copy.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

from logstream.lines import LineSplitter

ROOM = 64 << 10  # longer partial lines are joined by a copy
_DONE = object()


class ReadAhead:
    """`for n, block in ReadAhead(fh, splitter, size)`: like LineSplitter.read_block in a loop
    (bytes read, then the block or None), with the reads done by a thread of its own."""

    def __init__(self, fh: BinaryIO, splitter: LineSplitter, size: int) -> None:
        self._fh, self._splitter, self._size = fh, splitter, size
        self._free: queue.Queue = queue.Queue()
        self._filled: queue.Queue = queue.Queue()
        for _ in range(2):
            self._free.put(None)  # allocated by the reader when first used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="readahead", daemon=True)

    def __iter__(self) -> Iterator[tuple[int, bytes | memoryview | None]]:
        self._thread.start()
        held = None
        try:
            while True:
                item = self._filled.get()
                if held is not None:  # the block before is done with: its buffer goes back
                    self._free.put(held)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                held, n = item
                yield n, self._splitter.take_block(held, ROOM, n)
        finally:
            self._stop.set()
            self._free.put(None)  # wakes a reader waiting for a buffer
            self._thread.join()

    def _read(self) -> None:
        try:
            while True:
                buf = self._free.get()
                if self._stop.is_set():
                    return
                if buf is None:
                    buf = bytearray(ROOM + self._size)
                with memoryview(buf) as view:
                    n = self._fh.readinto(view[ROOM : ROOM + self._size]) or 0
                if n == 0:
                    break
                self._filled.put((buf, n))
        except Exception as exc:  # handed to the parsing thread, raised there
            self._filled.put(exc)
            return
        self._filled.put(_DONE)
