"""The node's housekeeping lines as numbers: GC, trash, filewalkers, hashstore, deletes, amnesty.

Issue 13, item 3. These lines are rare (a few per satellite and hour), so they are read with a
real JSON parse of their fields; the message picks the reader (`READERS`). A reader returns
updates for NodeState (`apply_house`), each `(op, key, value)`:

* `"c"`: add `value` to the counter `key`;
* `"h"`: observe `value` seconds in the histogram `key` (HOUSE_BUCKETS);
* `"b"`, `"d"`: a cumulative value the node logs (hashstore `stats`): `"b"` sets the baseline
  (`beginning compaction`), `"d"` adds the increase since the baseline and moves it
  (`finished compaction`), so each compaction's bytes count once.

`key` is `(metric, *labels)` in the order of `METRICS[metric]`; a `satellite` label is always
first and holds the satellite ID from the line (NodeState validates it like a transfer's,
exporter/satellites.py). Every other label value comes from a closed set here, and every number
is checked (`_count`, `duration_seconds`, `size_bytes`) before it is returned.

Sources (storj/storj): storagenode/retain/retain.go (`Moved pieces to trash during retain`, three
field-name eras: `num deleted` up to v1.95, Title Case v1.96-v1.145, snake_case since v1.146),
storagenode/pieces/trashchore.go + trashrunner.go, storagenode/pieces/store.go,
storagenode/pieces/lazyfilewalker/{process,supervisor}.go, cmd/storagenode/internalcmd/*,
storagenode/hashstore/store.go + db.go, storagenode/pieces/deleter.go and piecestore (deletes,
up to v1.117), storagenode/contact/amnesty.go (v1.146+).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

#: metric -> (exposition name without _total, type, help, label names after `node`)
METRICS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "gc_runs": ("storagenode_gc_runs", "counter",
                "Retain (garbage collection) runs finished.", ("satellite",)),
    "gc_pieces_trashed": ("storagenode_gc_pieces_trashed", "counter",
                          "Pieces moved to trash by retain.", ("satellite",)),
    "gc_pieces_failed": ("storagenode_gc_pieces_failed", "counter",
                         "Pieces retain failed to trash or to read.", ("satellite",)),
    "gc_failures": ("storagenode_gc_failures", "counter", "Retain requests that failed.", ()),
    "gc_duration": ("storagenode_gc_duration_seconds", "histogram",
                    "Duration of retain runs (v1.96+).", ("satellite",)),
    "trash_empty_runs": ("storagenode_trash_empty_runs", "counter",
                         "Trash emptying runs finished.", ("satellite",)),
    "trash_empty_failures": ("storagenode_trash_empty_failures", "counter",
                             "Trash emptying runs that failed.", ()),
    "trash_empty_duration": ("storagenode_trash_empty_duration_seconds", "histogram",
                             "Duration of trash emptying (elapsed).", ()),
    "filewalker_runs": ("storagenode_filewalker_runs", "counter",
                        "Filewalker runs completed.", ("walker", "lazy")),
    "filewalker_failures": ("storagenode_filewalker_failures", "counter",
                            "Filewalker runs that failed.", ("walker", "lazy")),
    "filewalker_duration": ("storagenode_filewalker_duration_seconds", "histogram",
                            "Duration of filewalker runs that log one (used-space).",
                            ("walker", "lazy")),
    "compactions": ("storagenode_hashstore_compactions", "counter",
                    "Hashstore compactions finished, by result.",
                    ("satellite", "store", "result")),
    "compaction_errors": ("storagenode_hashstore_compaction_errors", "counter",
                          "Hashstore compactions that failed, by reason.",
                          ("satellite", "store", "reason")),
    "compaction_duration": ("storagenode_hashstore_compaction_duration_seconds", "histogram",
                            "Duration of hashstore compactions.", ()),
    "compaction_reclaimed": ("storagenode_hashstore_reclaimed_bytes", "counter",
                             "Bytes of log files reclaimed by compactions (as the node rounds "
                             "them: 3 significant digits).", ("satellite", "store")),
    "compaction_rewritten": ("storagenode_hashstore_rewritten_bytes", "counter",
                             "Bytes rewritten by compactions (rounded like reclaimed).",
                             ("satellite", "store")),
    "piece_deletes": ("storagenode_piece_deletes", "counter",
                      "Piece deletes requested by satellites (up to v1.117).", ("result",)),
    "lost_pieces": ("storagenode_lost_pieces_reported", "counter",
                    "Pieces the node reported lost to the satellite (amnesty, v1.146+).",
                    ("satellite",)),
    "lost_pieces_failures": ("storagenode_lost_pieces_report_failures", "counter",
                             "Amnesty reports that could not be sent.", ("satellite",)),
}

#: metrics whose first label is a satellite
SATELLITE_METRICS = frozenset(m for m, spec in METRICS.items() if spec[3][:1] == ("satellite",))
#: seconds: from a second to a day (retain and used-space walks take hours on big nodes)
HOUSE_BUCKETS: tuple[float, ...] = (
    1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400,
)
#: the largest count or duration (seconds) or byte amount accepted from one line
MAX_COUNT = 10**12
MAX_SECONDS = 10**7
MAX_BYTES = 10**18
UNKNOWN = "unknown"
_STORE = re.compile(r"s[0-9]{1,2}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
          "h": 3600.0}
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([KMGTPE]i?)?B")
_SIZE_UNITS = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
               "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
               "Ei": 2**60}
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_WALKERS = {"used-space-filewalker": "used_space", "gc-filewalker": "gc",
            "trash-cleanup-filewalker": "trash"}

Update = tuple[str, tuple[str, ...], float]


def normalise_key(key: str) -> str:
    """`Piece ID` -> `piece_id`, `satelliteID` -> `satellite_id`, `Remote Address` -> …"""
    return _CAMEL.sub(r"_\1", key.replace(" ", "_")).lower()


_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """normalise_key of each key, remembered by the key tuple: a message's lines nearly
    always have the same keys in the same order (bounded: at most 256 tuples of at most 32
    keys, emptied when full)."""
    known = _KEYS.get(keys)
    if known is None:
        known = tuple(normalise_key(k) for k in keys)
        if len(keys) > 32:
            return known
        if len(_KEYS) >= 256:
            _KEYS.clear()
        _KEYS[keys] = known
    return known


#: Go's own spelling of a duration of a second or more (`2h3m4.5s`, `36m18.2s`, `4.5s`):
#: read by one match; any other spelling by the general loop, which sums the same parts in
#: the same order (so the same float)
_GO_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s")


def _duration_parts(value: str) -> float | None:
    """The sum of the `<number><unit>` parts that make up all of `value`, left to right."""
    total, pos = 0.0, 0
    for m in _DURATION_PART.finditer(value):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(value) else None


def duration_seconds(value: object) -> float | None:
    """A Go `time.Duration.String()` (`1m37.5s`, `245.1ms`, `2h3m4.5s`) in seconds."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    if value == "0s":
        return 0.0
    m = _GO_DURATION.fullmatch(value)
    if m is not None:
        hours, minutes, seconds = m.groups()
        total = 0.0
        if hours is not None:
            total += float(hours) * 3600.0
        if minutes is not None:
            total += float(minutes) * 60.0
        total += float(seconds) * 1.0
    else:
        total = _duration_parts(value)
        if total is None:
            return None
    if not math.isfinite(total) or total > MAX_SECONDS:
        return None
    return total


def size_bytes(value: object) -> int | None:
    """A storj `memory.Size` as JSON writes it (`"1.2 GiB"`, `"512 B"`) or an integer."""
    if type(value) is int:
        return value if 0 <= value <= MAX_BYTES else None
    if not isinstance(value, str) or len(value) > 24:
        return None
    m = _SIZE.fullmatch(value)
    if m is None:
        return None
    number = float(m.group(1)) * _SIZE_UNITS[m.group(2)]
    return int(number) if number <= MAX_BYTES else None


def _count(value: object) -> int | None:
    return value if type(value) is int and 0 <= value <= MAX_COUNT else None


#: json.loads without its Python wrapper: the C scanner it calls (`JSONDecoder.raw_decode`)
_SCAN = json.JSONDecoder().scan_once


def _fields(text: str) -> dict | None:
    """The fields object with normalised keys (lazyfilewalker lines repeat `process`)."""
    if text[:1] != "{":
        return None
    try:
        raw, end = _SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):  # as json.loads: not a document
        end = -1
    if end != len(text):  # an error, or text after the object: json.loads decides
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if not isinstance(raw, dict):
        return None
    # as {normalise_key(k): v for k, v in raw.items()}: in order, so the last of the keys
    # that normalise alike wins
    return dict(zip(_keys(tuple(raw)), raw.values(), strict=True))


def _satellite(f: dict) -> str:
    sat = f.get("satellite_id", f.get("satellite"))
    return sat if isinstance(sat, str) else UNKNOWN


def _lazy(logger: str, f: dict) -> str:
    flag = f.get("lazy_file_walker")
    if flag is True or logger.startswith("lazyfilewalker"):
        return "true"
    return "false" if flag is False else UNKNOWN


def _retain_finished(logger: str, f: dict) -> list[Update]:
    sat = _satellite(f)
    out: list[Update] = [("c", ("gc_runs", sat), 1)]
    trashed = _count(f.get("deleted_pieces", f.get("num_deleted")))
    if trashed:
        out.append(("c", ("gc_pieces_trashed", sat), trashed))
    failed = (_count(f.get("failed_to_delete")) or 0) + (
        _count(f.get("pieces_failed_to_read")) or 0)
    if failed:
        out.append(("c", ("gc_pieces_failed", sat), failed))
    took = duration_seconds(f.get("duration"))
    if took is not None:
        out.append(("h", ("gc_duration", sat), took))
    return out


def _trash_finished(logger: str, f: dict) -> list[Update]:
    out: list[Update] = [("c", ("trash_empty_runs", _satellite(f)), 1)]
    took = duration_seconds(f.get("elapsed"))
    if took is not None:
        out.append(("h", ("trash_empty_duration",), took))
    return out


def _used_space_completed(logger: str, f: dict) -> list[Update]:
    lazy = _lazy(logger, f)
    out: list[Update] = [("c", ("filewalker_runs", "used_space", lazy), 1)]
    took = duration_seconds(f.get("duration"))
    if took is not None:
        out.append(("h", ("filewalker_duration", "used_space", lazy), took))
    return out


def _walker_of(logger: str) -> str | None:
    """`lazyfilewalker.gc-filewalker` -> `gc` (None for any other logger)."""
    parts = logger.split(".")
    return _WALKERS.get(parts[1]) if len(parts) >= 2 and parts[0] == "lazyfilewalker" else None


def _subprocess_failed(logger: str, f: dict) -> list[Update]:
    """gc and trash walkers in the subprocess; a used-space one that fails is also logged as
    `used-space-filewalker failed` (counted there, once)."""
    walker = _walker_of(logger)
    if walker is None or walker == "used_space":
        return []
    return [("c", ("filewalker_failures", walker, "true"), 1)]


def _store(f: dict) -> str:
    store = f.get("store")
    return store if isinstance(store, str) and _STORE.fullmatch(store) else "other"


def _stats(f: dict) -> tuple[int | None, int | None]:
    stats = f.get("stats")
    if not isinstance(stats, dict):
        return None, None
    return size_bytes(stats.get("DataReclaimed")), size_bytes(stats.get("DataRewritten"))


def _compaction_began(logger: str, f: dict) -> list[Update]:
    sat, store = _satellite(f), _store(f)
    reclaimed, rewritten = _stats(f)
    out: list[Update] = []
    if reclaimed is not None:
        out.append(("b", ("compaction_reclaimed", sat, store), reclaimed))
    if rewritten is not None:
        out.append(("b", ("compaction_rewritten", sat, store), rewritten))
    return out


def compaction_reason(error: str) -> str:
    low = error.lower()
    if "not enough free space on logs disk" in low:
        return "logs_disk_full"
    if "not enough free space on table disk" in low:
        return "table_disk_full"
    if "context canceled" in low:
        return "canceled"
    return "other"


def _compaction_finished(logger: str, f: dict) -> list[Update]:
    sat, store = _satellite(f), _store(f)
    error = f.get("error")
    failed = isinstance(error, str) and error != ""
    out: list[Update] = [("c", ("compactions", sat, store, "failed" if failed else "success"), 1)]
    if failed:
        out.append(("c", ("compaction_errors", sat, store, compaction_reason(error)), 1))
    took = duration_seconds(f.get("duration"))
    if took is not None:
        out.append(("h", ("compaction_duration",), took))
    reclaimed, rewritten = _stats(f)
    if reclaimed is not None:
        out.append(("d", ("compaction_reclaimed", sat, store), reclaimed))
    if rewritten is not None:
        out.append(("d", ("compaction_rewritten", sat, store), rewritten))
    return out


def _deleted(result: str) -> Callable[[str, dict], list[Update]]:
    def read(logger: str, f: dict) -> list[Update]:
        if logger not in ("piecedeleter", "piecestore"):
            return []
        return [("c", ("piece_deletes", result), 1)]
    return read


def _amnesty_sent(logger: str, f: dict) -> list[Update]:
    count = _count(f.get("piece_count"))
    if logger != "contact:amnesty" or count is None:
        return []
    return [("c", ("lost_pieces", _satellite(f)), count)]


def _amnesty_failed(logger: str, f: dict) -> list[Update]:
    if logger != "contact:amnesty":
        return []
    return [("c", ("lost_pieces_failures", _satellite(f)), 1)]


def _one(metric: str, *labels: str) -> Callable[[str, dict], list[Update]]:
    def read(logger: str, f: dict) -> list[Update]:
        return [("c", (metric, *labels), 1)]
    return read


#: message -> reader(logger, normalised fields)
READERS: dict[str, Callable[[str, dict], list[Update]]] = {
    "Moved pieces to trash during retain": _retain_finished,
    "retain pieces failed": _one("gc_failures"),
    "emptying trash finished": _trash_finished,
    "emptying trash failed": _one("trash_empty_failures"),
    "used-space-filewalker completed": _used_space_completed,
    "used-space-filewalker failed": lambda logger, f: [
        ("c", ("filewalker_failures", "used_space", _lazy(logger, f)), 1)],
    "gc-filewalker completed": _one("filewalker_runs", "gc", "true"),
    "trash-filewalker completed": _one("filewalker_runs", "trash", "true"),
    "subprocess exited with error": _subprocess_failed,
    "failed to start subprocess": _subprocess_failed,
    "gc-filewalker did not complete": _one("filewalker_failures", "gc", "true"),
    "beginning compaction": _compaction_began,
    "finished compaction": _compaction_finished,
    "deleted": _deleted("success"),
    "delete piece sent to trash": _deleted("success"),
    "delete failed": _deleted("failed"),
    "could not send delete piece to trash": _deleted("failed"),
    "sending amnesty batch to satellite": _amnesty_sent,
    "failed to get satellite URL for amnesty report": _amnesty_failed,
    "failed to dial satellite for amnesty report": _amnesty_failed,
    "failed to send amnesty report": _amnesty_failed,
}


def read(logger: str, message: str, fields: str) -> tuple[Update, ...] | None:
    """The updates of one housekeeping line, None for any other line (or unreadable fields)."""
    reader = READERS.get(message)
    return read_with(reader, logger, fields) if reader is not None else None


def read_with(reader: Callable[[str, dict], list[Update]], logger: str,
              fields: str) -> tuple[Update, ...] | None:
    """`read` with the message's reader looked up already (exporter/parser.py)."""
    f = _fields(fields) if fields else {}
    if f is None:
        return None
    updates = reader(logger, f)
    return tuple(updates) if updates else None


#: every value of the labels other than satellite (a checkpoint is checked against them)
LABEL_VALUES: dict[str, frozenset[str]] = {
    "walker": frozenset(_WALKERS.values()),
    "lazy": frozenset({"true", "false", UNKNOWN}),
    "result": frozenset({"success", "failed"}),
    "reason": frozenset({"logs_disk_full", "table_disk_full", "canceled", "other"}),
}


def valid_key(key: object, is_satellite: Callable[[str], bool]) -> bool:
    """Is `key` one NodeState can hold: a known metric, its labels from the bounded sets?"""
    if not isinstance(key, tuple | list) or not key or key[0] not in METRICS:
        return False
    names = METRICS[key[0]][3]
    values = key[1:]
    if len(values) != len(names) or not all(isinstance(v, str) for v in values):
        return False
    for name, value in zip(names, values, strict=True):
        if name == "satellite":
            ok = is_satellite(value)
        elif name == "store":
            ok = value == "other" or _STORE.fullmatch(value) is not None
        else:
            ok = value in LABEL_VALUES[name]
        if not ok:
            return False
    return True
