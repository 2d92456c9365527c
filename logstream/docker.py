"""Docker json-file logs: `{"log":"<line>\\n","stream":"stdout","time":"<RFC3339 ns>"}`.

The wrapper is unwrapped without a full JSON parse (the C string scanner reads the `log`
value), lines Docker split at 16 KiB (pieces without a trailing newline) are joined, and
Docker's nanosecond `time` becomes the line's read time, a better clock than the node's
1-second timestamps. Lines that are not Docker wrappers are passed on as they are, so the
parser counts them as unparsed.
"""

from __future__ import annotations

import time
from datetime import datetime
from json.decoder import scanstring

from logstream.file import FileSource
from logstream.source import Batch

_PREFIX = '{"log":"'
_PREFIX_SPACED = '{"log": "'  # the same object written by other tools (json.dumps)
_TIME_KEY = '"time":'
MAX_JOINED = 1 << 20


class DockerTime:
    """Docker `time` -> epoch seconds, parsing the date part once per second."""

    __slots__ = ("_base", "_second")

    def __init__(self) -> None:
        self._second = ""
        self._base = 0.0

    def __call__(self, value: str) -> float | None:
        second = value[:19]
        if second != self._second:
            try:
                self._base = datetime.fromisoformat(second + "+00:00").timestamp()
            except ValueError:
                return None
            self._second = second
        frac = value[19:].rstrip("Z")
        if frac[:1] == ".":
            try:
                return self._base + float(frac)
            except ValueError:
                return self._base
        return self._base


def unwrap(raw: str) -> tuple[str, str] | None:
    """(inner text including its newline if any, time string) or None if not a wrapper."""
    if raw.startswith(_PREFIX):
        start = len(_PREFIX)
    elif raw.startswith(_PREFIX_SPACED):
        start = len(_PREFIX_SPACED)
    else:
        return None
    try:
        text, end = scanstring(raw, start)
    except ValueError:
        return None
    at = raw.find(_TIME_KEY, end)
    if at < 0:
        return text, ""
    at = raw.find('"', at + len(_TIME_KEY)) + 1
    return text, raw[at : raw.find('"', at)]


class DockerJsonSource(FileSource):
    """A json-file log. Its resume point is the start of an entry Docker split and we hold
    partly (`_joined`), so a restart or a broken connection reads all its pieces again."""

    def __init__(self, path: str, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.description = f"docker json-file {path}"
        self._clock = DockerTime()
        self._joined = ""
        self._joined_bytes = 0  # bytes in this file of the pieces held in _joined
        self._deferred: list[str] = []  # not-Docker lines met among the held pieces

    def held_bytes(self) -> int:
        return self.splitter.pending_bytes + self._joined_bytes

    def _file_switched(self) -> None:
        # pieces held from the old file cannot be re-read from a position in the new one
        self._joined_bytes = 0

    def _restart_reader(self) -> None:
        super()._restart_reader()
        self._joined, self._joined_bytes, self._deferred = "", 0, []

    def make_batch(self, lines: list[str]) -> Batch:
        out: list[str] = []
        times: list[float] = []
        clock = self._clock
        fallback = None
        for raw in lines:
            item = unwrap(raw)
            if item is None:
                if self._joined:  # inside a split entry: delivered after it, re-read with it
                    self._deferred.append(raw)
                    self._joined_bytes += len(raw.encode()) + 1
                    continue
                out.append(raw)  # not ours: the parser will count it as unparsed
                times.append(fallback or 0.0)
                continue
            text, stamp = item
            if text[-1:] != "\n":  # Docker split a long line: keep joining
                if len(self._joined) + len(text) <= MAX_JOINED:
                    self._joined += text
                    self._joined_bytes += len(raw.encode()) + 1
                else:  # too long to keep: the pieces so far are dropped
                    self._joined, self._joined_bytes = "", 0
                    self._flush_deferred(out, times, fallback)
                continue
            if self._joined:
                text, self._joined, self._joined_bytes = self._joined + text, "", 0
            when = clock(stamp) if stamp else None
            if when is not None:
                fallback = when
            out.append(text[:-1])
            times.append(when if when is not None else 0.0)
            self._flush_deferred(out, times, fallback)
        batch_time = fallback if fallback is not None else time.time()
        times = [t or batch_time for t in times]
        return Batch(out, times, self.position())

    def _flush_deferred(self, out: list[str], times: list[float], when: float | None) -> None:
        if self._deferred:
            out.extend(self._deferred)
            times.extend([when or 0.0] * len(self._deferred))
            self._deferred = []
