"""Normalise a transfer's error text into a small, bounded set of reason labels.

Raw error strings contain IP addresses, ports and byte counts, so they can never be label
values. The table follows reference §3 ("Proposed bounded reason label"): case-insensitive
substring matches, first match wins, `other` for the rest. It runs only for failed transfers,
never for the common success lines.
"""

from __future__ import annotations

import re

#: an upload the node cut because the client was too slow (`upload failed`, error `speed too
#: low, current:… < limit:…`, the node's `--storage2.min-upload-speed`): a cancel
SPEED_TOO_LOW = "speed_too_low"
#: the `… canceled (race lost or node shutdown)` lines (v1.86+): the cancel reason they give
RACE_LOST = "race_lost"

_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (SPEED_TOO_LOW, ("speed too low",)),
    # hashstore before v1.154 (storagenode/hashstore, removed in 4abae8d168)
    ("collision", ("collision detected",)),
    ("file_not_found", ("file does not exist", "no such file or directory")),
    ("disk_full", ("no space left on device", "not enough available disk space")),
    (
        "disk_io",
        (
            "input/output error",
            "read-only file system",
            "permission denied",
            "too many open files",
            "structure needs cleaning",
        ),
    ),
    ("database", ("database is locked", "disk image is malformed", "file is not a database")),
    ("corrupt", ("hashes don't match", "invalid piece hash", "framing field", "impossible size")),
    ("untrusted", ("untrusted", "unable to get signee", "invalid order limit signature")),
    (
        "order_rejected",
        (
            "order created too",
            "order expired",
            "piece expired",
            "used serial already exists",
            "serial number changed",
            "order exceeded",
            "order contained smaller",
        ),
    ),
    ("overloaded", ("overloaded", "too many requests")),
    ("size_mismatch", ("does not match received message size",)),
    ("conn_reset", ("connection reset", "broken pipe", "forcibly closed", "wsasend", "wsarecv")),
    ("timeout", ("deadline exceeded", "i/o timeout", "timed out")),
    ("tls", ("tls: ", "x509: ")),
    ("eof", ("unexpected eof",)),
    (
        "closed",
        (
            "use of closed network connection",
            "manager closed",
            "stream closed",
            "remote closed",
            "closed:",
        ),
    ),
    ("canceled", ("context canceled",)),
    ("unknown_reason", ("unknown reason bug in code",)),
)

# A bare "EOF" at the end of the message (e.g. "read: EOF") is an eof too.
_BARE_EOF = re.compile(r"(?:^|: )eof$")

#: Every value `classify` can return, in table order (for zero-initialised series and docs).
REASONS: tuple[str, ...] = (*(label for label, _ in _RULES), "other")
#: every reason of storagenode_transfer_cancel_reasons_total
CANCEL_REASONS: tuple[str, ...] = (*REASONS, RACE_LOST)


#: needles with an ASCII digit: a text holding one is classified without the cache
_DIGIT_NEEDLES: tuple[str, ...] = tuple(
    n for _, needles in _RULES for n in needles if any(c in "0123456789" for c in n)
)
#: the cache key's byte map: ASCII digits -> space, ASCII whitespace -> `1`..`6` (digits no
#: byte maps to otherwise), every other byte to itself: one-to-one except on digits
_SHAPE = bytes.maketrans(b"0123456789 \t\n\r\x0b\x0c", b"          123456")
_CACHE: dict[bytes, str] = {}
#: texts without digits, as they come (no shape to compute for them)
_EXACT: dict[str, str] = {}
#: shapes remembered (the cache is emptied when it is full), of texts up to CACHE_TEXT chars
CACHE_MAX = 4096
CACHE_TEXT = 512


def _classify(low: str) -> str:
    for label, needles in _RULES:
        for needle in needles:
            if needle in low:
                return label
    if _BARE_EOF.search(low):
        return "eof"
    return "other"


def shape(low: str) -> bytes:
    """The cache key of a lower-case text: its runs of ASCII digits as one space, the rest
    one-to-one (UTF-8, surrogates passed, `<` `>` around it so that no run is lost at an
    end). Two texts have the same shape exactly when they differ only in their digit runs."""
    return b" ".join((b"<" + low.encode("utf-8", "surrogatepass") + b">").translate(_SHAPE).split())


def classify(text: str) -> str:
    """Return the reason label for an error or cancel-reason text.

    Remembered by the text's `shape` (error texts differ mostly in addresses, ports and byte
    counts). That is exact: no needle (nor _BARE_EOF) holds a digit, so a needle occurs in
    the text if and only if it occurs with the digit runs collapsed (a match can neither span
    a run nor change when a run it does not touch changes length); the texts holding a
    needle with a digit (_DIGIT_NEEDLES) are not cached. Texts without digits are also
    remembered as they are. tests/test_reasons.py checks this."""
    label = _EXACT.get(text)
    if label is not None:
        return label
    low = text.lower()
    if len(low) > CACHE_TEXT:
        return _classify(low)
    for needle in _DIGIT_NEEDLES:
        if needle in low:
            return _classify(low)
    key = shape(low)
    label = _CACHE.get(key)
    if label is None:
        label = _classify(low)
        if len(_CACHE) >= CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = label
    if b" " not in key:  # no digits: the text itself comes again (`context canceled`)
        if len(_EXACT) >= CACHE_MAX:
            _EXACT.clear()
        _EXACT[text] = label
    return label
