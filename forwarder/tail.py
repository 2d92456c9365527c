"""Where to start reading a log for a client, and reading it from there.

The exporter hands back the position of the last line it applied (path, device, inode,
offset, first-bytes fingerprint, as exporter.sources.file.FileSource reports it). If the file
at the configured path is still that file, tailing continues at the offset. If the log was
rotated while nobody was connected, the saved file is looked up in the log's directory (by
device/inode for rename rotation, by fingerprint for the copy logrotate's copytruncate
leaves) and read to its end from the offset, then any sibling rotated after it, then the
current file from its start. Tailing itself is the exporter's FileSource/DockerJsonSource,
so rotation and copytruncate while connected behave exactly as in local tailing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from exporter.sources.base import Batch
from exporter.sources.docker import DockerJsonSource
from exporter.sources.file import FINGERPRINT_BYTES, FileSource
from exporter.sources.rotated import find_saved_file, matches, newer_siblings, read_head

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
        "offset": st.st_size if offset is None else offset,
        "fingerprint": read_head(path).hex(),
    }


def valid_position(pos: Any) -> bool:
    if not isinstance(pos, dict):
        return False
    try:
        bytes.fromhex(str(pos.get("fingerprint", "")))
        return all(isinstance(pos.get(k), int) and pos[k] >= 0 for k in ("dev", "ino", "offset"))
    except ValueError:
        return False


@dataclass
class Plan:
    """Files to read to their end (path, resume position), then the live file."""

    drains: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    live_resume: dict[str, Any] | None = None
    live_from_start: bool = False
    start: dict[str, Any] | None = None  # the position reading starts at, told to the client
    note: str = ""


def plan(spec: LogSpec, pos: dict[str, Any] | None, from_start: bool) -> Plan:
    """Decide where reading starts for a client that saved `pos` (None: a new client)."""
    path = spec.path
    if pos is None or not valid_position(pos):
        if pos is not None:
            log.warning("log %s: ignoring an invalid resume position %r", spec.name, pos)
        start = position_of(path, 0 if from_start else None)
        if start is None:  # not there yet: everything it will contain is new
            return Plan(live_from_start=True, note="waiting for the file")
        where = "start" if from_start else "end"
        return Plan(live_resume=start, start=start, note=f"new client, from the {where}")
    fingerprint = bytes.fromhex(pos.get("fingerprint", ""))
    try:
        st = os.stat(path)
    except OSError:
        st = None
    same_file = st is not None and (st.st_dev, st.st_ino) == (pos["dev"], pos["ino"])
    if same_file and matches(st, read_head(path), pos, fingerprint):
        live = {**pos, "path": path}
        return Plan(live_resume=live, start=live, note=f"resuming at offset {pos['offset']}")
    found = find_saved_file(path, pos)
    if found is None:
        log.warning(
            "log %s: the file of the saved position (inode %s, offset %s) is gone; "
            "reading %s from its start", spec.name, pos["ino"], pos["offset"], path,
        )
        return Plan(live_from_start=True, start=position_of(path, 0),
                    note="saved file gone, from the start")
    saved_path, saved_st = found
    resume = {**pos, "path": saved_path, "dev": saved_st.st_dev, "ino": saved_st.st_ino}
    drains: list[tuple[str, dict[str, Any] | None]] = [(saved_path, resume)]
    skip = {(saved_st.st_dev, saved_st.st_ino)}
    if st is not None:
        skip.add((st.st_dev, st.st_ino))
    for sibling in newer_siblings(path, saved_st, skip):
        drains.append((sibling, None))
    names = ", ".join(os.path.basename(p) for p, _ in drains)
    log.info("log %s was rotated while disconnected; reading %s, then %s", spec.name, names, path)
    return Plan(drains=drains, live_from_start=True, start=resume,
                note=f"rotated while disconnected, reading {names} first")


class _FingerprintMixin:
    """Positions whose fingerprint covers the bytes already read.

    FileSource refreshes a short fingerprint (a file that was nearly empty when opened) only at
    the end-of-file check after a batch, so the batch's position could still carry the empty
    one, and a copytruncate copy could then not be recognised on resume.
    """

    def position(self):
        fp = self._fingerprint
        if self._fd is not None and len(fp) < FINGERPRINT_BYTES and self._offset > len(fp):
            current = os.pread(self._fd, FINGERPRINT_BYTES, 0)
            if current.startswith(fp):
                self._fingerprint = current
        return super().position()


class _LiveFile(_FingerprintMixin, FileSource):
    pass


class _LiveDocker(_FingerprintMixin, DockerJsonSource):
    pass


class _DrainMixin(_FingerprintMixin):
    """Read a rotated file to its end and stop, instead of following it."""

    _done = False

    def _check_rotation(self):  # at EOF: the file is finished, deliver its unterminated tail
        if self._done:
            return None
        self._done = True
        return self.splitter.flush()

    def _sleep(self, wake, stop) -> None:  # EOF reached twice: stop this source
        stop.set()


class _DrainFile(_DrainMixin, FileSource):
    pass


class _DrainDocker(_DrainMixin, DockerJsonSource):
    pass


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
        common = dict(poll_interval=self.poll_interval, max_line_bytes=self.max_line_bytes,
                      watch=False)
        for path, resume in self.plan.drains:
            drain_cls = _DrainDocker if self.spec.docker else _DrainFile
            source = drain_cls(path, resume=resume, from_start=True, **common)
            done = threading.Event()
            for batch in source.batches(done):
                yield batch
                if stop.is_set():
                    return
        live_cls = _LiveDocker if self.spec.docker else _LiveFile
        self.live = live_cls(self.spec.path, resume=self.plan.live_resume,
                             from_start=self.plan.live_from_start, **common)
        yield from self.live.batches(stop)
