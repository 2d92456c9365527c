"""Tail a log file the way storagenode logs are really rotated.

storagenode cannot reopen its log, so operators rotate with logrotate's `copytruncate`; Docker
and others rename the file and start a new one. At every end-of-file the tailer compares the
path's identity (device, inode) and the file's first bytes with what it has open:

* another inode at the path: the old file was renamed away; it is read to its end, then the
  new file is read from its start (rotation);
* same inode but shorter than our offset, or different first bytes: the file was truncated
  (copytruncate); reading restarts at 0 (truncation).

A missing file is waited for. New data is found by a cheap poll every `poll_interval`
seconds (default 0.1 s: one read per tenth of a second however many lines were written, so a
node writing each line separately costs no more than one writing in bursts). Filesystem
events (watchdog/inotify) wake the tailer at once when the file is created, renamed or
deleted; modification events are not asked for, because one per written line costs more
CPU than the lines themselves. On filesystems without events (NFS, SMB) the poll finds
rotations too.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from exporter.sources.base import Batch, Source
from exporter.sources.lines import LineSplitter
from exporter.sources.rotated import FINGERPRINT_BYTES, find_saved_file

log = logging.getLogger("exporter.source")

CHUNK = 256 * 1024


class _Wakeup:
    """Sets an event when watchdog reports a change to one path (best effort)."""

    def __init__(self, path: str, event: threading.Event) -> None:
        self.observer = None
        try:
            from watchdog.events import (
                FileCreatedEvent,
                FileDeletedEvent,
                FileMovedEvent,
                FileSystemEventHandler,
            )
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            return
        target = os.path.abspath(path)

        class Handler(FileSystemEventHandler):
            def on_any_event(self, fs_event) -> None:
                paths = (fs_event.src_path, getattr(fs_event, "dest_path", ""))
                if target in (os.fsdecode(p) for p in paths if p):
                    event.set()

        directory = os.path.dirname(target) or "."
        try:
            observer = Observer()
            observer.daemon = True
            observer.schedule(
                Handler(), directory, recursive=False,
                event_filter=[FileCreatedEvent, FileMovedEvent, FileDeletedEvent],
            )
            observer.start()
            self.observer = observer
        except (OSError, RuntimeError) as exc:
            log.info("no filesystem events for %s (%s); polling instead", path, exc)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()


class FileSource(Source):
    def __init__(
        self,
        path: str,
        *,
        from_start: bool = False,
        resume: dict[str, Any] | None = None,
        poll_interval: float = 0.1,
        max_line_bytes: int = 1 << 20,
        watch: bool = True,
    ) -> None:
        super().__init__()
        self.path = path
        self.description = f"file {path}"
        self.from_start = from_start
        self.resume = resume
        self.poll_interval = poll_interval
        self.watch = watch
        self.splitter = LineSplitter(max_line_bytes)
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._offset = 0  # bytes read from the open file
        self._fingerprint = b""
        self._first_open = True
        self._waiting_logged = False

    # ---- position ------------------------------------------------------------------------

    def position(self) -> dict[str, Any] | None:
        """Resume point after the last delivered line (see exporter/checkpoint.py)."""
        if self._ident is None:
            return None
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
            "offset": self._offset - self.splitter.pending_bytes,
            "fingerprint": self._fingerprint.hex(),
        }

    # ---- reading -------------------------------------------------------------------------

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        wake = threading.Event()
        waker = _Wakeup(self.path, wake) if self.watch else None
        try:
            while not stop.is_set():
                if self._fd is None and not self._open():
                    self._sleep(wake, stop)
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
                    if switched:
                        yield self.make_batch(switched)
                    continue
                self._sleep(wake, stop)
        finally:
            if waker is not None:
                waker.stop()
            self._close()

    def make_batch(self, lines: list[str]) -> Batch:
        """Turn raw lines into a batch; subclasses unwrap container formats here."""
        return Batch(lines, time.time(), self.position())

    def _sleep(self, wake: threading.Event, stop: threading.Event) -> None:
        wake.wait(self.poll_interval)
        wake.clear()

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self.resume is None:  # a file that appears later is new: read all of it
                self._first_open = False
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
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._fingerprint = os.pread(fd, FINGERPRINT_BYTES, 0)
        start = 0
        if self._first_open:
            start = self._initial_offset(st)
            self._first_open = False
        os.lseek(fd, start, os.SEEK_SET)
        self._offset = start
        self.stats.up = True
        if self._waiting_logged:
            log.info("log file %s is readable now", self.path)
            self._waiting_logged = False
        return True

    def _initial_offset(self, st: os.stat_result) -> int:
        resume = self.resume
        if resume is None:
            return 0 if self.from_start else st.st_size
        try:
            ident = (int(resume["dev"]), int(resume["ino"]))
            offset = int(resume.get("offset", 0))
            fingerprint = bytes.fromhex(resume.get("fingerprint", ""))
        except (KeyError, TypeError, ValueError):
            log.warning("saved position of %s is not usable; reading it from the start",
                        self.path)
            return 0
        if (
            ident == (st.st_dev, st.st_ino)
            and self._fingerprint.startswith(fingerprint)
            and st.st_size >= offset
        ):
            return offset
        if offset > 0:
            found = find_saved_file(self.path, {**resume, "dev": ident[0], "ino": ident[1]})
            old = found[0] if found else None
            if old is not None and self._resume_in(old, offset, fingerprint):
                log.info(
                    "log file %s was rotated while the exporter was not running; reading the "
                    "rest of %s from the saved position first", self.path, old,
                )
                return offset
        log.warning(
            "log file %s is not the file of the saved position and that file was not found "
            "next to it; reading %s from the start", self.path, self.path,
        )
        return 0

    # ---- resuming into a file rotated while the exporter was down -------------------------

    def _resume_in(self, path: str, offset: int, fingerprint: bytes) -> bool:
        """Make the descriptor `_open` holds read the rotated file `path` instead; at its end
        the usual rotation check switches to the file at `self.path`, read from 0."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            head = os.pread(fd, FINGERPRINT_BYTES, 0)
            if st.st_size < offset or not head.startswith(fingerprint):
                return False
            os.dup2(fd, self._fd, inheritable=False)
        finally:
            os.close(fd)
        self._ident = (st.st_dev, st.st_ino)
        self._fingerprint = head
        return True

    def _check_rotation(self) -> list[str] | None:
        """At EOF: None if nothing changed, else the lines flushed while switching files."""
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
            self._close()
            self._open()
            return rest
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
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._offset = 0
        self._fingerprint = os.pread(self._fd, FINGERPRINT_BYTES, 0)
        return rest

    def _rest_of_copy(self) -> list[str]:
        """Lines written after our last read and before the truncation survive only in the
        copy logrotate made: find it by our fingerprint and read it from our offset."""
        if not self._fingerprint or self._offset == 0:
            return []
        saved = {"dev": self._ident[0], "ino": self._ident[1], "offset": self._offset,
                 "fingerprint": self._fingerprint.hex()}
        found = find_saved_file(self.path, saved)
        if found is None:
            return []
        lines: list[str] = []
        try:
            with open(found[0], "rb") as copy:
                copy.seek(self._offset)
                while data := copy.read(CHUNK):
                    self.stats.bytes_read += len(data)
                    lines.extend(self.splitter.feed(data))
        except OSError as exc:
            log.warning("cannot read the rest of %s from its copy %s: %s", self.path,
                        found[0], exc)
        return lines

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
