"""One inotify descriptor for every tailed file of the process (Linux; ctypes, no thread).

Why not watchdog: its observer runs two threads per watched directory (an emitter and an
inotify buffer), so a fleet of nodes with one log directory each costs threads that grow with
the nodes. Here the shared poll loop (logstream/loop.py) selects on this one descriptor
beside its own timeout, so events cost no thread at all.

Two kinds of watches are used:

* a directory watch (created, moved in or out, deleted) per directory holding a tailed log:
  rotation and a log that appears are seen at once, without a modification event per line;
* a one-shot modification watch on a log that has gone idle (IN_ONESHOT: the kernel removes
  it after the first event), so the first line after a quiet spell wakes its tailer at once
  and a busy log causes no events at all.

Where inotify is missing (not Linux, a container without it, the per-user instance limit
reached) `Inotify.open()` returns None and the loop only polls. On NFS/SMB the kernel reports
no changes made by other hosts; the loop's bounded idle poll finds them.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ctypes

log = logging.getLogger("exporter.source")

IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ONESHOT = 0x80000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

#: what a directory watch asks for: a file appears, goes or is renamed (never per line)
DIR_EVENTS = IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_ONLYDIR
#: the one-shot watch on an idle log: its next write
IDLE_EVENTS = IN_MODIFY | IN_ONESHOT

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


class Inotify:
    """A non-blocking inotify descriptor; `read()` returns (wd, mask, name) events."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd

    @classmethod
    def open(cls) -> Inotify | None:
        """None where inotify cannot be used (the caller polls)."""
        import ctypes  # here: `report` and the checks never open one (ctypes.util costs ~6 ms)
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            init = libc.inotify_init1
        except (OSError, AttributeError):
            return None
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            log.info("no filesystem events (inotify: %s); polling the logs instead",
                     os.strerror(ctypes.get_errno()))
            return None
        return cls(libc, fd)

    def add(self, path: str, mask: int) -> int | None:
        """The watch descriptor, or None (missing path, no permission, watch limit)."""
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            import ctypes

            err = ctypes.get_errno()
            if err == errno.ENOSPC:
                log.warning("inotify watch limit reached (fs.inotify.max_user_watches) at %s; "
                            "that log is polled", path)
            return None
        return wd

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)  # gone already (one-shot fired): harmless

    def read(self) -> list[tuple[int, int, str]]:
        """Every queued event; [] if none."""
        events = []
        while True:
            try:
                data = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return events
            if not data:
                return events
            at = 0
            while at + _HEADER.size <= len(data):
                wd, mask, _, size = _HEADER.unpack_from(data, at)
                at += _HEADER.size
                name = data[at:at + size].rstrip(b"\0")
                at += size
                events.append((wd, mask, os.fsdecode(name)))

    def close(self) -> None:
        os.close(self.fd)
