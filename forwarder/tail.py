"""Where to start reading a log for a client, and reading it from there.

The exporter hands back the position of the last line it applied (path, device, inode,
offset, first-bytes fingerprint, as logstream.file.FileSource reports it). The rule
for honouring it is logstream.rotated.resolve, the same as for a state file: only the
log itself and its own rotated files (`node.log.1`, `node.log.2.gz`, `node.log-20261201`),
with the full fingerprint. If the log was rotated while nobody was connected, the saved file
is read from the offset, then the files rotated after it, then the current file from its
start. A position that is not one of ours (another file of the directory, a short
fingerprint, a negative offset, wrong types) is logged once and treated as no position: the
client starts as a new one. Tailing itself is logstream's FileSource/DockerJsonSource, the
exporter's own tailer, so rotation and copytruncate while connected behave exactly as in local
tailing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from logstream.docker import DockerJsonSource
from logstream.file import FileSource
from logstream.rotated import (
    Resume,
    describe,
    position_at,
    read_head,
    resolve,
    waiting_position,
)
from logstream.source import Batch

log = logging.getLogger("forwarder.tail")


@dataclass
class LogSpec:
    """One `--log NAME=PATH` (or `NAME=docker:PATH`)."""

    name: str
    path: str
    docker: bool = False

    @property
    def kind(self) -> str:
        return "docker" if self.docker else "plain"


def position_of(path: str, offset: int | None) -> dict[str, Any] | None:
    """A FileSource-style position for `path` at `offset` (None: its end); None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {
        "path": path,
        "dev": st.st_dev,
        "ino": st.st_ino,
        "offset": st.st_size if offset is None else min(offset, st.st_size),
        "fingerprint": read_head(path).hex(),
    }


@dataclass
class Plan:
    """Where reading starts (`resume`, handed to the tailer) and that place as a position
    (`start`, told to the client before any line)."""

    resume: Resume
    start: dict[str, Any] | None
    note: str = ""


def _from_scratch(spec: LogSpec, from_start: bool, note: str) -> Plan:
    start = position_of(spec.path, 0 if from_start else None)
    if start is None:  # not there yet: everything it will contain is new
        return Plan(Resume("waiting"), waiting_position(spec.path), "waiting for the file")
    return Plan(Resume("live", live_offset=start["offset"]), start, note)


def plan(spec: LogSpec, pos: Any, from_start: bool) -> Plan:
    """Decide where reading starts for a client that saved `pos` (None: a new client)."""
    where = "start" if from_start else "end"
    resume = resolve(spec.path, pos)
    if resume.status == "new":
        return _from_scratch(spec, from_start, f"new client, from the {where}")
    if resume.status == "invalid":
        log.warning("log %s: ignoring a resume position that is not one of this log's (%s): "
                    "%s; starting as a new client", spec.name, resume.reason, describe(pos))
        return _from_scratch(spec, from_start, f"unusable resume position, from the {where}")
    if resume.status == "waiting":
        start = position_of(spec.path, 0) or waiting_position(spec.path)
        return Plan(resume, start, "the file was not there, from its start")
    if resume.status == "live":
        start = position_of(spec.path, resume.live_offset)
        return Plan(resume, start, f"resuming at offset {resume.live_offset}")
    if resume.status == "gone":
        log.warning("log %s: the file of the saved position (%s) is not among the log's files; "
                    "reading %s from its start", spec.name, describe(pos), spec.path)
        return Plan(resume, position_of(spec.path, 0) or waiting_position(spec.path),
                    "saved file gone, from the start")
    first, offset = resume.chain[0]
    names = ", ".join(os.path.basename(item.path) for item, _ in resume.chain)
    log.info("log %s was rotated while disconnected; reading %s, then %s", spec.name, names,
             spec.path)
    return Plan(resume, position_at(first, offset, read_head(first.path, first.compressed)),
                f"rotated while disconnected, reading {names} first")


class LogTail:
    """Batches of one log for one client, starting where `plan` says."""

    def __init__(
        self, spec: LogSpec, plan_: Plan, *, poll_interval: float, max_line_bytes: int
    ) -> None:
        self.spec = spec
        self.plan = plan_
        self.poll_interval = poll_interval
        self.max_line_bytes = max_line_bytes
        self.live: FileSource | None = None

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        cls = DockerJsonSource if self.spec.docker else FileSource
        self.live = cls(self.spec.path, start=self.plan.resume, poll_interval=self.poll_interval,
                        max_line_bytes=self.max_line_bytes, watch=False)
        yield from self.live.batches(stop)
