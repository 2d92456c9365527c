"""Finding a log's rotated files in its directory.

A saved position names a file by device/inode and by its first bytes (fingerprint). After a
rename rotation the inode is found under another name; after copytruncate the old content is
in a copy with another inode but the same first bytes. Used by the file source when it
resumes from a state file and by the forwarder when a client resumes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

FINGERPRINT_BYTES = 64

#: Rotated files with these endings are compressed; their bytes are not log lines.
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")

log = logging.getLogger("exporter.source")


def read_head(path: str) -> bytes:
    """The first FINGERPRINT_BYTES of a file (empty if it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(FINGERPRINT_BYTES)
    except OSError:
        return b""


def matches(st: os.stat_result, head: bytes, pos: dict[str, Any], fingerprint: bytes) -> bool:
    """The file starts with the saved first bytes and reaches the saved offset."""
    return head.startswith(fingerprint) and st.st_size >= int(pos.get("offset", 0))


def find_saved_file(path: str, pos: dict[str, Any]) -> tuple[str, os.stat_result] | None:
    """The file the position belongs to, in the log's directory, other than the live file."""
    directory = os.path.dirname(os.path.abspath(path))
    fingerprint = bytes.fromhex(pos.get("fingerprint", ""))
    want = (pos["dev"], pos["ino"])
    try:
        live = os.stat(path)
        live_ident = (live.st_dev, live.st_ino)
    except OSError:
        live_ident = None
    by_fingerprint = None
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        log.warning("cannot list %s to find the rotated log: %s", directory, exc)
        return None
    for entry in entries:
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident == live_ident or entry.name.endswith(COMPRESSED):
            continue
        if ident != want and not fingerprint:
            continue  # an empty fingerprint identifies nothing on its own
        head = read_head(entry.path)
        if not matches(st, head, pos, fingerprint):
            continue
        if ident == want:
            return entry.path, st
        # several copies can start alike (two rotations in one second): the newest is the
        # one a rotation just made
        if by_fingerprint is None or st.st_mtime_ns > by_fingerprint[1].st_mtime_ns:
            by_fingerprint = (entry.path, st)
    return by_fingerprint


def newer_siblings(path: str, after: os.stat_result, skip: set[tuple[int, int]]) -> list[str]:
    """Rotated files of the same log written after `after` (oldest first).

    Covers more than one rotation during a disconnect (node.log.1 then node.log.2 ...).
    """
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith(base) or entry.name.endswith(COMPRESSED):
            continue
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in skip or st.st_mtime_ns <= after.st_mtime_ns:
            continue
        found.append((st.st_mtime_ns, entry.path))
    return [p for _, p in sorted(found)]
