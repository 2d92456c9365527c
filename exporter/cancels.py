"""One canceled transfer is one count, however many lines the node writes for it (issue 13).

storj/storj storagenode/piecestore/endpoint.go, since v1.86: a transfer canceled because the
uplink had enough pieces elsewhere logs INFO `upload canceled (race lost or node shutdown)` /
`download canceled (race lost or node shutdown)` and right after it, from the same goroutine,
a DEBUG `upload failed` / `download canceled` line with the error. At debug level that is two
lines for one transfer. v1.86-v1.98 write the piece ID alone on the INFO line (the DEBUG line
has every field); since v1.99 both lines carry every field (`log.With`).

`RaceLost` remembers the race-lost cancels counted in the last `WINDOW` seconds of log time
(at most `MAX` of them): a DEBUG failed/canceled line of the same piece (and action, when the
INFO line had one) within the window is that transfer's second line, and adds no count. The
table is saved in the checkpoint, so a restart between the two lines does not count twice.

`StartIndex` gives the v1.86-v1.98 INFO line its satellite and action: the newest `... started`
line of the same piece, when it was seen (those versions log them at INFO). It only runs once
a log has shown such a line (before that nothing pays for it), keeps the newest `capacity`
starts, and is not saved: after a restart the race-lost cancels of pieces started before it
count under `satellite="unknown"`, `action="unknown"` (a bounded, documented edge case: the
count stays exact, only the attribution is lost). Pieces are matched by piece ID alone: the
ID names one piece, and a piece is not uploaded and downloaded at the same moment.
"""

from __future__ import annotations

import itertools

#: seconds of log time between a race-lost line and the DEBUG line of the same transfer
WINDOW = 10.0
#: race-lost cancels remembered at once (at INFO level none is ever paired, they just age out)
MAX = 1000


class RaceLost:
    """piece -> (log time or None, action or None) of recent race-lost cancels, oldest first."""

    __slots__ = ("recent",)

    def __init__(self) -> None:
        self.recent: dict[str, tuple[float | None, str | None]] = {}

    def add(self, piece: str, when: float | None, action: str | None) -> None:
        recent = self.recent
        recent.pop(piece, None)  # the newest goes last
        while recent:
            oldest = next(iter(recent))
            then = recent[oldest][0]
            if len(recent) < MAX and (then is None or when is None or when - then <= WINDOW):
                break
            del recent[oldest]
        recent[piece] = (when, action)

    def absorb(self, piece: str, when: float | None, action: str) -> bool:
        """Is this DEBUG line the second line of a race-lost cancel counted already?"""
        entry = self.recent.get(piece)
        if entry is None:
            return False
        then, counted_action = entry
        if counted_action is not None and counted_action != action:
            return False
        if then is not None and when is not None and abs(when - then) > WINDOW:
            return False
        del self.recent[piece]
        return True


class StartIndex:
    """piece -> (satellite, action, remote address) of the newest `... started` lines."""

    __slots__ = ("capacity", "starts")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.starts: dict[str, tuple[str, str, str]] = {}

    def add(self, piece: str, satellite: str, action: str, remote: str) -> None:
        starts = self.starts
        starts.pop(piece, None)
        if len(starts) >= self.capacity:  # drop the oldest tenth
            for old in list(itertools.islice(starts, max(1, self.capacity // 10))):
                del starts[old]
        starts[piece] = (satellite, action, remote)

    def take(self, piece: str) -> tuple[str, str, str] | None:
        return self.starts.pop(piece, None)
