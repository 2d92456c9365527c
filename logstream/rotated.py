"""A log's own rotated files, and where a saved position resumes among them.

Shared by the file source (resuming from a state file) and the forwarder (resuming a client),
so both follow the same rule:

* Only the log itself and *its own* rotated files are candidates: the log's basename plus a
  rotation suffix (`node.log.1`, `node.log.2.gz`, `node.log-20261201`, `node.log-2026120113.gz`).
  Any other file in the directory (a growing copy of the log, `config.yaml`) is never read,
  and neither is a symlink posing as a rotated file.
* A saved position names its file by device/inode and by the file's first bytes. The
  fingerprint must be *full* (FINGERPRINT_BYTES, or every byte before the offset when the file
  was shorter) and the candidate must start with exactly those bytes; for a `.gz` the
  decompressed head is compared, so a file compressed after rotation is found too and is
  resumed at the saved uncompressed offset.
* After the saved file, the rotated files newer than it are read in rotation order (logrotate
  numbering: a higher number is older; dateext: a later date is newer), then the current file
  from its start. Two rotations, or rename then gzip, during one downtime lose nothing.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

FINGERPRINT_BYTES = 64
#: A rotation suffix after the log's basename: `.N` or `-DATE` (logrotate `dateext`, with an
#: optional hour/minute/second or `-%s` part), optionally `.gz`.
_SUFFIX = re.compile(r"(?:\.(?P<n>\d{1,6})|-(?P<date>\d{8}(?:\d{2}){0,3}(?:-\d{1,12})?))"
                     r"(?P<gz>\.gz)?\Z")
_MAX_ID = 1 << 64
#: Errors a damaged or half-written .gz raises while it is read.
GZIP_ERRORS = (OSError, EOFError, zlib.error)

log = logging.getLogger("exporter.source")


@dataclass(frozen=True)
class Rotated:
    """One rotated file of a log; `rank` orders them oldest first."""

    path: str
    st: os.stat_result
    compressed: bool
    rank: tuple


@dataclass
class Saved:
    """A saved position that passed the checks: whose file, how far, its first bytes."""

    ident: tuple[int, int]
    offset: int
    fingerprint: bytes


@dataclass
class Resume:
    """Where reading starts for a saved position (see `resolve`).

    `status`: "new" (no position), "waiting" (the log did not exist when it was saved: read it
    from its start), "live" (the log itself, at `live_offset`), "rotated" (read `chain` first:
    the saved file from its offset, then the files rotated after it), "gone" (the saved file
    is not among the log's files), "invalid" (not a position of ours; `reason` says why).
    `live_offset` None means the end of the log.
    """

    status: str
    chain: list[tuple[Rotated, int]] = field(default_factory=list)
    live_offset: int | None = 0
    reason: str = ""


def waiting_position(path: str) -> dict[str, Any]:
    """The position of a log that does not exist yet: everything it will contain is new."""
    return {"path": path, "waiting": True, "offset": 0, "fingerprint": ""}


def rotation_rank(base: str, name: str) -> tuple | None:
    """Sort key (oldest first) if `name` is a rotated file of the log named `base`, else None."""
    if not name.startswith(base):
        return None
    m = _SUFFIX.match(name, len(base))
    if m is None:
        return None
    if m["n"] is not None:
        return (-int(m["n"]), 0)
    date, _, extra = m["date"].partition("-")
    return (int(date.ljust(14, "0")), int(extra or 0))


def rotated_files(path: str) -> list[Rotated]:
    """The log's own rotated files in its directory, oldest first; not the log itself.

    When both `node.log.2` and `node.log.2.gz` exist (gzip is running), the plain one is kept.
    """
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    try:
        live = os.stat(path)
        live_ident = (live.st_dev, live.st_ino)
    except OSError:
        live_ident = None
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        log.warning("cannot list %s to find the rotated log: %s", directory, exc)
        return []
    found: dict[tuple, Rotated] = {}
    for entry in entries:
        rank = rotation_rank(base, entry.name)
        if rank is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == live_ident:
            continue
        item = Rotated(entry.path, st, entry.name.endswith(".gz"), rank)
        if rank not in found or found[rank].compressed:
            found[rank] = item
    return [found[rank] for rank in sorted(found)]


def open_log(path: str, compressed: bool) -> IO[bytes]:
    """A rotated (or live) file for reading its uncompressed bytes."""
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def read_head(path: str, compressed: bool = False) -> bytes:
    """The first FINGERPRINT_BYTES (uncompressed) of a file; empty if it cannot be read."""
    try:
        with open_log(path, compressed) as fh:
            return fh.read(FINGERPRINT_BYTES)
    except GZIP_ERRORS:
        return b""


def check(pos: Any) -> Saved | str:
    """The saved position as trusted values, or why it is not one of ours."""
    if not isinstance(pos, dict):
        return f"not an object ({type(pos).__name__})"
    values = []
    for key, limit in (("dev", _MAX_ID), ("ino", _MAX_ID), ("offset", 1 << 62)):
        value = pos.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
            return f"{key} is not a count"
        values.append(value)
    text = pos.get("fingerprint")
    if not isinstance(text, str) or len(text) > 2 * FINGERPRINT_BYTES:
        return "fingerprint is not a hex string"
    try:
        fingerprint = bytes.fromhex(text)
    except ValueError:
        return "fingerprint is not a hex string"
    if len(fingerprint) < min(FINGERPRINT_BYTES, values[2]):
        return "fingerprint shorter than the file it names"
    return Saved((values[0], values[1]), values[2], fingerprint)


def _is_waiting(pos: Any) -> bool:
    return isinstance(pos, dict) and pos.get("waiting") is True and pos.get("offset") == 0


def locate(path: str, saved: Saved) -> list[tuple[Rotated, int]]:
    """The saved file among the log's rotated files, at the saved offset, then the rotated
    files newer than it (from 0); [] if it is not there.

    Matched by device/inode (rename rotation) or else by fingerprint (the copy copytruncate
    leaves, or the .gz the saved file became); the first bytes must match either way.
    """
    files = rotated_files(path)
    by_inode = by_fingerprint = None
    for item in files:
        plain_short = not item.compressed and item.st.st_size < saved.offset
        if plain_short or not read_head(item.path, item.compressed).startswith(saved.fingerprint):
            continue
        if (item.st.st_dev, item.st.st_ino) == saved.ident and not item.compressed:
            by_inode = item
        elif saved.fingerprint and (  # an empty fingerprint identifies nothing on its own
            # several alike (lines that start alike): the one a rotation wrote last
            by_fingerprint is None or item.st.st_mtime_ns >= by_fingerprint.st.st_mtime_ns
        ):
            by_fingerprint = item
    found = by_inode or by_fingerprint
    if found is None:
        return []
    # newer by name and not older by modification time (a copy named out of order, e.g.
    # node.log.2 made after node.log.1, is not taken for a later rotation)
    newer = [(item, 0) for item in files
             if item.rank > found.rank and item.st.st_mtime_ns >= found.st.st_mtime_ns]
    return [(found, saved.offset), *newer]


def resolve(path: str, pos: Any) -> Resume:
    """Where reading the log at `path` starts for the saved position `pos` (None: none)."""
    if pos is None:
        return Resume("new", live_offset=None)
    if _is_waiting(pos):
        return Resume("waiting")
    saved = check(pos)
    if isinstance(saved, str):
        return Resume("invalid", live_offset=None, reason=saved)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if (
        st is not None
        and (st.st_dev, st.st_ino) == saved.ident
        and st.st_size >= saved.offset
        and read_head(path).startswith(saved.fingerprint)
    ):
        return Resume("live", live_offset=saved.offset)
    chain = locate(path, saved)
    if chain:
        return Resume("rotated", chain)
    if _other_file(path, saved.ident):
        return Resume("invalid", live_offset=None,
                      reason="it names another file in the log's directory")
    return Resume("gone", reason="the file of the saved position is not among the log's files")


def _other_file(path: str, ident: tuple[int, int]) -> bool:
    """Some file of the log's directory that is not one of the log's has this identity
    (the log's own files may carry a reused inode: that is a rotation, not an escape)."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name == base or rotation_rank(base, entry.name) is not None:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) == ident:
                    return True
    except OSError:
        return False
    return False


def position_at(item: Rotated, offset: int, head: bytes) -> dict[str, Any]:
    """A position in a rotated file (its uncompressed offset and head for a .gz)."""
    return {"path": item.path, "dev": item.st.st_dev, "ino": item.st.st_ino, "offset": offset,
            "fingerprint": head.hex()}


def read_from(fh: IO[bytes], offset: int, chunk: int) -> Iterator[bytes]:
    """The bytes of `fh` after `offset` (skipped by reading, so it works for .gz too)."""
    left = offset
    while left > 0:
        skipped = fh.read(min(chunk, left))
        if not skipped:
            return
        left -= len(skipped)
    while data := fh.read(chunk):
        yield data


def describe(pos: Any, limit: int = 200) -> str:
    """A client-supplied position for a log line: escaped (repr) and bounded."""
    text = repr(pos)
    return text if len(text) <= limit else text[:limit] + "...'"
