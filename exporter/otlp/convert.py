"""OTLP log records -> the zap console lines the parser reads, so every count rule applies.

The modular storagenode (v1.159+, `--otel.logging.http-destination`) sends its zap entries
through the otelzap bridge (storj/storj shared/modular/logger/logger.go, otelzap v0.19):

* the logger name is the instrumentation scope name (the root logger's scope is `storj`);
* the message is the body (a string), the level is `severity_text` (`info`, `debug`, ...)
  and `severity_number` (DEBUG 5, INFO 9, WARN 13, ERROR 17, DPANIC/PANIC/FATAL 21-23);
* the fields are the attributes, in the order a console line has them: the logger's
  `With` fields first, then the call's; the `error` field is not an attribute but the
  record's error, which the Go SDK turns into `exception.message` / `exception.type`;
* a caller (`log.caller`) becomes `code.*` attributes, a stack `code.stacktrace`.

So a record becomes `TS \\t LEVEL \\t LOGGER \\t MESSAGE \\t {fields}` with the timestamp in
RFC3339 seconds (UTC), `exception.message` as `error` and the `code.*`, stack and
`exception.type` attributes left out, as the console encoder would write it.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any

#: the otelzap bridge's scope for entries of the unnamed root logger
ROOT_SCOPES = frozenset({"", "storj"})
#: severity_text as zap writes it (lower case) -> the console level
LEVEL_TEXT = {
    "debug": "DEBUG", "info": "INFO", "warn": "WARN", "warning": "WARN", "error": "ERROR",
    "dpanic": "DPANIC", "panic": "PANIC", "fatal": "FATAL", "trace": "DEBUG",
}
DROPPED = frozenset({"exception.type", "exception.stacktrace", "code.stacktrace",
                     "code.filepath", "code.file.path", "code.lineno", "code.line.number",
                     "code.function", "code.function.name", "code.namespace"})
RENAMED = {"exception.message": "error"}
#: longest line handed on; longer ones are counted as unparsed (as a file source does)
MAX_LINE = 1 << 20
_UNSAFE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def level_of(text: str, number: int) -> str:
    """The console level; `UNSET` (not a level: the line is counted unparsed) when the
    record has neither a known severity text nor a severity number."""
    level = LEVEL_TEXT.get(text.lower()) if text else None
    if level is not None:
        return level
    if 1 <= number <= 8:
        return "DEBUG"
    if 9 <= number <= 12:
        return "INFO"
    if 13 <= number <= 16:
        return "WARN"
    if 17 <= number <= 20:
        return "ERROR"
    if number == 21:
        return "DPANIC"
    if number == 22:
        return "PANIC"
    if 23 <= number <= 24:
        return "FATAL"
    return "UNSET"


def value_of(value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue as plain JSON data (bytes as base64, as zap writes binary fields)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if depth >= 8:  # the decoder already bounds nesting; this bounds our own recursion
        return None
    if kind == "array_value":
        return [value_of(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def attribute(attributes, key: str) -> str | None:
    """A string attribute's value (resource attributes name the node)."""
    for kv in attributes:
        if kv.key == key:
            value = value_of(kv.value)
            return value if isinstance(value, str) else None
    return None


def logger_of(scope_name: str) -> str:
    if scope_name in ROOT_SCOPES:
        return ""
    return scope_name.translate(_UNSAFE)  # piecestore:endpoint: parser.PIECESTORE_LOGGERS


class LineMaker:
    """Records -> (line, read time). Keeps the formatted second, like DockerTime."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def stamp(self, seconds: int) -> str:
        if seconds != self._second:
            try:
                self._text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
            except (OverflowError, OSError, ValueError):
                return ""
            self._second = seconds
        return self._text

    def line(self, record, logger: str) -> tuple[str, float]:
        nanos = record.time_unix_nano or record.observed_time_unix_nano
        when = nanos / 1e9 if nanos else time.time()
        ts = self.stamp(int(when))
        level = level_of(record.severity_text, record.severity_number)
        body = value_of(record.body) if record.HasField("body") else ""
        if not isinstance(body, str):
            body = json.dumps(body, ensure_ascii=False)
        fields = {}
        for kv in record.attributes:
            key = kv.key
            if key in DROPPED:
                continue
            fields[RENAMED.get(key, key)] = value_of(kv.value)
        columns = [ts, level] if ts else [level]
        if logger:
            columns.append(logger)
        columns.append(body.translate(_UNSAFE))
        if fields:
            columns.append(json.dumps(fields, ensure_ascii=False))
        line = "\t".join(columns)
        if len(line) > MAX_LINE:
            return "", when
        return line, when
