"""The small tallies a NodeState keeps: histograms, the most requested pieces, log times.

Plain data with a few methods, read and written by the pure Python path and by the C path
(exporter/hotpath/*.c reads `Histogram.bounds/counts/sum` by attribute name, and counts
GETs in `NativeTopPieces.counts`, an exporter._hotpath.TopCounts).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import datetime

#: A piece ID as storagenodes log it: 32 bytes in base32, no padding (reference §1.4).
PIECE_ID = re.compile(r"[A-Z2-7]{52}")


class Histogram:
    """Bucket counts (not cumulative), count and sum, rendered cumulative at scrape time."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class TopPieces:
    """Approximate heavy hitters with bounded memory (Misra-Gries).

    Every tracked count is a lower bound of the true count, short by at most N/capacity.
    Only pieces requested at least twice are reported, so one-off downloads do not churn
    the `piece_id` label.
    """

    __slots__ = ("capacity", "counts")

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.counts: dict[str, int] = {}

    def add(self, piece: str) -> None:
        counts = self.counts
        if piece in counts:
            counts[piece] += 1
        elif len(counts) < self.capacity:
            counts[piece] = 1
        else:  # decrement everything; amortised O(1) since each unit is removed once
            kept = {p: c - 1 for p, c in counts.items() if c > 1}
            counts.clear()
            counts.update(kept)

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """The n most requested pieces; only well-formed piece IDs become label values."""
        # only counts of 2 and more are reported: sorting just those is ~6x cheaper at scrape
        items = sorted(self._frequent(), key=lambda kv: (-kv[1], kv[0]))
        out = []
        for piece, count in items:
            if len(out) == n:
                break
            if PIECE_ID.fullmatch(piece):
                out.append((piece, count))
        return out

    def _frequent(self) -> list[tuple[str, int]]:
        return [kv for kv in self.counts.items() if kv[1] > 1]


class NativeTopPieces(TopPieces):
    """TopPieces with its counts in C (exporter._hotpath.TopCounts: a mapping as the dict,
    add() its Misra-Gries), so that the C scan counts a GET without Python objects. The same
    counts as TopPieces for any sequence of adds (tests/test_hotpath_top.py)."""

    __slots__ = ()

    def __init__(self, capacity: int = 1000) -> None:
        from exporter._hotpath import TopCounts

        self.counts = TopCounts(capacity)  # type: ignore[assignment]

    @property  # type: ignore[override]
    def capacity(self) -> int:
        return self.counts.capacity  # type: ignore[attr-defined]

    @capacity.setter
    def capacity(self, value: int) -> None:
        self.counts.capacity = value  # type: ignore[attr-defined]

    def add(self, piece: str) -> None:
        self.counts.add(piece)  # type: ignore[attr-defined]

    def _frequent(self) -> list[tuple[str, int]]:
        return self.counts.frequent()  # type: ignore[attr-defined]


class TimestampCache:
    """Log timestamp string -> epoch seconds; consecutive lines share a second."""

    __slots__ = ("_last", "_value")

    def __init__(self) -> None:
        self._last = ""
        self._value = 0.0

    def __call__(self, ts: str) -> float | None:
        if ts == self._last:
            return self._value
        try:
            value = datetime.fromisoformat(ts).timestamp()
        except (ValueError, OverflowError, OSError):  # year 1 in local time, ...
            return None
        self._last, self._value = ts, value
        return value
