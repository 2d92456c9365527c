"""Bytes -> complete text lines, with a bound on line length.

Shared by every source that reads a byte stream (files, stdin). A line longer than
`max_line_bytes` is not kept in memory: its bytes are dropped up to the next newline and it
is delivered as an empty string, which the parser counts as unparsed, so nothing disappears
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
        lines: list[str] = []
        if self._skipping:
            cut = data.find(b"\n")
            if cut < 0:
                return lines
            self._skipping = False
            lines.append("")
            data = data[cut + 1 :]
        buf = self._partial + data if self._partial else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
        else:
            text = buf[:cut].decode("utf-8", "replace")
            self._partial = buf[cut + 1 :]
            text_lines = text.split("\n")
            # only a long chunk can hold a line that is too long: then look (in C first)
            if cut > self.max_line_bytes and max(map(len, text_lines)) > self.max_line_bytes:
                for i, line in enumerate(text_lines):
                    if len(line) > self.max_line_bytes:
                        text_lines[i] = ""
                        self.oversized += 1
            lines.extend(text_lines)
        if len(self._partial) > self.max_line_bytes:
            self._partial = b""
            self._skipping = True
            self.oversized += 1
        return lines

    def flush(self) -> list[str]:
        """The unterminated last line, when the stream is known to be finished (rotation)."""
        rest, self._partial = self._partial, b""
        if self._skipping:
            self._skipping = False
            return [""]
        return [rest.decode("utf-8", "replace")] if rest else []
