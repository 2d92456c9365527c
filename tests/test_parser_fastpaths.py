"""The shortcuts the lines off the C hot path take give what their general forms give.

exporter/parser.py `_error_text` (str.partition) against `_ERROR_RE`; housekeeping `_fields`
(the JSON C scanner, key tuples normalised once) against `json.loads` + `normalise_key`;
`duration_seconds`' one-match form against the general parts loop. Inputs: the fields of
real lines of every fixture plus hostile variants (other spellings first, escapes, values
that hold a key, unterminated strings, trailing text, duplicate keys).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from exporter import housekeeping, parser
from exporter.housekeeping import _duration_parts, _fields, duration_seconds, normalise_key

LOGS = Path(__file__).parent / "fixtures" / "logs"

FAILED = (
    '{"process": "storagenode", "Piece ID": "P", "Satellite ID": "S", "Action": "GET", '
    '"Offset": 0, "Size": 1, "Remote Address": "1.2.3.4:5", "error": "write tcp 1.2.3.4:5: '
    'broken pipe", "errorVerbose": "write tcp: broken pipe\\n\\tstorj.io/x:1"}'
)
HOUSE = (
    '{"process": "storagenode", "Deleted pieces": 21494, "Failed to delete": 0, '
    '"Satellite ID": "S", "Duration": "36m18.247884426s", "Retain Status": "enabled"}'
)


def _field_texts() -> list[str]:
    texts = [FAILED, HOUSE]
    for log in sorted(LOGS.glob("*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            brace = line.find("{")
            if brace >= 0:
                texts.append(line[brace:])
    variants = []
    for t in texts:
        for old, new in (
            ('"error": "', '"Error": "'), ('"error": "', '"error":"'),
            ('"error": "', '"error": "a\\"b '), ('"error": "', '"error": "\\u0041 '),
            ('"error": "', '"x": "\\"error\\": \\"no", "error": "'),
            ('"error": "', '"Error":"first", "error": "'), ('"error": "', '"error": 5, "e": "'),
            ('"error": "', '"error": "unterminated'), ('"}', '"} '), ('"}', '"}x'),
            (': ', ':'), ('"Satellite ID"', '"satellite_id": "A", "satelliteID"'),
            ('"process": "storagenode", ', '"process": "a", "Process": "b", '),
            ('}', ', "nested": {"a": [1, 2.5, null, true]}}'),
        ):
            if old in t:
                variants.append(t.replace(old, new, 1))
        if len(t) > 2:
            variants.append(t[: len(t) // 2])
    return list(dict.fromkeys(texts + variants))


TEXTS = _field_texts()


def test_error_text_is_the_error_regex():
    assert parser._error_text(FAILED) == "write tcp 1.2.3.4:5: broken pipe"
    for text in TEXTS:
        e = parser._ERROR_RE.search(text)
        assert parser._error_text(text) == (e.group(1) if e else None), text


def _reference_fields(text: str) -> dict | None:
    if text[:1] != "{":
        return None
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    return {normalise_key(k): v for k, v in raw.items()}


def test_fields_are_json_loads_with_normalised_keys():
    for text in [*TEXTS, "[1]", "{", '{"a": 1} {"b": 2}', "{" * 100_000]:
        got, want = _fields(text), _reference_fields(text)
        assert got == want, text
        if got is not None:
            assert list(got) == list(want)  # the same order (the last alike key wins)


def test_fields_key_cache_stays_bounded():
    for i in range(300):
        _fields(json.dumps({f"Key {i}": 1, "Satellite ID": "S"}))
    _fields(json.dumps({f"k{i}": i for i in range(100)}))
    assert len(housekeeping._KEYS) <= 256
    assert all(len(keys) <= 32 for keys in housekeeping._KEYS)


def test_durations_one_match_equals_the_parts_loop():
    rng = random.Random(15)
    values = ["1h2m3.5s", "36m18.247884426s", "5s", "0.5s", "1h0m0s", "\u0661\u0662s",
              "2m\u0661\u0662.5s",
              "99999999999h0m0s", "1h30s"]
    for _ in range(2000):
        parts = []
        if rng.random() < 0.4:
            parts.append(f"{rng.randrange(1000)}h")
        if rng.random() < 0.6:
            parts.append(f"{rng.randrange(60)}m")
        sec = rng.choice([str(rng.randrange(60)), f"{rng.random() * 60:.{rng.randrange(1, 10)}f}"])
        values.append("".join(parts) + sec + "s")
    for value in values:
        assert housekeeping._GO_DURATION.fullmatch(value), value
        want = _duration_parts(value)
        if want is not None and want > housekeeping.MAX_SECONDS:
            want = None
        assert duration_seconds(value) == want, value
    for value in ("1.5m", "245.1ms", "1h", "5m", "1m1m", "10ns", "1.5h2s", "1.s", "s", "h1s"):
        assert not housekeeping._GO_DURATION.fullmatch(value)
        assert duration_seconds(value) == _duration_parts(value), value
