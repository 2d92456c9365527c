"""The numbers of one simulated storagenode: a small deterministic model (see nodeapi.py).

`NodeModel` turns (scenario, seed, time) into disk use, daily bandwidth, daily storage and the
month's estimated payout per satellite, starting from the answers recorded for a node version
in `data/nodeapi_<version>.json`; `nodeapi_documents.py` pours these numbers into the JSON
shapes of that version, `nodeapi_payouts.py` into paystubs. Also the Go-compatible time and
rounding helpers both need.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from exporter.satellites import short_name_from_url

DATA_DIR = Path(__file__).with_name("data")
VERSIONS = ("v1.142", "v1.144", "v1.146", "v1.162")

# The model: node-wide bytes per day, split over satellites by share, +-20 % per day.
DAILY_BYTES = {
    ("ingress", "usage"): 55e9, ("ingress", "repair"): 11e9,
    ("egress", "usage"): 33e9, ("egress", "repair"): 7.5e9, ("egress", "audit"): 25e6,
}
SHARES = {"us1": 0.45, "eu1": 0.35, "ap1": 0.15, "saltlake": 0.05}
EXTRA_SHARE = 0.02
DISK_GROWTH = 1.5e6  # bytes per second (~130 GB a day)
STARTED_BEFORE = 2 * 86400 + 11568.012345  # the node process started this long before `start`
QUIC_PINGED_AGO = 1018.5
DEFAULT_PINGED_AGO = 15.0


def rfc3339(t: float) -> str:
    """Unix seconds -> the RFC3339Nano text Go writes (trailing fraction zeros dropped)."""
    dt = datetime.fromtimestamp(t, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def month_start(d: date) -> datetime:
    return datetime(d.year, d.month, 1, tzinfo=UTC)


def prev_month(d: date) -> date:
    return (d.replace(day=1) - timedelta(days=1)).replace(day=1)


def _round2(x: float) -> float:
    """Go's RoundFloat: math.Round(x*100)/100 (half away from zero)."""
    return math.copysign(math.floor(abs(x) * 100 + 0.5), x) / 100


def held_rate(joined: float, period: date) -> float:
    """payouts.GetHeldRate: 75/50/25/0 % by months since joining."""
    j = datetime.fromtimestamp(joined, UTC)
    months = (period.year - j.year) * 12 + period.month - j.month
    return 75.0 if months < 3 else 50.0 if months < 6 else 25.0 if months < 9 else 0.0


class Satellite:
    __slots__ = ("doc", "id", "joined", "short", "url", "vetted")

    def __init__(self, sat_id: str, url: str, vetted: str | None, doc: dict[str, Any]) -> None:
        self.id, self.url, self.vetted, self.doc = sat_id, url, vetted, doc
        self.short = short_name_from_url(url)
        self.joined = parse_time(doc["nodeJoinedAt"])


class NodeModel:
    """The numbers of one simulated node as a pure function of (scenario, seed, time)."""

    def __init__(self, version: str, seed: int, start: float) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown version {version!r}; known: {', '.join(VERSIONS)}")
        recorded = json.loads((DATA_DIR / f"nodeapi_{version}.json").read_text())
        self.version_key = version
        self.endpoints: dict[str, Any] = recorded["endpoints"]
        self.seed = seed
        self.start = start
        node = self.endpoints["/api/sno/"]
        disk = node["diskSpace"]
        self.old_disk = "allocated" not in disk
        self.allocated = disk["available"] if self.old_disk else disk["allocated"]
        self.used0 = disk["used"] + disk["trash"] if self.old_disk else disk["used"]
        self.trash0 = disk["trash"]
        self.reclaimable0 = disk.get("reclaimable")
        per_sat = self.endpoints["/api/sno/satellite/{id}"]
        self.recorded_sats = [
            Satellite(s["id"], s["url"], s["vettedAt"], per_sat[s["id"]])
            for s in node["satellites"]
        ]

    # -- building blocks -----------------------------------------------------------------------

    def satellites(self, scenario: dict[str, Any]) -> list[Satellite]:
        sats = list(self.recorded_sats)
        template = self.recorded_sats[0].doc
        for extra in scenario.get("extra_satellites", []):
            doc = copy.deepcopy(template)
            doc["id"] = extra["id"]
            doc["nodeJoinedAt"] = rfc3339(self.start - 40 * 86400)
            doc["vettedAt"] = None
            sats.append(Satellite(extra["id"], extra["url"], None, doc))
        return sats

    def _u(self, *parts: object) -> float:
        """Deterministic uniform [0, 1) from the seed and `parts`."""
        digest = hashlib.blake2b(repr((self.seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def used(self, scenario: dict[str, Any], now: float) -> int:
        ratio = scenario.get("disk_used_ratio")
        if ratio is not None:
            return int(ratio * self.allocated)
        return int(self.used0 + DISK_GROWTH * max(0.0, now - self.start))

    def day_bandwidth(self, sat: Satellite, day: date, fraction: float) -> dict:
        share = SHARES.get(sat.short, EXTRA_SHARE)
        return {key: int(per_day * share * fraction * (0.8 + 0.4 * self._u(sat.short, day, key)))
                for key, per_day in DAILY_BYTES.items()}

    def bandwidth_days(self, sat: Satellite, now: float, month: date | None = None):
        """[(day, usage)] for `month` (default: the month of `now`, today partial)."""
        today = datetime.fromtimestamp(now, UTC)
        first = month or today.date().replace(day=1)
        ndays = calendar.monthrange(first.year, first.month)[1]
        joined = datetime.fromtimestamp(sat.joined, UTC).date()
        days = []
        for i in range(ndays):
            day = first + timedelta(days=i)
            if day > today.date():
                break
            if day < joined:
                continue
            fraction = 1.0
            if day == today.date():
                fraction = (now - datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
                            ) / 86400
            days.append((day, self.day_bandwidth(sat, day, fraction)))
        return days

    def storage_days(self, sat: Satellite, scenario: dict[str, Any], now: float,
                     month: date | None = None):
        """[(day, average bytes stored)] for completed tally days of the month."""
        today = datetime.fromtimestamp(now, UTC).date()
        first = month or today.replace(day=1)
        ndays = calendar.monthrange(first.year, first.month)[1]
        joined = datetime.fromtimestamp(sat.joined, UTC).date()
        stored = max(0, self.used(scenario, now) - self.trash0) * SHARES.get(sat.short,
                                                                             EXTRA_SHARE)
        days = []
        for i in range(ndays):
            day = first + timedelta(days=i)
            if day >= today:
                break
            if day >= joined:
                days.append((day, round(stored * (0.97 + 0.06 * self._u(sat.short, day, "st")),
                                        1)))
        return days

    def payout_month(self, sat: Satellite, scenario: dict[str, Any], now: float,
                     month: date | None) -> dict[str, float]:
        """estimatedpayouts.estimationUsagePeriod for one satellite and month (cents)."""
        period = month or datetime.fromtimestamp(now, UTC).date()
        prices = sat.doc["priceModel"]
        egress = repair_audit = 0
        for _, use in self.bandwidth_days(sat, now, month):
            egress += use[("egress", "usage")]
            repair_audit += use[("egress", "repair")] + use[("egress", "audit")]
        disk = sum(b * 24 for _, b in self.storage_days(sat, scenario, now, month)) / 720
        out = {
            "egressBandwidth": egress,
            "egressBandwidthPayout": _round2(egress * prices["EgressBandwidth"] / 1e12),
            "egressRepairAudit": repair_audit,
            "egressRepairAuditPayout": _round2(repair_audit * prices["AuditBandwidth"] / 1e12),
            "diskSpace": disk,
            "diskSpacePayout": _round2(disk * prices["DiskSpace"] / 1e12),
            "heldRate": held_rate(sat.joined, period),
        }
        gross = (out["diskSpacePayout"] + out["egressBandwidthPayout"]
                 + out["egressRepairAuditPayout"])
        out["held"] = gross * out["heldRate"] / 100
        out["payout"] = _round2(gross - out["held"])
        return out

    @staticmethod
    def expectation(payout_cents: float, joined: float, now: float) -> int:
        """EstimatedPayout.Set: the month's payout so far projected to the month's end."""
        today = datetime.fromtimestamp(now, UTC).date()
        begin = month_start(today).timestamp()
        nxt = month_start(today.replace(day=28) + timedelta(days=4)).timestamp()
        end = nxt - 1e-9
        if joined < begin:
            past, total = (now - begin) / 60, (end - begin) / 60
        else:
            past, total = (now - joined) / 60, (end - joined) / 60
        return int(payout_cents / past * total) if past > 0 else 0
