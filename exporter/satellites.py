"""Satellite ID -> short name, shared by the log metrics and the node API metrics.

The built-in table covers the production satellites; the node API poller teaches the
registry names for any other satellite (from `/api/sno/` `satellites[].url`). A satellite
that is known nowhere keeps its node ID as its label value.

A satellite ID read from a log line becomes a label value only when it is a well-formed node
ID (`is_node_id`: base58check of a version byte and 32 bytes, the checksum right), or one the
registry knows; anything else is counted under `INVALID`, and satellites past
`MAX_SATELLITES` per node under `OVERFLOW` (exporter/state.py), so a damaged or hostile log
cannot create label values.
"""

from __future__ import annotations

import hashlib
import re
import threading

KNOWN: dict[str, str] = {
    "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S": "us1",
    "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs": "eu1",
    "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6": "ap1",
    "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE": "saltlake",
    "12rfG3sh9NCWiX3ivPjq2HtdLmbqCrvHVEzJubnzFzosMuawymB": "europe-north-1",
    "12tRQrMTWUWwzwGh18i7Fqs67kmdhH9t6aToeiwbo5mfS2rUmo": "us2",
    "118UWpMCHzs6CvSgWd9BfFVjw5K9pZbJjkfZJexMtSkmKxvvAW": "stefan-benten",
}

#: label values of satellite IDs that are not node IDs, and of satellites beyond the bound
INVALID = "invalid"
OVERFLOW = "overflow"
#: label value of transfers whose line names no satellite (v0.x lines, the v1.86-v1.98
#: race-lost lines whose started line was not seen; exporter/parser.py UNKNOWN)
UNKNOWN = "unknown"
#: distinct satellites tracked per node (the production network has four)
MAX_SATELLITES = 64

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
# 37 bytes (version, 32-byte ID, 4-byte checksum) are 50-51 characters; allow a little less
_NODE_ID_SHAPE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{40,52}")


def _checksum(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()[:4]


def is_node_id(text: object) -> bool:
    """A storj node ID as it is printed: base58check (version byte, 32-byte ID, checksum)."""
    if not isinstance(text, str) or not _NODE_ID_SHAPE.fullmatch(text):
        return False
    n = 0
    for c in text:
        n = n * 58 + _B58_INDEX[c]
    if n.bit_length() > 8 * 37:
        return False
    raw = n.to_bytes(37, "big")
    ones = len(text) - len(text.lstrip("1"))  # base58 writes each leading zero byte as "1"
    return len(raw) - len(raw.lstrip(b"\0")) == ones and _checksum(raw[:33]) == raw[33:]


def encode_node_id(node: bytes, version: int = 0) -> str:
    """The printed form of a 32-byte node ID (the inverse of `is_node_id`; tests, demos)."""
    raw = bytes([version]) + node
    raw += _checksum(raw)
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def short_name_from_url(url: str) -> str:
    """`us1.storj.io:7777` -> `us1`; `saltlake.tardigrade.io:7777` -> `saltlake`."""
    host = url.split("://", 1)[-1].split("@", 1)[-1].rsplit(":", 1)[0]
    return host.split(".", 1)[0] or url


class SatelliteNames:
    """Thread-safe ID -> name map: built-in names first, then names learned from node APIs."""

    def __init__(self) -> None:
        self._names: dict[str, str] = dict(KNOWN)
        self._lock = threading.Lock()

    def name(self, satellite_id: str) -> str:
        return self._names.get(satellite_id, satellite_id)

    def knows(self, satellite_id: str) -> bool:
        return satellite_id in self._names

    def is_label(self, satellite_id: str) -> bool:
        """May this satellite ID from a log line become a label value (see module doc)?"""
        return satellite_id in self._names or satellite_id == UNKNOWN or is_node_id(satellite_id)

    def learn(self, satellite_id: str, url: str) -> None:
        """Record a name for a satellite the built-in table does not know."""
        if not satellite_id or satellite_id in KNOWN or not url:
            return
        with self._lock:
            self._names[satellite_id] = short_name_from_url(url)


# One registry per process: log and API collectors must agree on names.
SATELLITES = SatelliteNames()
