"""Tail a log file the way storagenode logs are really rotated.

storagenode cannot reopen its log, so operators rotate with logrotate's `copytruncate`; Docker
and others rename the file and start a new one. At every end-of-file the tailer compares the
path's identity (device, inode) and the file's first bytes with what it has open:

* another inode at the path: the old file was renamed away; it is read to its end, then the
  new file is read from its start (rotation);
* same inode but shorter than our offset, or different first bytes: the file was truncated
  (copytruncate); reading restarts at 0 (truncation).

A missing file is waited for. New data is found by a cheap poll (one read, one stat), never
by a sleep here: `steps()` yields None when there is nothing to read, and the caller decides
when to look again. In the exporter that is the shared loop (logstream/loop.py): every
`poll_interval` (0.1 s) while the file is busy, backing off to 2 s while it is idle, woken at
once by inotify when the file is created, renamed, deleted or first written after a quiet
spell (no event per written line). On filesystems without events (NFS, SMB) the idle poll
bounds the delay to 2 s. The forwarder reads with `batches()`: a poll every `poll_interval`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from logstream.lines import LineSplitter
from logstream.rotated import (
    FINGERPRINT_BYTES,
    GZIP_ERRORS,
    Resume,
    Rotated,
    Saved,
    locate,
    open_log,
    read_from,
    read_head,
    resolve,
    waiting_position,
)
from logstream.source import Batch, PolledSource

log = logging.getLogger("exporter.source")

CHUNK = 256 * 1024


class FileSource(PolledSource):
    def __init__(
        self,
        path: str,
        *,
        from_start: bool = False,
        resume: dict[str, Any] | None = None,
        poll_interval: float = 0.1,
        max_line_bytes: int = 1 << 20,
        watch: bool = True,
        start: Resume | None = None,
    ) -> None:
        """`resume` is a saved position; `start` a decision already taken for it (the
        forwarder tells its client where reading starts before the source runs). `watch`:
        the shared loop may wake this source by filesystem events (else it only polls)."""
        super().__init__()
        self.path = path
        self.description = f"file {path}"
        self.from_start = from_start
        self.resume = resume
        self.poll_interval = poll_interval
        self.watch = watch
        self.splitter = LineSplitter(max_line_bytes)
        self._start = start
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._offset = 0  # bytes read from the open file
        self._fingerprint = b""
        self._live_offset: int | None = None  # where the first open of the log starts
        self._first_open = True
        self._waiting_logged = False
        self._waiting = False  # no file yet and no saved position: its position is "waiting"
        self._waiting_reported = False

    # ---- position ------------------------------------------------------------------------

    def held_bytes(self) -> int:
        """Bytes read that belong to no delivered line yet (the resume point excludes them)."""
        return self.splitter.pending_bytes

    def position(self) -> dict[str, Any] | None:
        """Resume point after the last delivered line (see logstream/rotated.py)."""
        if self._ident is None:
            return waiting_position(self.path) if self._waiting else None
        if len(self._fingerprint) < FINGERPRINT_BYTES and self._fd is not None:
            # the file was nearly empty when opened: take the full fingerprint now, so a
            # renamed or copied file can be recognised by its first bytes on resume
            current = os.pread(self._fd, FINGERPRINT_BYTES, 0)
            if current.startswith(self._fingerprint):
                self._fingerprint = current
        return {
            "path": self.path,
            "dev": self._ident[0],
            "ino": self._ident[1],
            "offset": self._offset - self.held_bytes(),
            "fingerprint": self._fingerprint.hex(),
        }

    def _position_batch(self) -> Batch:
        """No lines, only where reading stands: recorded at once (a kill before the first
        line must not lose the starting point)."""
        return Batch([], time.time(), self.position())

    # ---- reading -------------------------------------------------------------------------

    def watched(self) -> str | None:
        return self.path if self.watch and self.path else None

    def steps(self, stop: threading.Event) -> Iterator[Batch | None]:
        try:
            if self._first_open:
                yield from self._begin(stop)
            while not stop.is_set():
                if self._fd is None:
                    if self._open():
                        yield self._position_batch()
                    else:
                        if self._waiting and not self._waiting_reported:
                            self._waiting_reported = True
                            yield self._position_batch()
                        yield None
                    continue
                data = os.read(self._fd, CHUNK)
                if data:
                    self._offset += len(data)
                    self.stats.bytes_read += len(data)
                    lines = self.splitter.feed(data)
                    self.stats.oversized_lines = self.splitter.oversized
                    if lines:
                        yield self.make_batch(lines)
                    continue
                switched = self._check_rotation()
                if switched is not None:
                    yield switched
                    continue
                yield None
        finally:
            # a source restarted after an error resumes after its last delivered line
            self.resume = self.position() or self.resume
            self._close()
            self._restart_reader()

    def make_batch(self, lines: list[str]) -> Batch:
        """Turn raw lines into a batch; subclasses unwrap container formats here."""
        return Batch(lines, time.time(), self.position())

    def _restart_reader(self) -> None:
        """Forget partial lines: the next `batches()` reads them again from the position."""
        oversized = self.splitter.oversized
        self.splitter = LineSplitter(self.splitter.max_line_bytes)
        self.splitter.oversized = oversized
        self._first_open = True
        self._start = None
        self._ident = None

    def _file_switched(self) -> None:
        """Hook: reading moves on to another file (nothing held from the old one counts)."""

    # ---- where to start ------------------------------------------------------------------

    def _begin(self, stop: threading.Event) -> Iterator[Batch]:
        """Decide where reading starts, and read the files rotated away while we were not
        running (from the saved offset, then the newer ones) before the log itself."""
        start = self._start or resolve(self.path, self.resume)
        self._start = start
        self._first_open = False
        if start.status == "new":
            self._live_offset = 0 if self.from_start else None
        elif start.status == "invalid":
            log.warning("saved position of %s is not usable (%s); reading it from the start",
                        self.path, start.reason)
            self._live_offset = 0
        elif start.status == "gone":
            log.warning("log file %s is not the file of the saved position and that file was "
                        "not found next to it; reading %s from the start", self.path, self.path)
            self._live_offset = 0
        else:
            self._live_offset = start.live_offset
        if start.chain:
            names = ", ".join(os.path.basename(item.path) for item, _ in start.chain)
            log.info("log file %s was rotated while the exporter was not running; reading the "
                     "rest of %s first", self.path, names)
            for item, offset in start.chain:
                yield from self._drain(item, offset, stop)
                if stop.is_set():
                    return

    def _drain(self, item: Rotated, offset: int, stop: threading.Event) -> Iterator[Batch]:
        """Read a rotated file (plain or .gz) from `offset` to its end."""
        self._file_switched()
        self._ident = (item.st.st_dev, item.st.st_ino)
        self._fingerprint = read_head(item.path, item.compressed)
        self._offset = offset
        yield self._position_batch()
        try:
            with open_log(item.path, item.compressed) as fh:
                for data in read_from(fh, offset, CHUNK):
                    self._offset += len(data)
                    self.stats.bytes_read += len(data)
                    lines = self.splitter.feed(data)
                    self.stats.oversized_lines = self.splitter.oversized
                    if lines:
                        yield self.make_batch(lines)
                    if stop.is_set():
                        return
        except GZIP_ERRORS as exc:
            log.warning("cannot read the rest of the rotated log %s: %s", item.path, exc)
        rest = self.splitter.flush()  # a finished file: its unterminated last line is one
        self.stats.rotations += 1  # on to the next file of the chain, or the log itself
        yield self.make_batch(rest)

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self._ident is None and self._start.status in ("new", "waiting"):
                self._live_offset = 0  # a file that appears later is new: read all of it
                self._waiting = True
            if not self._waiting_logged:
                log.warning("log file %s does not exist yet; waiting for it", self.path)
                self._waiting_logged = True
            self.stats.up = False
            return False
        except OSError as exc:
            if not self._waiting_logged:
                log.error("cannot open log file %s: %s; retrying", self.path, exc)
                self._waiting_logged = True
            self.stats.up = False
            return False
        st = os.fstat(fd)
        self._file_switched()
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._fingerprint = os.pread(fd, FINGERPRINT_BYTES, 0)
        start, self._live_offset = self._live_offset, 0
        start = st.st_size if start is None else start
        if start > st.st_size:  # shortened since the position was checked: a new file
            start = 0
        os.lseek(fd, start, os.SEEK_SET)
        self._offset = start
        self.stats.up = True
        if self._waiting_logged:
            log.info("log file %s is readable now", self.path)
            self._waiting_logged = False
        return True

    # ---- while running: rotation and truncation -------------------------------------------

    def _check_rotation(self) -> Batch | None:
        """At EOF: None if nothing changed, else the lines flushed while switching files.
        After a rename the old file is closed; the loop then opens the new one."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None  # renamed away, new file not there yet: keep the old one
        except OSError:
            return None
        if (st.st_dev, st.st_ino) != self._ident:
            log.info("log file %s was rotated; following the new file", self.path)
            self.stats.rotations += 1
            rest = []
            while data := os.read(self._fd, CHUNK):  # what the writer added before it let go
                self._offset += len(data)
                self.stats.bytes_read += len(data)
                rest.extend(self.splitter.feed(data))
            rest.extend(self.splitter.flush())
            batch = self.make_batch(rest)  # positioned at the old file's end
            self._close()
            return batch
        if len(self._fingerprint) < FINGERPRINT_BYTES and st.st_size > len(self._fingerprint):
            current = os.pread(self._fd, FINGERPRINT_BYTES, 0)
            if current.startswith(self._fingerprint):
                self._fingerprint = current
        truncated = st.st_size < self._offset or (
            self._fingerprint and os.pread(self._fd, len(self._fingerprint), 0) != self._fingerprint
        )
        if not truncated:
            return None
        log.info("log file %s was truncated (copytruncate); reading it from the start", self.path)
        self.stats.truncations += 1
        rest = self._rest_of_copy()
        rest.extend(self.splitter.flush())
        batch = self.make_batch(rest)
        self._file_switched()
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._offset = 0
        self._fingerprint = os.pread(self._fd, FINGERPRINT_BYTES, 0)
        batch.position = self.position()  # the old content is finished: resume in the new
        return batch

    def _rest_of_copy(self) -> list[str]:
        """Lines written after our last read and before the truncation survive only in the
        copy logrotate made: find it by our fingerprint and read it from our offset."""
        if not self._fingerprint or self._offset == 0:
            return []
        chain = locate(self.path, Saved(self._ident, self._offset, self._fingerprint))
        if not chain:
            return []
        copy = chain[0][0]
        lines: list[str] = []
        try:
            with open_log(copy.path, copy.compressed) as fh:
                for data in read_from(fh, self._offset, CHUNK):
                    self.stats.bytes_read += len(data)
                    lines.extend(self.splitter.feed(data))
        except GZIP_ERRORS as exc:
            log.warning("cannot read the rest of %s from its copy %s: %s", self.path,
                        copy.path, exc)
        return lines

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
