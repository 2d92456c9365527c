"""Satellite ID -> short name, shared by the log metrics and the node API metrics.

The built-in table covers the production satellites; the node API poller teaches the
registry names for any other satellite (from `/api/sno/` `satellites[].url`). A satellite
that is known nowhere keeps its node ID as its label value.
"""

from __future__ import annotations

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

    def learn(self, satellite_id: str, url: str) -> None:
        """Record a name for a satellite the built-in table does not know."""
        if not satellite_id or satellite_id in KNOWN or not url:
            return
        with self._lock:
            self._names[satellite_id] = short_name_from_url(url)


# One registry per process: log and API collectors must agree on names.
SATELLITES = SatelliteNames()
