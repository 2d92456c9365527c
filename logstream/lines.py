"""Bytes -> complete lines, with a bound on line length.

Shared by every source that reads a byte stream (files, stdin). A line longer than
`max_line_bytes` is not kept in memory: its bytes are dropped up to the next newline and it
is delivered as an empty line, which the parser counts as unparsed, so nothing disappears
silently.
"""

from __future__ import annotations


class LineSplitter:
    __slots__ = ("_partial", "_skipping", "max_line_bytes", "oversized")

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self.max_line_bytes = max_line_bytes
        self._partial = b""
        self._skipping = False
        self.oversized = 0

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
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
            block = None
        else:
            block = self._blank_oversized(buf, cut)
            self._partial = buf[cut + 1 :]
        if len(self._partial) > self.max_line_bytes:
            self._partial = b""
            self._skipping = True
            self.oversized += 1
        if head:
            return b"" if block is None else head + block
        return block

    def _blank_oversized(self, buf: bytes, cut: int) -> bytes | memoryview:
        """buf[:cut] with the lines longer than max_line_bytes emptied. Such a line contains
        one of the points every max_line_bytes apart, so only the lines around those are
        measured. A view, not a copy, when there is nothing to empty."""
        limit = self.max_line_bytes
        keep: list[bytes] = []
        kept_to = 0
        point = 0
        while cut > limit and point < cut:
            start = buf.rfind(b"\n", 0, point) + 1
            end = buf.find(b"\n", point, cut)
            end = cut if end < 0 else end
            if end - start > limit:
                keep.append(buf[kept_to:start])
                kept_to = end
                self.oversized += 1
            point = max(point + limit, end + 1)
        if not keep:
            return memoryview(buf)[:cut]
        keep.append(buf[kept_to:cut])
        return b"".join(keep)

    def flush(self) -> list[str]:
        """The unterminated last line, when the stream is known to be finished (rotation)."""
        rest, self._partial = self._partial, b""
        if self._skipping:
            self._skipping = False
            return [""]
        return [rest.decode("utf-8", "replace")] if rest else []
