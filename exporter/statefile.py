"""What a state file holds for one node, and the checks on every value read back.

`capture` copies a NodeState (under its lock), `encode` makes it JSON, `decode` reads it
back refusing what cannot be a real value, `restore` puts it into a fresh NodeState.
exporter/checkpoint.py writes and reads the file.

Absurd values (non-finite, negative or above `MAX_VALUE`, or satellite IDs that may not be
labels) are never written, and a state file holding some (hand-crafted, or from an older
version) has just those refused when it is read, with one log line per node: the series
concerned start over, everything else continues (issue 12).

Not saved: the geo window gauges (they describe the last minutes only) and the Docker
16 KiB line joiner. Started-but-unfinished transfers are saved (the newest `MAX_PENDING`), so
`storagenode_transfers_in_flight` and the duration histograms continue exactly.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from exporter import cancels, housekeeping
from exporter.housekeeping import HOUSE_BUCKETS
from exporter.parser import MAX_FIELD, UNKNOWN
from exporter.reasons import CANCEL_REASONS
from exporter.satellites import INVALID, MAX_SATELLITES, OVERFLOW, SATELLITES
from exporter.state import (
    ACTIONS,
    DURATION_BUCKETS,
    SIZE_BUCKETS,
    Histogram,
    NodeState,
    TopPieces,
)

log = logging.getLogger("exporter.checkpoint")

FORMAT = "storagenode-exporter-state"
VERSION = 1
#: started transfers kept in a checkpoint; older ones count as expired starts
MAX_PENDING = 20_000
_STATS = ("bytes_read", "rotations", "truncations", "reconnects", "oversized_lines")
#: No counter of a node gets there (10^18 bytes is an exabyte): larger values are absurd.
MAX_VALUE = 10**18
#: TopPieces capacity above this is refused (the exporter uses 1000)
MAX_TOP_CAPACITY = 100_000


class StateFileError(ValueError):
    """The state file's content cannot be used; the message says why."""


def file_of(position: Any) -> tuple | None:
    """Which file a position is in (path, device, inode); also inside a forwarder's."""
    if isinstance(position, dict) and isinstance(position.get("file"), dict):
        position = position["file"]
    if not isinstance(position, dict):
        return None
    return (position.get("path"), position.get("dev"), position.get("ino"))


def source_kind(spec: str | None) -> str:
    """file, docker, tcp or stdin: a saved position only fits a source of the same kind."""
    spec = spec or ""
    if spec == "-":
        return "stdin"
    if spec.startswith("tcp://"):
        return "tcp"
    if spec.startswith("docker:"):
        return "docker"
    return "file"


# ---- NodeState <-> plain data ---------------------------------------------------------------


def capture(state: NodeState) -> dict[str, Any]:
    """Shallow copies of a node's state. The caller holds `state.lock`; this must be quick."""
    return {
        **state.counters(),
        "position": state.position,  # replaced by the runner, never mutated: no copy needed
        "pending": dict(state.pending),
        "top_pieces": (state.top_pieces.capacity, dict(state.top_pieces.counts)),
        "race_lost": dict(state.race_lost.recent),
        "index_starts": state.index_starts,
    }


def encode(cap: dict[str, Any], stats: dict[str, int] | None = None,
           source: str | None = None) -> dict[str, Any]:
    """A captured state as JSON-ready data (tuple keys become lists). Outside the lock."""
    pending = [(k, w) for k, w in cap["pending"].items() if _finite(w)]  # in start order
    dropped = max(0, len(pending) - MAX_PENDING)
    pending = pending[dropped:]
    return {
        "source": source,
        "position": cap["position"],
        "stats": stats or {},
        "lines": {k: v for k, v in cap["lines"].items() if _sane(v)},
        "unparsed": cap["unparsed"] if _sane(cap["unparsed"]) else 0,
        "transfers": [[*k, v] for k, v in cap["transfers"].items() if _sane(v)],
        "bytes": [[*k, v] for k, v in cap["bytes"].items() if _sane(v)],
        "requested": [[*k, v] for k, v in cap["requested"].items() if _sane(v)],
        "size_buckets": list(SIZE_BUCKETS),
        "sizes": {a: {"counts": c, "sum": s} for a, (c, s) in cap["sizes"].items()
                  if _sane_histogram(c, s)},
        "duration_buckets": list(DURATION_BUCKETS),
        "durations": [[a, r, c, s] for (a, r), (c, s) in cap["durations"].items()
                      if _sane_histogram(c, s)],
        "errors": [[*k, v] for k, v in cap["errors"].items() if _sane(v)],
        "events": {k: v for k, v in cap["events"].items() if _sane(v)},
        "pending": [[p, a, r, when] for (p, a, r), when in pending],
        "starts_expired": cap["starts_expired"] + dropped,
        "top_pieces": {"capacity": cap["top_pieces"][0], "counts": cap["top_pieces"][1]},
        "last_timestamp": cap["last_timestamp"],
        **_encode_issue13(cap),
    }


def _encode_issue13(cap: dict[str, Any]) -> dict[str, Any]:
    """Cancel reasons, housekeeping and the race-lost pairing table (issue 13)."""
    return {
        "cancel_reasons": [[*k, v] for k, v in cap["cancel_reasons"].items() if _sane(v)],
        "house": [[list(k), v] for k, v in cap["house"].items() if _sane(v)],
        "house_buckets": list(HOUSE_BUCKETS),
        "house_hists": [[list(k), c, s] for k, (c, s) in cap["house_hists"].items()
                        if _sane_histogram(c, s)],
        "house_base": [[list(k), v] for k, v in cap["house_base"].items() if _sane(v)],
        "available_space": cap["available_space"],
        "race_lost": [[p, w, a] for p, (w, a) in cap["race_lost"].items()
                      if w is None or _finite(w)],
        "index_starts": cap["index_starts"],
    }


def _sane(value: Any) -> bool:
    """A count or sum a real node can have: a finite number from 0 to MAX_VALUE."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 0 <= value <= MAX_VALUE and (isinstance(value, int) or math.isfinite(value))


def _finite(value: Any) -> bool:
    """A time or other number that is not infinite, NaN or a huge integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= MAX_VALUE if isinstance(value, int) else math.isfinite(value)


def _sane_histogram(counts: Any, total: Any) -> bool:
    return isinstance(counts, list) and all(_sane(c) for c in counts) and _sane(total)


def _shown(value: Any) -> str:
    """An absurd value for a log line (str() of a 5000-digit int raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {len(str(value)) if value.bit_length() < 13_000 else 'huge'}-digit number"
    return repr(value)[:60]


class _Refused:
    """The absurd values of one node's saved state: refused one by one, logged as one note."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __call__(self, where: str, value: Any) -> None:
        self.items.append(f"{where} = {_shown(value)}")

    def note(self) -> str | None:
        if not self.items:
            return None
        shown = "; ".join(self.items[:3]) + ("; ..." if len(self.items) > 3 else "")
        return (f"refused {len(self.items)} absurd value(s), those series start over: "
                f"{shown}")


def _one_count(value: Any, where: str, refuse: _Refused) -> int:
    """A single counter: a sane integer, else refused and 0."""
    if isinstance(value, int) and _sane(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a count, got {value!r}")
    refuse(where, value)
    return 0


def _fail(where: str, what: str) -> StateFileError:
    return StateFileError(f"{where}: {what}")


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"expected a count, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a number, got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _rows(value: Any, where: str, width: int) -> list[list]:
    if not isinstance(value, list):
        raise _fail(where, "expected a list")
    for row in value:
        if not isinstance(row, list) or len(row) != width:
            raise _fail(where, f"expected rows of {width} items, got {row!r}")
    return value


def _counter_rows(value: Any, where: str, keys: int, refuse: _Refused) -> dict[tuple, int]:
    out = {}
    for row in _rows(value, where, keys + 1):
        key = tuple(_text(k, where) for k in row[:keys])
        if _sane(row[keys]) and isinstance(row[keys], int):
            out[key] = row[keys]
        else:
            refuse(where, row[keys])
    return out


def _counter_map(value: Any, where: str, refuse: _Refused) -> dict[str, int]:
    out = {}
    for k, v in _mapping(value, where).items():
        if _sane(v) and isinstance(v, int):
            out[_text(k, where)] = v
        else:
            refuse(f"{where}.{k}"[:80], v)
    return out


def _top_counts(counts: dict[str, int], capacity: int) -> dict[str, int]:
    """At most `capacity` counts (the largest, as TopPieces.top ranks them; in their order):
    an edited file, or one saved with a capacity now refused, cannot grow the table."""
    if len(counts) <= capacity:
        return counts
    keep = set(sorted(counts, key=lambda p: (-counts[p], p))[:capacity])
    return {p: c for p, c in counts.items() if p in keep}


def _satellite_rows(rows: dict[tuple, int], where: str, refuse: _Refused) -> dict[tuple, int]:
    """(satellite, action, result) -> n with the satellites NodeState would use: IDs that
    may not be labels go under INVALID, those beyond MAX_SATELLITES under OVERFLOW."""
    names: dict[str, str] = {}
    for sat, *_ in rows:
        if sat in names:
            continue
        if sat in (INVALID, OVERFLOW):
            names[sat] = sat
        elif not SATELLITES.is_label(sat):
            names[sat] = INVALID
            refuse(f"{where} satellite", sat)
        elif sum(v not in (INVALID, OVERFLOW) for v in set(names.values())) >= MAX_SATELLITES:
            names[sat] = OVERFLOW
        else:
            names[sat] = sat
    out: dict[tuple, int] = {}
    for (sat, *rest), value in rows.items():
        key = (names[sat], *rest)
        out[key] = min(out.get(key, 0) + value, MAX_VALUE)
    return out


def _histogram(bounds: tuple[float, ...], counts: Any, total: Any, where: str,
               refuse: _Refused) -> Histogram:
    if not isinstance(counts, list) or len(counts) != len(bounds) + 1:
        raise _fail(where, f"expected {len(bounds) + 1} bucket counts")
    hist = Histogram(bounds)
    for c in counts:
        if not isinstance(c, int | float) or isinstance(c, bool):
            raise _fail(where, f"expected a count, got {c!r}")
    if not _sane_histogram(counts, total) or not all(isinstance(c, int) for c in counts):
        refuse(where, total if not _sane(total) else counts)
        return hist  # starts over
    hist.counts = list(counts)
    hist.sum = float(total)
    return hist


def _position(value: Any, where: str) -> dict | None:
    if value is None:
        return None
    pos = _mapping(value, where)
    for key in ("dev", "ino", "offset"):  # file positions: checked here, trusted by the source
        if key in pos:
            _count(pos[key], f"{where}.{key}")
    if "fingerprint" in pos:
        try:
            bytes.fromhex(_text(pos["fingerprint"], f"{where}.fingerprint"))
        except ValueError:
            raise _fail(f"{where}.fingerprint", "not hex") from None
    return pos


@dataclass
class SavedNode:
    """One node's decoded checkpoint, validated, ready to be put into a NodeState."""

    source: str | None
    position: dict | None
    stats: dict[str, int]
    values: dict[str, Any]
    notes: list[str]


def decode(name: str, data: Any) -> SavedNode:
    """Validate and convert one node's saved data; StateFileError says what is wrong."""
    w = f"nodes.{name}"
    data = _mapping(data, w)
    try:
        notes: list[str] = []
        refuse = _Refused()
        stats = {k: v for k, v in _counter_map(data.get("stats", {}), f"{w}.stats",
                                               refuse).items() if k in _STATS}
        sizes = {a: Histogram(SIZE_BUCKETS) for a in ACTIONS}
        durations: dict[tuple[str, str], Histogram] = {}
        if data["size_buckets"] == list(SIZE_BUCKETS):
            for action, h in _mapping(data["sizes"], f"{w}.sizes").items():
                if action in sizes:
                    h = _mapping(h, f"{w}.sizes.{action}")
                    sizes[action] = _histogram(SIZE_BUCKETS, h["counts"], h["sum"],
                                               f"{w}.sizes.{action}", refuse)
        else:
            notes.append("size histogram buckets changed; the size histograms start over")
        if data["duration_buckets"] == list(DURATION_BUCKETS):
            for action, result, counts, total in _rows(data["durations"], f"{w}.durations", 4):
                key = (_text(action, f"{w}.durations"), _text(result, f"{w}.durations"))
                durations[key] = _histogram(DURATION_BUCKETS, counts, total,
                                            f"{w}.durations", refuse)
        else:
            notes.append("duration histogram buckets changed; the duration histograms start over")
        starts = []
        for piece, action, remote, when in _rows(data["pending"], f"{w}.pending", 4):
            if action not in ACTIONS:
                raise _fail(f"{w}.pending", f"unknown action {action!r}")
            key = (_text(piece, f"{w}.pending"), action, _text(remote, f"{w}.pending"))
            if _finite(_number(when, f"{w}.pending")):
                starts.append((when, key))
            else:
                refuse(f"{w}.pending", when)
        starts.sort(key=lambda s: s[0])  # NodeState evicts the oldest in insertion order
        pending = {key: when for when, key in starts}
        top = _mapping(data["top_pieces"], f"{w}.top_pieces")
        capacity = _count(top["capacity"], f"{w}.top_pieces.capacity")
        if capacity > MAX_TOP_CAPACITY:
            refuse(f"{w}.top_pieces.capacity", capacity)
            capacity = TopPieces().capacity
        values = {
            "lines": _counter_map(data["lines"], f"{w}.lines", refuse),
            "unparsed": _one_count(data["unparsed"], f"{w}.unparsed", refuse),
            "transfers": _satellite_rows(
                _counter_rows(data["transfers"], f"{w}.transfers", 3, refuse),
                f"{w}.transfers", refuse),
            "bytes": _satellite_rows(_counter_rows(data["bytes"], f"{w}.bytes", 3, refuse),
                                     f"{w}.bytes", _Refused()),  # the same IDs: noted once
            # absent before issue 14: the requested size of canceled/failed downloads
            "requested": _satellite_rows(
                _counter_rows(data.get("requested", []), f"{w}.requested", 3, refuse),
                f"{w}.requested", _Refused()),
            "sizes": sizes,
            "durations": durations,
            "errors": _counter_rows(data["errors"], f"{w}.errors", 2, refuse),
            "events": _counter_map(data["events"], f"{w}.events", refuse),
            "pending": pending,
            "starts_expired": _one_count(data["starts_expired"], f"{w}.starts_expired", refuse),
            "top_capacity": max(1, capacity),
            "top_counts": _top_counts(_counter_map(top["counts"], f"{w}.top_pieces.counts",
                                                   refuse), max(1, capacity)),
            "last_timestamp": _text(data["last_timestamp"], f"{w}.last_timestamp"),
            **_decode_issue13(data, w, refuse, notes),
        }
        source = data.get("source")
        if source is not None:
            _text(source, f"{w}.source")
        position = _position(data.get("position"), f"{w}.position")
        if position is not None and not _sane(position.get("offset", 0)):
            refuse(f"{w}.position.offset", position["offset"])  # no file is that long
            position = None
        if refuse.note():
            notes.append(refuse.note())
        return SavedNode(source, position, stats, values, notes)
    except KeyError as exc:
        raise _fail(w, f"missing {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, StateFileError):
            raise
        raise _fail(w, str(exc)) from None


def _house_satellite(sat: str) -> bool:
    return sat in (INVALID, OVERFLOW) or SATELLITES.is_label(sat)


def _house_rows(value: Any, where: str, refuse: _Refused) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for key, count in _rows(value, where, 2):
        if not housekeeping.valid_key(key, _house_satellite):
            refuse(f"{where} key", key)
        elif not (isinstance(count, int) and _sane(count)):
            refuse(where, count)
        else:
            out[tuple(key)] = count
    return out


def _decode_issue13(data: dict, w: str, refuse: _Refused, notes: list[str]) -> dict[str, Any]:
    """What _encode_issue13 wrote; a state file from before issue 13 has none of it."""
    reasons = {}
    for key, value in _counter_rows(data.get("cancel_reasons", []), f"{w}.cancel_reasons", 2,
                                    refuse).items():
        if key[0] in (*ACTIONS, UNKNOWN) and key[1] in CANCEL_REASONS:
            reasons[key] = value
        else:
            refuse(f"{w}.cancel_reasons key", key)
    hists: dict[tuple, Histogram] = {}
    if data.get("house_buckets", list(HOUSE_BUCKETS)) == list(HOUSE_BUCKETS):
        for key, counts, total in _rows(data.get("house_hists", []), f"{w}.house_hists", 3):
            if housekeeping.valid_key(key, _house_satellite):
                hists[tuple(key)] = _histogram(HOUSE_BUCKETS, counts, total,
                                               f"{w}.house_hists", refuse)
            else:
                refuse(f"{w}.house_hists key", key)
    else:
        notes.append("housekeeping histogram buckets changed; those histograms start over")
    free = data.get("available_space")
    if free is not None and not (isinstance(free, int) and _sane(free)):
        refuse(f"{w}.available_space", free)
        free = None
    race = {}
    for piece, when, action in _rows(data.get("race_lost", []), f"{w}.race_lost", 3)[
            -cancels.MAX:]:
        if (isinstance(piece, str) and len(piece) <= MAX_FIELD
                and (when is None or (not isinstance(when, bool)
                                      and isinstance(when, int | float) and _finite(when)))
                and (action is None or action in ACTIONS)):
            race[piece] = (None if when is None else float(when), action)
        else:
            refuse(f"{w}.race_lost", [piece, when, action])
    return {
        "cancel_reasons": reasons,
        "house": _house_rows(data.get("house", []), f"{w}.house", refuse),
        "house_hists": hists,
        "house_base": _house_rows(data.get("house_base", []), f"{w}.house_base", refuse),
        "available_space": free,
        "race_lost": race,
        "index_starts": data.get("index_starts") is True,
    }


def restore(state: NodeState, saved: SavedNode) -> None:
    """Put a decoded checkpoint into a fresh NodeState (before its runner starts)."""
    v = saved.values
    with state.lock:
        state.lines = v["lines"]
        state.unparsed = v["unparsed"]
        state.transfers = v["transfers"]
        state.bytes = v["bytes"]
        state.requested = v["requested"]
        state.sizes = v["sizes"]
        state.durations = v["durations"]
        state.errors = v["errors"]
        state.events = v["events"]
        state.restore_pending(v["pending"])
        # in_flight counts exactly the pending starts (NodeState keeps that invariant)
        state.in_flight = dict.fromkeys(ACTIONS, 0)
        for _piece, action, _remote in v["pending"]:
            state.in_flight[action] += 1
        state.starts_expired = v["starts_expired"]
        state.top_pieces.capacity = v["top_capacity"]
        state.top_pieces.counts.clear()  # the same dict: NodeState.feed holds on to it
        state.top_pieces.counts.update(v["top_counts"])
        state.last_timestamp = v["last_timestamp"]
        state.position = saved.position
        state.cancel_reasons = v["cancel_reasons"]
        state.house = v["house"]
        state.house_hists = v["house_hists"]
        state.house_base = v["house_base"]
        state.available_space = v["available_space"]
        state.race_lost.recent = v["race_lost"]
        state.index_starts = v["index_starts"]


def restore_stats(source: Any, stats: dict[str, int]) -> None:
    """Source counters continue too (storagenode_log_source_*_total)."""
    for key, value in stats.items():
        setattr(source.stats, key, value)
    splitter = getattr(source, "splitter", None)
    if splitter is not None and "oversized_lines" in stats:
        splitter.oversized = stats["oversized_lines"]  # sources copy this count into stats


def source_stats(source: Any) -> dict[str, int]:
    return {k: int(getattr(source.stats, k, 0)) for k in _STATS}


