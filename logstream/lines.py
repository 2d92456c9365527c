"""Bytes -> complete lines, with a bound on line length.

Shared by every source that reads a byte stream (files, stdin). A line longer than
`max_line_bytes` is not kept in memory: its bytes are dropped up to the next newline and it
is delivered as an empty line, which the parser counts as unparsed, so nothing disappears
silently.
"""

from __future__ import annotations

from typing import BinaryIO


class LineSplitter:
    __slots__ = ("_buffer", "_partial", "_skipping", "max_line_bytes", "oversized")

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self.max_line_bytes = max_line_bytes
        self._partial = b""
        self._skipping = False
        self.oversized = 0
        self._buffer: bytearray | None = None  # read_block's, kept between calls

    @property
    def pending_bytes(self) -> int:
        """Bytes consumed from the stream that do not belong to a delivered line yet."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[str]:
        """Return the complete lines in `data` (plus what was held back before)."""
        block = self.feed_block(data)
        return [] if block is None else str(block, "utf-8", "replace").split("\n")

    def feed_block(self, data: bytes) -> bytes | memoryview | None:
        """The complete lines in `data` as one block: separated by b"\\n", without the last
        newline (so b"" is one empty line); None when no line is complete yet. For
        NodeState.feed_block, which reads the bytes without splitting them in Python.
        The block may be a view of the buffer: use it before the next call."""
        head = b""
        if self._skipping:
            cut = data.find(b"\n")
            if cut < 0:
                return None
            self._skipping = False
            head = b"\n"  # the end of the oversized line: one empty line
            data = data[cut + 1 :]
        buf = self._partial + data if self._partial else data
        return self._split(buf, 0, len(buf), head)

    def read_block(self, fh: BinaryIO, size: int) -> tuple[int, bytes | memoryview | None]:
        """`feed_block(fh.read(size))` without a new bytes object per read: the bytes go into
        one buffer kept for the next call, behind the held-back partial line. A fresh 1 MiB
        object a read cost `report` ~70k page faults on a 300 MB log (glibc gives the freed
        heap back and faults it in again). Returns (bytes read, block); 0 at the end."""
        held = len(self._partial)
        buf = self._buffer
        if buf is None or len(buf) < held + size:
            # with room for longer held-back lines than this one: each new buffer is zeroed
            buf = self._buffer = bytearray(held + size + (size >> 4))
        buf[:held] = self._partial
        with memoryview(buf) as view:
            n = fh.readinto(view[held : held + size]) or 0
        if n == 0:
            return 0, None
        start, end, head = 0, held + n, b""
        if self._skipping:  # nothing is held back while a line is skipped
            cut = buf.find(b"\n", 0, end)
            if cut < 0:
                return n, None
            self._skipping = False
            start, head = cut + 1, b"\n"
        return n, self._split(buf, start, end, head)

    def _split(self, buf: bytes | bytearray, start: int, end: int,
               head: bytes) -> bytes | memoryview | None:
        """The complete lines of buf[start:end] (see feed_block); the rest is held back."""
        cut = buf.rfind(b"\n", start, end)
        if cut < 0:
            self._partial = bytes(buf[start:end]) if isinstance(buf, bytearray) else buf[start:end]
            block = None
        else:
            block = self._blank_oversized(buf, start, cut)
            self._partial = bytes(buf[cut + 1 : end])
        if len(self._partial) > self.max_line_bytes:
            self._partial = b""
            self._skipping = True
            self.oversized += 1
        if head:
            return b"" if block is None else head + block
        return block

    def _blank_oversized(self, buf: bytes | bytearray, begin: int, cut: int) -> bytes | memoryview:
        """buf[begin:cut] with the lines longer than max_line_bytes emptied. Such a line
        contains one of the points every max_line_bytes apart, so only the lines around those
        are measured. A view, not a copy, when there is nothing to empty."""
        limit = self.max_line_bytes
        keep: list[bytes] = []
        kept_to = begin
        point = begin
        while cut - begin > limit and point < cut:
            nl = buf.rfind(b"\n", begin, point)
            start = nl + 1 if nl >= 0 else begin
            end = buf.find(b"\n", point, cut)
            end = cut if end < 0 else end
            if end - start > limit:
                keep.append(buf[kept_to:start])
                kept_to = end
                self.oversized += 1
            point = max(point + limit, end + 1)
        if not keep:
            return memoryview(buf)[begin:cut]
        keep.append(buf[kept_to:cut])
        return b"".join(keep)

    def flush(self) -> list[str]:
        """The unterminated last line, when the stream is known to be finished (rotation)."""
        rest, self._partial = self._partial, b""
        if self._skipping:
            self._skipping = False
            return [""]
        return [rest.decode("utf-8", "replace")] if rest else []
