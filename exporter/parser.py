r"""One storagenode log line -> one event tuple, or None for a line that is not a log line.

Accepted layouts (reference §1): the zap console encoder
`TS \t LEVEL \t [LOGGER \t [CALLER \t]] MESSAGE \t {fields}` with or without the logger and
caller columns, without the timestamp (`STORJ_LOG_NOTIME`), RFC3339 or ISO8601-with-ms
timestamps, Title Case or snake_case field names, `Process`/`process`/none, CRLF endings; and
`log.encoding: json` lines (`{"L":…,"T":…,"N":…,"M":…, fields}`).

The hot path is written for speed (reference performance-anchors.md): `str.split` on tabs, a
dict lookup on the message, and one precompiled regex per message shape over the fields of
piece transfer lines. No JSON parse happens unless no regex can read a transfer line, and
nothing is built per line beyond a plain tuple.

Event tuples:

    (TRANSFER, level, ts, phase, result, action, satellite_id, size, piece_id, remote, reason,
     event)
    (OTHER, level, ts, event)
    (HOUSE, level, ts, event, updates)

`phase` is START or FINISH; `result` is success/canceled/failed (None for START); `size` is an
int or None (for an `upload started` line: its `Available Space`, issue 13); `reason` is a
normalised reason label for failed and canceled transfers (`race_lost` for the race-lost
lines), else None; `event` is a name from exporter.events or None (a failed transfer can also
be a `database_locked` event). `action` and `satellite_id` are UNKNOWN where the line does not
say (see UNKNOWN). HOUSE lines are the node's housekeeping (GC, trash, filewalkers, hashstore,
deletes, amnesty): `updates` as exporter/housekeeping.py describes.

Prefixed lines (`docker logs -t`, compose, TrueNAS, journald) are refused here and read by
exporter/prefixes.py (NodeState strips them); a timestamp never contains a space.

Hostile or damaged lines (issue 12): every line gets an answer and none raises. A `Size` is
kept only when it is a plausible piece size, an integer from 0 to `MAX_PIECE_SIZE`; any other
size (400 digits, `1e400`, negative, `NaN`, `true`) leaves the transfer counted without a
size. A piece ID or remote address longer than `MAX_FIELD` characters, a non-string
satellite, an action that is not one of ACTIONS, JSON that does not parse (bad escapes, deep
nesting) make the line unparsed. Satellite IDs are checked where a new one is first seen
(exporter/state.py `NodeState._new_satellite`), so the common line pays nothing for it.
"""

from __future__ import annotations

import functools
import json
import re

from exporter import housekeeping, prefixes
from exporter.events import classify_error_text, classify_message
from exporter.housekeeping import normalise_key
from exporter.reasons import RACE_LOST, SPEED_TOO_LOW, classify
from exporter.satellites import UNKNOWN as SATELLITE_UNKNOWN

#: (TRANSFER, level, ts, phase, result, action, satellite, size, piece, remote, reason, event,
#: sent): `sent` is the bytes an unfinished download says it sent (_sent), else None
TRANSFER = 0
OTHER = 1
#: a housekeeping line (exporter/housekeeping.py): (HOUSE, level, ts, event, updates)
HOUSE = 2
START = 0
FINISH = 1

LEVELS: dict[str, str] = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARN": "warn",
    "ERROR": "error",
    "DPANIC": "dpanic",
    "PANIC": "panic",
    "FATAL": "fatal",
}

ACTIONS: frozenset[str] = frozenset({"GET", "PUT", "GET_AUDIT", "GET_REPAIR", "PUT_REPAIR"})
#: satellite and action of a transfer whose line does not say (issue 13): the action only for
#: a `... canceled (race lost or node shutdown)` line with the piece ID alone (v1.86-v1.98)
#: whose `... started` line was not seen, the satellite also for v0.x lines without one
UNKNOWN = SATELLITE_UNKNOWN
#: the most digits of an `Available Space` kept (the gauge): below 10^18 bytes
_AVAILABLE_DIGITS = 18

#: The largest plausible `Size`: 64 MiB, the largest segment an uplink uploads, so no piece
#: (a segment / 29 erasure shares, ~2.3 MiB) or download of one can be bigger. 8 digits.
MAX_PIECE_SIZE = 64 << 20
_SIZE_DIGITS = len(str(MAX_PIECE_SIZE))
#: Longest piece ID (52 in practice) or remote address (`[IPv6]:port`, <= 47) kept in memory.
MAX_FIELD = 128


def _size(digits: str | None) -> int | None:
    """A `Size` read by a regex as ASCII digits, when it is plausible (see MAX_PIECE_SIZE)."""
    if not digits or len(digits) > _SIZE_DIGITS:
        return None
    size = int(digits)
    return size if size <= MAX_PIECE_SIZE else None


def _shape(title: bool, kind: str) -> re.Pattern[str]:
    """Regex for one field order. Groups: piece, satellite, action, size, remote."""
    if title:
        piece, sat, action, offset, size, remote = (
            "Piece ID", "Satellite ID", "Action", "Offset", "Size", "Remote Address",
        )
    else:
        piece, sat, action, offset, size, remote = (
            "piece_id", "satellite_id", "action", "offset", "size", "remote_address",
        )
    head = f'"{piece}": "([^"]*)", "{sat}": "([^"]*)", "{action}": "([A-Z_]+)", '
    if kind == "download":  # Offset, Size, Remote Address (every download line)
        return re.compile(head + f'"{offset}": -?\\d+, "{size}": (\\d+), "{remote}": "([^"]*)"')
    if kind == "upload_started":  # Remote Address, Available Space
        return re.compile(head + f'()"{remote}": "([^"]*)"')
    # uploaded / upload canceled / upload failed since v1.99: Remote Address, Size
    # (the lookahead captures Size before Remote Address to keep the group order)
    return re.compile(head + f'"{remote}": "(?=[^"]*", "{size}": (\\d+)[,}}])([^"]*)"')


def _pair(kind: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return (_shape(True, kind), _shape(False, kind))


def available_space(digits: str | None) -> int | None:
    """An `Available Space` read as `-?\\d+`, when it can be the gauge's value."""
    if not digits or digits[0] == "-" or len(digits) > _AVAILABLE_DIGITS:
        return None
    return int(digits)


_UP, _UP_STARTED, _DOWN = _pair("upload"), _pair("upload_started"), _pair("download")

#: the piecestore logger's names: `piecestore:endpoint` on the mud-based modular node (v1.120+,
#: storj/storj storagenode/mud.go registers the endpoint without a fixed logger name, so zap
#: names it after the component)
PIECESTORE_LOGGERS = frozenset({"piecestore", "piecestore:endpoint"})

# message of the `piecestore` logger -> (phase, result, (Title Case regex, snake_case regex),
# race lost). The race-lost lines (v1.86+) carry the piece ID alone up to v1.98 and are
# followed by a DEBUG line of the same transfer (NodeState pairs them, exporter/cancels.py).
PIECESTORE: dict[str, tuple[int, str | None, tuple[re.Pattern[str], re.Pattern[str]], bool]] = {
    "upload started": (START, None, _UP_STARTED, False),
    "download started": (START, None, _DOWN, False),
    "uploaded": (FINISH, "success", _UP, False),
    "downloaded": (FINISH, "success", _DOWN, False),
    "upload canceled": (FINISH, "canceled", _UP, False),
    "download canceled": (FINISH, "canceled", _DOWN, False),
    "upload canceled (race lost or node shutdown)": (FINISH, "canceled", _UP, True),
    "download canceled (race lost or node shutdown)": (FINISH, "canceled", _DOWN, True),
    "upload failed": (FINISH, "failed", _UP, False),
    "download failed": (FINISH, "failed", _DOWN, False),
}

# The lines that make up nearly every log -- successful transfers and `... started` lines in
# the usual layout and key orders -- as one multi-line regex, so that NodeState.feed finds
# them in a whole batch with one C-level scan instead of a Python call per line. Whatever
# it does not match goes through `parse_line`. Groups: ts, level, message, piece, satellite,
# action, download size, download remote address, upload remote address, upload size,
# available space. The timestamp has no space (a `docker logs -t` prefix is no timestamp).
# Sizes of more than 8 digits and piece IDs or addresses over MAX_FIELD are left to
# `parse_line`; NodeState._feed_text checks the 8-digit sizes against MAX_PIECE_SIZE.
_COMMON = (
    r'(\d{4}-\d\d-\d\dT[^\t\n ]+)\t(INFO|DEBUG)\tpiecestore(?::endpoint)?\t'
    r"(uploaded|downloaded|upload started|download started)\t"
    r'\{(?:"[Pp]rocess": "storagenode", )?"(?:Piece ID|piece_id)": "([^"\t\n]{0,128})", '
    r'"(?:Satellite ID|satellite_id)": "([^"\t\n]*)", '
    r'"(?:Action|action)": "(GET|PUT|GET_AUDIT|GET_REPAIR|PUT_REPAIR)", '
    r'(?:"(?:Offset|offset)": -?\d+, "(?:Size|size)": (\d{1,8}), '
    r'"(?:Remote Address|remote_address)": "([^"\t\n]{0,128})"'
    r'|"(?:Remote Address|remote_address)": "([^"\t\n]{0,128})", '
    r'(?:"(?:Size|size)": (\d{1,8})|"(?:Available Space|available_space)": (-?\d+)))\}$'
)
COMMON_LINE_RE = re.compile("^" + _COMMON, re.MULTILINE | re.ASCII)


@functools.cache
def common_prefixed_re() -> re.Pattern[str]:
    """COMMON_LINE_RE behind an optional prefix (exporter/prefixes.py), for the batches of a
    prefixed log on the pure Python path (compiled on first use: it is big). Atomic, so the
    prefix is the one prefixes.strip finds (no backtracking into another)."""
    return re.compile(f"^(?>{prefixes.PATTERN})?{_COMMON}", re.MULTILINE | re.ASCII)

# Any other order (older eras, `log.encoding: json` without spaces): piece, satellite and
# action always come first and together; the rest is looked up on its own.
_PIECE_RE = re.compile(
    r'"(?:Piece ID|piece_id)": ?"([^"]*)", ?"(?:Satellite ID|satellite_id)": ?"([^"]*)", ?'
    r'"(?:Action|action)": ?"([A-Z_]+)"'
)
_SIZE_RE = re.compile(r'"(?:Size|size)": ?(\d+)(?=[,} ])')
_REMOTE_RE = re.compile(r'"(?:Remote Address|remote_address)": ?"([^"]*)"')
# a JSON string's body, unrolled (`[^"\\]*(?:\\.[^"\\]*)*` is `(?:[^"\\]|\\.)*`: the same
# tokens, one way to split a text into them, so the same matches; it runs in C loops)
_STRING = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_ERROR_RE = re.compile(r'"(?:error|Error)": ?' + _STRING)
_REASON_RE = re.compile(r'"reason": ?' + _STRING)
# the bytes a canceled download did send, in its reason (v1.113+, reference §1.5 note 2)
_SENT_RE = re.compile(r"downloaded size \((\d{1,8}) bytes\)")
_AVAILABLE_RE = re.compile(r'"(?:Available Space|available_space)": ?(-?\d+)')
_JSON_HEAD = re.compile(
    r'\{"L": ?"([A-Z]+)",(?: ?"T": ?"([^"]*)",)?(?: ?"N": ?"([^"]*)",)?(?: ?"C": ?"[^"]*",)?'
    r' ?"M": ?"((?:[^"\\]|\\.)*)"'
)
_UPLOADS = frozenset({"PUT", "PUT_REPAIR"})


def _is_timestamp(ts: str) -> bool:
    # 2025-12-21T15:18:59Z / 2023-04-11T01:17:41.168+0200: a shape check, no parse. No
    # space: that is a prefix (exporter/prefixes.py), not a timestamp.
    return len(ts) >= 20 and ts[4] == "-" and ts[10] == "T" and ts[13] == ":" and " " not in ts


def parse_line(line: str) -> tuple | None:
    """Parse one line (without its trailing newline). None means "not a log line"."""
    if line[-1:] == "\r":
        line = line[:-1]
    parts = line.split("\t", 4)  # the common layout: TS LEVEL LOGGER MESSAGE {fields}
    if len(parts) == 5 and "\t" not in parts[4]:  # (a long errorVerbose is not split)
        ts, level, logger, message, fields = parts
        level = LEVELS.get(level)
        if (
            level is None
            or ts[10:11] != "T"
            or fields[-1:] != "}"
            or fields[:1] != "{"
            or ts[4:5] != "-"
            or " " in ts
        ):
            return _parse_other_layout(parts)
        if logger in PIECESTORE_LOGGERS:
            kind = PIECESTORE.get(message)
            if kind is not None:
                phase, result, shapes, race_lost = kind
                # Title Case keys: `{"Process"`/`{"Piece ID"`, or `"process"` v1.79-v1.99
                m = shapes[fields[2:3] != "P" and '"Piece ID"' not in fields].search(fields)
                if m is None or shapes is _UP_STARTED:
                    return _transfer(level, ts, kind, fields, m)
                piece, satellite, action, size, remote = m.groups()
                if action not in ACTIONS or len(piece) > MAX_FIELD or len(remote) > MAX_FIELD:
                    return None
                if result == "failed" or result == "canceled":
                    return _unfinished(level, ts, result, race_lost, action, satellite,
                                       _size(size), piece, remote, fields)
                return (
                    TRANSFER, level, ts, phase, result, action, satellite,
                    _size(size) if phase else None, piece, remote, None, None, None,
                )
        return _other(level, ts, logger, message, fields)
    if line[:2] == '{"':
        return _parse_json_line(line)
    return _parse_other_layout(line.split("\t"))


def _parse_other_layout(parts: list[str]) -> tuple | None:
    """Layouts without the logger column, with the caller column, without a timestamp."""
    fields = parts[-1]
    n = len(parts)
    if fields[:1] == "{":
        if fields[-1:] != "}":
            return None  # truncated fields
        n -= 1
    else:
        fields = ""
    if n < 2:
        return None
    ts = parts[0]
    level = LEVELS.get(parts[1])
    if level is not None:
        if not _is_timestamp(ts):
            return None
        first = 2
    else:
        level = LEVELS.get(ts)  # STORJ_LOG_NOTIME: no timestamp column
        if level is None:
            return None
        ts = ""
        first = 1
    rest = n - first  # MESSAGE | LOGGER MESSAGE | LOGGER CALLER MESSAGE
    if rest == 2:
        logger, message = parts[first], parts[first + 1]
    elif rest == 1:
        logger, message = "", parts[first]
    elif rest == 3:
        logger, message = parts[first], parts[first + 2]
    else:
        return None
    return _event(level, ts, logger, message, fields)


def _event(level: str, ts: str, logger: str, message: str, fields: str) -> tuple | None:
    if logger in PIECESTORE_LOGGERS:
        kind = PIECESTORE.get(message)
        if kind is not None:
            return _transfer(level, ts, kind, fields, None)
    return _other(level, ts, logger, message, fields)


def _other(level: str, ts: str, logger: str, message: str, fields: str) -> tuple:
    event = classify_message(message)
    if event is None and (level == "error" or level == "warn") and "database" in fields:
        event = classify_error_text(fields)
    reader = housekeeping.READERS.get(message)
    if reader is not None:
        updates = housekeeping.read_with(reader, logger, fields)
        if updates is not None:
            return (HOUSE, level, ts, event, updates)
    return (OTHER, level, ts, event)


def _string_field(fields: str, key: str, mark: str, regex: re.Pattern[str]) -> str | None:
    """The raw text of the first string field `regex` (`"name": ?"…"`, `_STRING`) finds,
    found with `str.partition` in the usual case (cheaper than `find` or a regex search).
    `mark` is a part of every match (`"reason":`, `rror":`) that cannot overlap `key`
    (`"name": "`) but where it is part of it: without a `mark` before the first `key` that
    is where the match starts, and its value is the text up to the next `"` when that has
    no backslash; without any `mark` there is no match."""
    if mark not in fields:
        return None
    head, found, tail = fields.partition(key)
    if found and mark not in head:
        text, quote, _ = tail.partition('"')
        if quote and "\\" not in text:
            return text
    m = regex.search(fields)
    return m.group(1) if m is not None else None


def _error_text(fields: str) -> str | None:
    """The raw text of the first `error`/`Error` string field (`_ERROR_RE`'s group)."""
    return _string_field(fields, '"error": "', 'rror":', _ERROR_RE)


def _unfinished(level: str, ts: str, result: str, race_lost: bool, action: str,
                satellite: str, size: int | None, piece: str, remote: str,
                fields: str) -> tuple:
    """The tuple of a failed or canceled transfer. A canceled line's reason is its `reason`
    field, else its `error` (the DEBUG line of a race-lost transfer), else none; a race-lost
    line's is `race_lost`; a failed line's is its `error` (`other` without one). An upload
    the node cut for being too slow (`speed too low`, logged as `upload failed`) is a cancel
    with that reason. A download's `reason` may say what it sent (`_sent`)."""
    download = action not in _UPLOADS
    reason_text = None
    if download or (result == "canceled" and not race_lost):
        reason_text = _string_field(fields, '"reason": "', '"reason":', _REASON_RE)
    event = None
    if race_lost:
        reason = RACE_LOST
    elif result == "failed":
        error = _error_text(fields)
        reason = classify(error) if error is not None else "other"
        if reason == SPEED_TOO_LOW:
            result = "canceled"
        elif reason == "database":
            event = classify_error_text(fields)
    else:
        text = reason_text if reason_text is not None else _error_text(fields)
        reason = classify(text) if text is not None else None
    sent = _sent(reason_text) if download and reason_text else None
    return (TRANSFER, level, ts, FINISH, result, action, satellite, size, piece, remote,
            reason, event, sent)


def _sent(reason: str | None) -> int | None:
    """The bytes an unfinished download sent when its `reason` says so (`downloaded size (N
    bytes) does not match ...`, v1.113+), else None: its Size is the requested size since
    v1.99 (reference §1.3), so it is no egress (issue 14)."""
    m = _SENT_RE.match(reason) if reason else None
    return _size(m.group(1)) if m else None


def _transfer(level, ts, kind, fields: str, m: re.Match[str] | None) -> tuple | None:
    """Transfer lines off the common path: failures, cancels, other field orders."""
    phase, result, _, race_lost = kind
    if m is not None:
        piece, satellite, action, size, remote = m.groups()
    else:
        m = _PIECE_RE.search(fields)
        if m is None:
            return _transfer_json(level, ts, kind, fields)
        piece, satellite, action = m.groups()
        s = _SIZE_RE.search(fields, m.end())
        size = s.group(1) if s else None
        r = _REMOTE_RE.search(fields, m.end())
        remote = r.group(1) if r else ""
    if action not in ACTIONS or len(piece) > MAX_FIELD or len(remote) > MAX_FIELD:
        return None
    if phase == START:
        a = _AVAILABLE_RE.search(fields) if action in _UPLOADS else None
        size = available_space(a.group(1)) if a else None
        return (TRANSFER, level, ts, phase, result, action, satellite, size, piece, remote,
                None, None, None)
    if result == "success":
        return (TRANSFER, level, ts, phase, result, action, satellite, _size(size), piece,
                remote, None, None, None)
    return _unfinished(level, ts, result, race_lost, action, satellite, _size(size), piece,
                       remote, fields)


def _transfer_json(level, ts, kind, fields: str) -> tuple | None:
    """Last resort for a key order no regex knows: a real JSON parse."""
    try:
        raw = json.loads(fields)
    except (ValueError, RecursionError):  # RecursionError: `[[[[...` nested too deep
        return None
    if not isinstance(raw, dict):
        return None
    f = {normalise_key(k): v for k, v in raw.items()}
    phase, result, _, race_lost = kind
    piece = f.get("piece_id")
    satellite = f.get("satellite_id") or f.get("satellite")
    if "satellite_id" not in f and "satellite" not in f:
        satellite = UNKNOWN  # v0.x lines; the v1.86-v1.98 race-lost lines
    action = f.get("action")
    # the piece ID alone (v1.86-v1.98): NodeState looks for its started line
    piece_only = action is None and race_lost and satellite == UNKNOWN
    if piece_only:
        action = UNKNOWN
    remote = f.get("remote_address") or ""
    if (
        not isinstance(piece, str)
        or not isinstance(satellite, str)
        or not isinstance(action, str)
        or (action not in ACTIONS and not piece_only)
        or not isinstance(remote, str)
        or len(piece) > MAX_FIELD
        or len(remote) > MAX_FIELD
    ):
        return None
    size = f.get("size")
    if phase == START:
        size = f.get("available_space") if action in _UPLOADS else None
        if type(size) is not int or available_space(str(size)) is None:
            size = None
        return (TRANSFER, level, ts, phase, result, action, satellite, size, piece, remote,
                None, None, None)
    reason = event = sent = None
    if race_lost:
        reason = RACE_LOST
    elif result == "failed":
        error = str(f.get("error", ""))
        reason = classify(error)
        if reason == "database":
            event = classify_error_text(error)
        elif reason == SPEED_TOO_LOW:
            result = "canceled"
    elif result == "canceled" and ("reason" in f or "error" in f):
        reason = classify(str(f["reason"] if "reason" in f else f["error"]))
    if result != "success" and action not in _UPLOADS and isinstance(f.get("reason"), str):
        sent = _sent(f["reason"])
    if type(size) is not int or not 0 <= size <= MAX_PIECE_SIZE:  # bool, float, huge
        size = None
    return (
        TRANSFER, level, ts, phase, result, action, satellite, size, piece, remote, reason,
        event, sent,
    )


def _parse_json_line(line: str) -> tuple | None:
    """`log.encoding: json`: the same events, with the header keys L/T/N/M."""
    if line[-1:] != "}":
        return None
    m = _JSON_HEAD.match(line)
    if m is None:
        return None
    level = LEVELS.get(m.group(1))
    if level is None:
        return None
    ts = m.group(2) or ""
    if ts and not _is_timestamp(ts):
        return None
    message = m.group(4)
    if "\\" in message:
        try:
            message = json.loads(f'"{message}"')
        except ValueError:  # a bad escape such as \uZZZZ
            return None
    return _event(level, ts, m.group(3) or "", message, line)
