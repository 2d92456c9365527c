"""Per-node counters kept as plain Python data, updated per parsed line.

No prometheus_client object is touched per line (reference performance-anchors.md: a dict
increment costs ~0.3 µs, a labelled client call ~2.2 µs). `LogCollector` renders this state
at scrape time. Writers hold `NodeState.lock` for a whole batch; the scrape thread takes the
same lock only long enough to copy what it renders.

Hostile input (issue 12): every label value comes from a closed set or is checked once, when
it is first seen (`_new_satellite`, on the dict miss the common line never takes), and a
line whose application raises anyway costs only itself (`feed`, `_line`).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Callable

from exporter import events, housekeeping, parser, prefixes, reasons
from exporter.cancels import RaceLost, StartIndex
from exporter.housekeeping import HOUSE_BUCKETS, SATELLITE_METRICS
from exporter.parser import (
    COMMON_LINE_RE,
    HOUSE,
    MAX_PIECE_SIZE,
    OTHER,
    START,
    UNKNOWN,
    available_space,
    common_prefixed_re,
    parse_line,
)
from exporter.reasons import RACE_LOST
from exporter.satellites import INVALID, MAX_SATELLITES, OVERFLOW, SATELLITES
from exporter.tallies import Histogram, NativeTopPieces, TimestampCache, TopPieces

log = logging.getLogger("exporter.state")

ACTIONS = ("GET", "GET_AUDIT", "GET_REPAIR", "PUT", "PUT_REPAIR")
RESULTS = ("success", "canceled", "failed")
INGRESS_ACTIONS = frozenset({"PUT", "PUT_REPAIR"})

# Piece sizes: storj pieces run from a few bytes up to ~2.3 MiB (64 MiB segment / 29).
SIZE_BUCKETS: tuple[float, ...] = (
    1024, 4096, 16384, 65536, 262144, 524288, 1048576, 2097152, 4194304,
)
# Transfer durations: read-time precision when tailing live, 1 s when read from old logs.
DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
)
#: housekeeping counters stop here (statefile.MAX_VALUE): hostile lines cannot overflow them
HOUSE_MAX = 10**18
#: starts remembered by piece for the v1.86-v1.98 race-lost lines (seconds apart in practice)
START_INDEX_MAX = 10_000


def _native() -> tuple[Callable | None, Callable[[], dict] | None]:
    """exporter._hotpath's scan and Pending when the C extension was built (it is optional),
    unless STORAGENODE_EXPORTER_PURE_PYTHON is set; (None, None) means the pure Python path."""
    if os.environ.get("STORAGENODE_EXPORTER_PURE_PYTHON"):
        return None, None
    try:
        from exporter import _hotpath
    except ImportError:
        return None, None
    # the failures and cancels with a reason are read in C too, classified by this table
    _hotpath.set_reasons(reasons._RULES, reasons.SPEED_TOO_LOW, "database")
    # and the plain event lines (parser._other), by the tables of events.py and the parser
    _hotpath.set_events(events.EVENTS, events.ERROR_TEXT_EVENTS, housekeeping.READERS,
                        parser.PIECESTORE, parser.PIECESTORE_LOGGERS)
    # and three housekeeping lines (retain, trash, used-space), applied as _house does
    _hotpath.set_house(Histogram, HOUSE_BUCKETS, HOUSE_MAX, housekeeping.MAX_COUNT,
                       housekeeping.MAX_SECONDS, housekeeping.UNKNOWN)
    return _hotpath.scan, _hotpath.Pending


#: the C scan, and the pairing table it reads without Python objects (a mapping that
#: behaves as the dict of the pure Python path: insertion order, and `expire` for _sweep)
NATIVE_SCAN, NATIVE_PENDING = _native()


class NodeState:
    """Everything the log metrics of one node are made of."""

    #: A read time is trusted as the event time only when the log line's own (1 s) timestamp
    #: agrees with it (lag within these seconds); otherwise (catching up on an old backlog)
    #: the log timestamp is used.
    read_time_slack = (-2.0, 3.0)

    def __init__(
        self,
        node: str,
        *,
        pairing_timeout: float = 3600.0,
        max_pending: int = 100_000,
        geo=None,
        native: bool | None = None,
    ) -> None:
        """`native`: None uses the C hot path when it is built, False never, True requires
        it (tests)."""
        if native and NATIVE_SCAN is None:
            raise RuntimeError("exporter._hotpath is not built (or disabled by the environment)")
        self._scan = NATIVE_SCAN if native is None or native else None
        self._pending_type = dict if self._scan is None else NATIVE_PENDING
        self.node = node
        self.lock = threading.Lock()
        self.pairing_timeout = pairing_timeout
        self.max_pending = max_pending
        #: optional exporter.geo.GeoRecorder; called for every finished transfer
        self.geo = geo
        self.lines: dict[str, int] = {}
        self.unparsed = 0
        self.transfers: dict[tuple[str, str, str], int] = {}
        self.bytes: dict[tuple[str, str, str], int] = {}
        #: requested size of canceled/failed downloads (their Size), apart from the egress
        #: `bytes`: those count only what was sent (issue 14)
        self.requested: dict[tuple[str, str, str], int] = {}
        self.sizes: dict[str, Histogram] = {a: Histogram(SIZE_BUCKETS) for a in ACTIONS}
        self.durations: dict[tuple[str, str], Histogram] = {}
        self.errors: dict[tuple[str, str], int] = {}
        self.events: dict[str, int] = {}
        self.in_flight: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        #: (piece_id, action, remote address) -> start time, in insertion (time) order
        self.pending: dict[tuple[str, str, str], float] = self._pending_type()
        self.starts_expired = 0
        self.top_pieces = TopPieces() if self._scan is None else NativeTopPieces()
        self.last_timestamp = ""
        self.position: dict | None = None
        self._clock = TimestampCache()
        self._newest = 0.0  # newest event time seen, drives expiry of unmatched starts
        self._next_sweep = 0.0
        #: satellites with series, and the transfers dict they were taken from (a restore
        #: replaces it): see _new_satellite
        self._satellites: set[str] = set()
        self._satellites_of: dict | None = None
        #: lines whose application raised (a bug); the first is logged
        self.apply_errors = 0
        #: (action, reason) -> canceled transfers whose line (or its pair) gives a reason
        self.cancel_reasons: dict[tuple[str, str], int] = {}
        #: housekeeping (exporter/housekeeping.py): counters, histograms, cumulative baselines
        self.house: dict[tuple[str, ...], int] = {}
        self.house_hists: dict[tuple[str, ...], Histogram] = {}
        self.house_base: dict[tuple[str, ...], int] = {}
        #: `Available Space` of the newest `upload started` line, None before one
        self.available_space: int | None = None
        #: race-lost cancels waiting for their DEBUG line (exporter/cancels.py)
        self.race_lost = RaceLost()
        #: starts by piece (exporter/cancels.py), once a log showed a race-lost line with the
        #: piece ID alone (`index_starts`; the C hot path then leaves started lines to Python)
        self.start_index = StartIndex(min(max_pending, START_INDEX_MAX))
        self.index_starts = False
        #: the last batch had prefixed lines: strip the next one before the fast path
        self._prefixed = False

    # ---- writing -------------------------------------------------------------------------

    def feed(self, lines: list[str], read_time: float | list[float] | None) -> None:
        """Apply a batch of lines. `read_time` as in exporter.sources.base.Batch; None when
        reading old logs (durations then come from the log timestamps)."""
        if not lines:
            return
        if isinstance(read_time, list):  # per-line times (Docker, forwarder): line by line
            for line, t in zip(lines, read_time, strict=True):
                self._line(line, t)
            return
        text = "\n".join(lines)
        self._prefixed = self._prefixed or prefixes.has_prefix(lines[0])
        before = self._counted()
        try:
            if self._scan is not None:
                self._scan(self, text.encode("utf-8", "surrogatepass"), read_time,
                           "surrogatepass")
            else:
                self._feed_text(text, read_time)
        except Exception as exc:  # a bug: lose the one line, not the batch or the node
            self._recover(lines, before, read_time, exc)

    def feed_block(self, block: bytes | memoryview, read_time: float | None) -> int:
        """Apply the lines of `block` (as LineSplitter.feed_block gives them: separated by
        b"\\n", no trailing newline, invalid UTF-8 replaced). Saves decoding and splitting
        when the C hot path reads the bytes directly. Returns the number of lines."""
        before = self._counted()
        try:
            if self._scan is not None:
                return self._scan(self, block, read_time, "replace")
            text = str(block, "utf-8", "replace")
            self._prefixed = self._prefixed or prefixes.has_prefix(text[:256])
            self._feed_text(text, read_time)
            return text.count("\n") + 1
        except Exception as exc:
            lines = str(block, "utf-8", "replace").split("\n")
            self._recover(lines, before, read_time, exc)
            return len(lines)

    def _counted(self) -> int:
        """Lines applied so far: every line counts once, in `lines` or in `unparsed`."""
        return sum(self.lines.values()) + self.unparsed

    def _recover(self, lines: list[str], before: int, read_time, exc: Exception) -> None:
        """A batch raised: the lines before the failing one are applied (every path applies
        in order), so apply the rest one by one; a line that raises again is unparsed."""
        done = self._counted() - before
        if not 0 <= done <= len(lines):
            done = len(lines)  # cannot tell: dropping the rest beats counting lines twice
        self._failed(lines[min(done, len(lines) - 1)], exc)
        for line in lines[done:]:
            try:
                self._line(line, read_time)
            except Exception as again:
                self._failed(line, again)
                self.unparsed += 1

    def _failed(self, line: str, exc: Exception) -> None:
        """One log line for the first failure (then one per 10,000), the line escaped."""
        self.apply_errors += 1
        if self.apply_errors == 1 or self.apply_errors % 10_000 == 0:
            log.error("node %s: a log line could not be applied (%s: %.200r; %d so far); it "
                      "is counted as unparsed, the other lines go on: %.200r", self.node,
                      type(exc).__name__, str(exc), self.apply_errors, line)

    def _feed_text(self, text: str, read_time: float | None) -> None:
        """The pure Python hot path; exporter/hotpath/*.c does the same in C.

        The common lines (successes and `... started`, see parser.COMMON_LINE_RE) are found
        in the whole batch by one regex scan and applied inline; the lines between them go
        through `parse_line` + `apply`, in order. tests/test_hotpath.py checks that this,
        the C scan and `parse_line` + `apply` line by line all give the same state.
        """
        other = self._line
        levels = self.lines
        transfers = self.transfers
        nbytes = self.bytes
        sizes = self.sizes
        top_add = self.top_pieces.add
        top_counts = self.top_pieces.counts
        geo = self.geo
        pos = 0
        # a prefixed log (exporter/prefixes.py) is read through the regex that allows one;
        # the plain one is for every other log (the prefix alternatives cost per line)
        common = common_prefixed_re() if self._prefixed else COMMON_LINE_RE
        self._prefixed = False  # until a line of this batch shows one again (_line)
        for m in common.finditer(text):
            start = m.start()
            if start != pos:  # the lines in between, each ended by the "\n" before `start`
                for line in text[pos : start - 1].split("\n"):
                    other(line, read_time)
            pos = m.end() + 1
            ts, level, message, piece, satellite, action, dsize, dremote, uremote, usize, free = (
                m.groups()
            )
            started = message[-1] == "d" and message[-3] == "t"  # "... started"
            if not started:
                digits = dsize or usize  # None: a finished line with `available_space`
                size = int(digits) if digits else -1
                if not 0 <= size <= MAX_PIECE_SIZE:  # parse_line decides (size None)
                    other(m.group(), read_time)
                    continue
            level = "info" if level == "INFO" else "debug"
            try:
                levels[level] += 1
            except KeyError:
                levels[level] = 1
            self.last_timestamp = ts
            remote = dremote if dremote is not None else uremote
            if started:
                # as parse_line: only an upload's start tells the free space
                if (free is not None and action in INGRESS_ACTIONS
                        and (free := available_space(free)) is not None):
                    self.available_space = free
                self._start(ts, action, piece, remote, read_time, satellite)
                continue
            key = (satellite, action, "success")
            try:
                transfers[key] += 1
            except KeyError:
                key = (self._new_satellite(satellite), action, "success")
                transfers[key] += 1
            nbytes[key] += size
            hist = sizes[action]
            hist.counts[bisect_left(hist.bounds, size)] += 1
            hist.sum += size
            if action == "GET":
                if piece in top_counts:
                    top_counts[piece] += 1
                else:
                    top_add(piece)
            if self.pending:
                self._finish(ts, action, "success", piece, remote, read_time)
            if geo is not None and remote:
                geo.record(action, remote, size, read_time)
        if pos <= len(text):
            for line in text[pos:].split("\n"):
                other(line, read_time)

    def _line(self, line: str, read_time: float | None) -> None:
        try:
            event = parse_line(line)
            if event is None:  # a prefix (docker -t, compose, TrueNAS, journald), tabs lost
                event = prefixes.parse_prefixed(line, parse_line)
                if event is not None:
                    self._prefixed = True
            if event is not None:
                self.apply(event, read_time)
                return
        except Exception as exc:  # a bug in the parser or apply: this line only
            self._failed(line, exc)
        self.unparsed += 1

    def apply(self, event: tuple, read_time: float | None) -> None:
        kind = event[0]
        if kind in (OTHER, HOUSE):
            name = event[3]
            if name is not None:
                self._event(name)
            if kind == HOUSE:
                self._house(event[4])
        else:
            self._apply_transfer(event, read_time)
        # counted last: a line whose application raised counts as unparsed only (_line)
        level = event[1]
        try:
            self.lines[level] += 1
        except KeyError:
            self.lines[level] = 1
        if event[2]:
            self.last_timestamp = event[2]

    def _apply_transfer(self, event: tuple, read_time: float | None) -> None:
        (_, level, ts, phase, result, action, satellite, size, piece, remote, reason, name,
         sent) = event
        if phase == START:
            if size is not None:  # `Available Space` of an `upload started` line
                self.available_space = size
            self._start(ts, action, piece, remote, read_time, satellite)
            return
        if reason is not None:  # failures and cancels that say why: one count per transfer
            if reason == RACE_LOST:
                action, satellite, remote = self._race_lost(ts, action, satellite, piece, remote)
            elif (level == "debug" and self.race_lost.recent
                  and self.race_lost.absorb(piece, self._log_time(ts), action)):
                return  # the DEBUG line of a race-lost cancel counted already
            if result == "canceled":
                ckey = (action, reason)
                self.cancel_reasons[ckey] = self.cancel_reasons.get(ckey, 0) + 1
        key = (satellite, action, result)
        try:
            self.transfers[key] += 1
        except KeyError:
            key = (self._new_satellite(satellite), action, result)
            self.transfers[key] = self.transfers.get(key, 0) + 1  # `unknown` has no zeros
        if result == "success" or action in INGRESS_ACTIONS:  # an upload's Size was received
            if size is not None:
                self.bytes[key] = self.bytes.get(key, 0) + size
                if result == "success":
                    self.sizes[action].observe(size)
        else:  # an unfinished download: only what it says it sent is egress
            if size:  # no series for 0 bytes (as the C hot path: it adds non-zero sums)
                self.requested[key] = self.requested.get(key, 0) + size
            if sent is not None:
                self.bytes[key] = self.bytes.get(key, 0) + sent
        if reason is not None and result == "failed":
            ekey = (action, reason)
            self.errors[ekey] = self.errors.get(ekey, 0) + 1
        if name is not None:
            self._event(name)
        if action == "GET":
            self.top_pieces.add(piece)
        if self.pending:
            self._finish(ts, action, result, piece, remote, read_time)
        if self.geo is not None and remote:
            self.geo.record(action, remote, size or 0, read_time)

    def _log_time(self, ts: str) -> float | None:
        return self._clock(ts) if ts else None

    def _race_lost(self, ts: str, action: str, satellite: str, piece: str,
                   remote: str) -> tuple[str, str, str]:
        """A race-lost cancel: satellite, action and remote address from its started line
        when the line has the piece ID alone (v1.86-v1.98), remembered for its DEBUG line."""
        if action == UNKNOWN:
            self.index_starts = True  # from now on every start is indexed by piece
            started = self.start_index.take(piece)
            if started is not None:
                satellite, action, remote = started
        self.race_lost.add(piece, self._log_time(ts), None if action == UNKNOWN else action)
        return action, satellite, remote

    def _house(self, updates: tuple) -> None:
        """Apply exporter/housekeeping.py updates; satellites are checked like a transfer's."""
        for op, key, value in updates:
            if key[0] in SATELLITE_METRICS and key[1] != UNKNOWN and not (
                    key[1] in self._satellites and self._satellites_of is self.transfers):
                key = (key[0], self._new_satellite(key[1]), *key[2:])
            if op == "c":
                self.house[key] = min(self.house.get(key, 0) + value, HOUSE_MAX)
            elif op == "h":
                hist = self.house_hists.get(key)
                if hist is None:
                    hist = self.house_hists[key] = Histogram(HOUSE_BUCKETS)
                hist.observe(value)
            elif op == "b":
                self.house_base[key] = value
            else:  # "d": the increase of a cumulative value since its baseline
                base = self.house_base.get(key)
                grown = value - base if base is not None and value > base else 0
                self.house[key] = min(self.house.get(key, 0) + grown, HOUSE_MAX)
                self.house_base[key] = value

    def _event(self, name: str) -> None:
        try:
            self.events[name] += 1
        except KeyError:
            self.events[name] = 1

    def _new_satellite(self, satellite: str) -> str:
        """The satellite key for an ID that has no series yet (a dict miss, so never on the
        common line), with zero-valued series for every action and result, so that
        rate()/increase() see the first failure of any kind.

        An ID that may not be a label value (exporter/satellites.py) is counted under
        INVALID, and IDs beyond MAX_SATELLITES per node under OVERFLOW."""
        known = self._satellites
        if self._satellites_of is not self.transfers:  # new state, or restored from a file
            known = self._satellites = {key[0] for key in self.transfers}
            self._satellites_of = self.transfers
        if satellite not in known:
            if not SATELLITES.is_label(satellite):
                satellite = INVALID
            elif (len(known) - (INVALID in known) - (OVERFLOW in known) - (UNKNOWN in known)
                  >= MAX_SATELLITES):
                satellite = OVERFLOW
            known.add(satellite)
        for action in ACTIONS:
            for result in RESULTS:
                self.transfers.setdefault((satellite, action, result), 0)
                self.bytes.setdefault((satellite, action, result), 0)
        return satellite

    def _event_time(self, ts: str, read_time: float | None) -> float | None:
        clock = self._clock
        logged = clock._value if ts == clock._last else (clock(ts) if ts else None)
        if read_time is None:
            return logged
        if logged is None:
            return read_time
        lag = read_time - logged
        low, high = self.read_time_slack
        if low <= lag <= high:
            return read_time
        return logged

    def _start(self, ts: str, action: str, piece: str, remote: str, read_time,
               satellite: str) -> None:
        if self.index_starts:
            self.start_index.add(piece, satellite, action, remote)
        when = self._event_time(ts, read_time)
        if when is None:
            return
        if when > self._newest:
            self._newest = when
        if when >= self._next_sweep:
            self._sweep()
        if len(self.pending) >= self.max_pending:
            self._evict_oldest(max(1, self.max_pending // 10))
        pending = self.pending
        key = (piece, action, remote)
        if key in pending:  # a retry of the same piece: the older start never finished
            self.starts_expired += 1
            self.in_flight[action] -= 1
        pending[key] = when
        self.in_flight[action] += 1

    def _finish(self, ts, action, result, piece, remote, read_time) -> None:
        started = self.pending.pop((piece, action, remote), None)
        if started is None:
            return
        self.in_flight[action] -= 1
        when = self._event_time(ts, read_time)
        if when is None:
            return
        hist = self.durations.get((action, result)) or self._durations_for(action, result)
        elapsed = when - started if when > started else 0.0
        hist.counts[bisect_left(hist.bounds, elapsed)] += 1
        hist.sum += elapsed

    def _durations_for(self, action: str, result: str) -> Histogram:
        hist = self.durations.get((action, result))
        if hist is None:
            hist = self.durations[(action, result)] = Histogram(DURATION_BUCKETS)
        return hist

    def restore_pending(self, starts: dict[tuple[str, str, str], float]) -> None:
        """Replace the pairing table (a checkpoint), in the type this state pairs with."""
        table = self._pending_type()
        for key, when in starts.items():
            table[key] = when
        self.pending = table

    def _sweep(self) -> None:
        """Drop starts older than the pairing timeout (their finish line never came)."""
        horizon = self._newest - self.pairing_timeout
        if type(self.pending) is not dict:  # the C table does the same loop in place
            for action in self.pending.expire(horizon):
                self.starts_expired += 1
                self.in_flight[action] -= 1
        else:
            keep = {}
            for key, when in self.pending.items():
                if when >= horizon:
                    keep[key] = when
                else:
                    self.starts_expired += 1
                    self.in_flight[key[1]] -= 1
            self.pending = keep
        self._next_sweep = self._newest + min(60.0, self.pairing_timeout / 4)

    def _evict_oldest(self, count: int) -> None:
        """The table is full of fresh starts: drop the oldest tenth (insertion order)."""
        pending = self.pending
        for key in list(itertools.islice(pending, count)):
            del pending[key]
            self.in_flight[key[1]] -= 1
            self.starts_expired += 1

    # ---- reading (scrape thread) ------------------------------------------------------------

    def counters(self) -> dict:
        """Copies of the counters and histograms; the caller holds `self.lock`."""
        return {
            "lines": dict(self.lines),
            "unparsed": self.unparsed,
            "transfers": dict(self.transfers),
            "bytes": dict(self.bytes),
            "requested": dict(self.requested),
            "sizes": {a: (list(h.counts), h.sum) for a, h in self.sizes.items()},
            "durations": {k: (list(h.counts), h.sum) for k, h in self.durations.items()},
            "errors": dict(self.errors),
            "events": dict(self.events),
            "starts_expired": self.starts_expired,
            "last_timestamp": self.last_timestamp,
            "cancel_reasons": dict(self.cancel_reasons),
            "house": dict(self.house),
            "house_hists": {k: (list(h.counts), h.sum) for k, h in self.house_hists.items()},
            "house_base": dict(self.house_base),
            "available_space": self.available_space,
        }

    def snapshot(self) -> dict:
        """A consistent copy of everything the collector renders."""
        with self.lock:
            return {
                **self.counters(),
                "in_flight": dict(self.in_flight),
                "top_pieces": self.top_pieces.top(),
            }


__all__ = ["DURATION_BUCKETS", "SIZE_BUCKETS", "NodeState"]
