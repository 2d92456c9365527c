r"""Prefixes other tools put in front of a storagenode line, recognised without configuration.

Operators feed the exporter what their platform gives them (issue 13, item 1):

* `docker logs -t` / `docker compose logs -t`: an RFC3339Nano timestamp and a space,
  `2025-10-02T01:26:34.282196123Z 2025-10-02T01:26:34Z\tINFO\t…`;
* `docker compose logs`: the service name, padding and `| ` (colour codes allowed), also
  followed by the `-t` timestamp: `storagenode-1  | 2025-10-02T01:26:34Z\tINFO\t…`;
* the TrueNAS SCALE app log viewer: a timestamp glued to the line,
  `2025-10-02 01:26:34.282196+00:002025-10-02T01:26:34Z\tINFO\t…`;
* journald / syslog: `May 31 06:26:13 host storagenode[857]: …` (any program name, so
  `storagenode-updater[858]: ` too; `journalctl -o short-iso` timestamps as well).

A prefix is only recognised when a storagenode line starts right after it (a zap timestamp
followed by a tab or two spaces, a level for `STORJ_LOG_NOTIME`, or `{"` for JSON), so
stripping is idempotent: no stripped line has a prefix again. `parse_line` refuses every
prefixed line (each prefix holds a space, a timestamp never does), so the three ways of
reading a line agree: the C hot path skips the same prefix (`prefix_len` in
exporter/hotpath/*.c mirrors PATTERN, only for lines that are not common lines), the pure
Python hot path reads a prefixed log's batches with parser.COMMON_PREFIXED_RE, and line by
line `parse_prefixed` strips it.

`untab` is the plus: a line whose tabs became runs of spaces (copy/paste, some viewers).

Cost: nothing for a line that parses; the prefix is looked for only on lines the common
grammar refused (and by the pure Python path for batches whose first line had one).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ANSI = r"(?:\x1b\[[0-9;]*m)*"
_RFC3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)"
_DOCKER_T = _RFC3339 + " "
_COMPOSE = _ANSI + r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127} *" + _ANSI + r"\|" + _ANSI + " "
_TRUENAS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?"
_SYSLOG = (
    r"(?:[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
    r" [A-Za-z0-9_.-]{1,255} [A-Za-z0-9_./-]{1,128}(?:\[\d{1,10}\])?: "
)
#: what a storagenode line starts with (looked at, not consumed)
_LINE_START = (
    r"(?=\d{4}-\d\d-\d\dT[^\s]{1,40}(?:\t|  )"
    r"|(?:DEBUG|INFO|WARN|ERROR|DPANIC|PANIC|FATAL)(?:\t|  )"
    r'|\{")'
)
PATTERN = (
    rf"(?:{_COMPOSE}(?:{_DOCKER_T})?|{_DOCKER_T}|{_TRUENAS}|{_SYSLOG}){_LINE_START}"
)

_PREFIX = re.compile(PATTERN, re.ASCII)
_SPACES = re.compile(r" {2,}")


def strip(line: str) -> str | None:
    """The line without its recognised prefix, or None when it has none."""
    m = _PREFIX.match(line)
    return line[m.end():] if m is not None else None


def has_prefix(line: str) -> bool:
    """Does this line (the first of a batch) start with a recognised prefix?"""
    return _PREFIX.match(line) is not None


def untab(line: str) -> str | None:
    """`TS  LEVEL  LOGGER  MESSAGE  {fields}` with the tabs back, or None when the line has
    tabs or no run of spaces. Runs of two or more spaces before the fields become a tab."""
    if "\t" in line or "  " not in line:
        return None
    brace = line.find(" {")
    head, fields = (line[:brace], line[brace + 1:]) if brace >= 0 else (line, "")
    head = _SPACES.sub("\t", head.rstrip(" "))
    if "\t" not in head:
        return None
    return f"{head}\t{fields}" if fields else head


def parse_prefixed(line: str, parse: Callable[[str], tuple | None]) -> tuple | None:
    """`parse` of a line `parse` refused, once its prefix is stripped and/or its tabs are
    restored; None when neither helps."""
    bare = strip(line)
    if bare is not None:
        event = parse(bare)
        if event is not None:
            return event
        line = bare
    spaced = untab(line)
    return parse(spaced) if spaced is not None else None
