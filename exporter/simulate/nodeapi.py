"""A simulated storagenode dashboard API (`:14002`) over real HTTP, for tests and the demo.

Each version serves the response shapes recorded in `data/nodeapi_<version>.json` (field sets
and order as the Go structs of that release marshal them); the numbers come from a small
deterministic model of one node, so for a given clock and seed every answer is the same, and
with the real clock the disk fills and the month's bandwidth grows so dashboards move.

Versions: `v1.142` (diskSpace before v1.143: `used` = pieces, `available` = allocation),
`v1.144` (v1.143 meanings: `used` incl. trash, `available` = free, `allocated`,
`reclaimable` always 0, `available` may go negative), `v1.146` (used/available fixed in
v1.145) and `v1.162` (`reclaimable` reported, `calculated` in storageDaily: the newest
completed day and today are the node's projections, flagged `calculated: true`).

Endpoints: `/api/sno/`, `/api/sno/satellites`, `/api/sno/satellite/{id}`,
`/api/sno/satellites/{id}/pricing`, `/api/sno/estimated-payout[?id=]`,
`/api/heldamount/held-history`, `/api/heldamount/paystubs/{start}/{end}[?id=]` (see
nodeapi_payouts.py). Any other path answers the dashboard's HTML page (HTTP 200), as the real
console server does.

Scenario keys (a plain dict, `SimulatedNodeApi.scenario`; read on every request, so a test
may change it while the server runs; the CLI re-reads `--scenario FILE` when it changes).
Satellites are named by short name (`us1`, `eu1`, `ap1`, `saltlake`, or the first label of
an extra satellite's host):

  audit_score, suspension_score, online_score
      float 0-1 for every satellite, or {short name: float}; others keep the recorded score.
  disk_used_ratio
      float: used / allocated, where used includes trash (e.g. 0.97; above 1 = overused).
      Without it the disk grows from the recorded 4.21 TB of 6 TB by 1.5 MB/s.
  disqualified, suspended
      [short name, ...]: those satellites report a disqualification / suspension time.
  quic_status
      "OK" or "Misconfigured" (any string is passed through).
  up_to_date
      bool; false also raises allowedVersion above the node's version.
  last_pinged_ago_seconds
      float seconds before now for lastPinged (default 15); null = never pinged (zero time).
  extra_satellites
      [{"id": ..., "url": "host:port"}, ...]: satellites beyond the production four.
  slow_seconds
      float delay before every answer, or {endpoint: float}.
  fail
      true (every endpoint answers HTTP 500 {"error": ...}), [endpoint, ...] or
      {endpoint: bool}.
  malformed
      "html" (HTTP 200 with an HTML page) or "truncated" (HTTP 200, first half of the JSON
      document), or {endpoint: "html" | "truncated"}.

Endpoint names for the fault switches (the same as the exporter's `endpoint` label): `node`,
`satellites`, `satellite`, `payout`, `held`, `pricing`, `satellite_payout` (estimated-payout
with `?id=`), `paystubs`; in a dict, `"*"` means every endpoint.

CLI: `python -m exporter.simulate.nodeapi --listen 127.0.0.1:PORT --version v1.146
[--scenario FILE.json] [--seed N] [--fixed-time 2026-08-20T10:15:00Z]`.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import copy
import hashlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from exporter.satellites import short_name_from_url
from exporter.simulate.nodeapi_payouts import paystubs_doc

DATA_DIR = Path(__file__).with_name("data")
VERSIONS = ("v1.142", "v1.144", "v1.146", "v1.162")
ENDPOINTS = ("node", "satellites", "satellite", "payout", "held", "pricing",
             "satellite_payout", "paystubs")

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

_SCORE_KEYS = {"audit_score": "auditScore", "suspension_score": "suspensionScore",
               "online_score": "onlineScore"}
SCENARIO_KEYS = frozenset({
    *_SCORE_KEYS, "disk_used_ratio", "disqualified", "suspended", "quic_status", "up_to_date",
    "last_pinged_ago_seconds", "extra_satellites", "slow_seconds", "fail", "malformed",
})

HTML_PAGE = (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             b'<title>Storage Node Dashboard</title></head><body><div id="app"></div>'
             b'<script type="module" src="/static/assets/index.js"></script></body></html>\n')


def validate_scenario(scenario: dict[str, Any]) -> None:
    """Reject unknown keys and wrong types early (a typo would otherwise do nothing)."""
    unknown = set(scenario) - SCENARIO_KEYS
    if unknown:
        raise ValueError(f"unknown scenario keys: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(SCENARIO_KEYS))}")
    for key in _SCORE_KEYS:
        value = scenario.get(key)
        values = value.values() if isinstance(value, dict) else [value]
        if value is not None and not all(_is_num(v) and 0 <= v <= 1 for v in values):
            raise ValueError(f"scenario {key}: a number 0-1 or {{satellite: number}}")
    for key in ("disqualified", "suspended", "extra_satellites"):
        if not isinstance(scenario.get(key, []), list):
            raise ValueError(f"scenario {key}: a list")
    for item in scenario.get("extra_satellites", []):
        if not (isinstance(item, dict) and isinstance(item.get("id"), str)
                and isinstance(item.get("url"), str)):
            raise ValueError('scenario extra_satellites: [{"id": ..., "url": "host:port"}]')
    ratio = scenario.get("disk_used_ratio")
    if ratio is not None and not (_is_num(ratio) and ratio >= 0):
        raise ValueError("scenario disk_used_ratio: a number >= 0")
    malformed = scenario.get("malformed")
    modes = malformed.values() if isinstance(malformed, dict) else [malformed]
    if malformed is not None and not all(m in (None, "html", "truncated") for m in modes):
        raise ValueError('scenario malformed: "html" or "truncated" (or per endpoint)')


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _for_endpoint(value: Any, endpoint: str) -> Any:
    """A fault switch is a scalar for every endpoint, a list of endpoints or a dict."""
    if isinstance(value, dict):
        return value.get(endpoint, value.get("*"))
    if isinstance(value, list):
        return endpoint in value
    return value


def rfc3339(t: float) -> str:
    """Unix seconds -> the RFC3339Nano text Go writes (trailing fraction zeros dropped)."""
    dt = datetime.fromtimestamp(t, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def go_json(doc: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, integral floats without ".0"."""

    def fix(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
            return int(value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return (json.dumps(fix(doc), separators=(",", ":")) + "\n").encode()


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _month_start(d: date) -> datetime:
    return datetime(d.year, d.month, 1, tzinfo=UTC)


def _prev_month(d: date) -> date:
    return (d.replace(day=1) - timedelta(days=1)).replace(day=1)


def _round2(x: float) -> float:
    """Go's RoundFloat: math.Round(x*100)/100 (half away from zero)."""
    return math.copysign(math.floor(abs(x) * 100 + 0.5), x) / 100


def held_rate(joined: float, period: date) -> float:
    """payouts.GetHeldRate: 75/50/25/0 % by months since joining."""
    j = datetime.fromtimestamp(joined, UTC)
    months = (period.year - j.year) * 12 + period.month - j.month
    return 75.0 if months < 3 else 50.0 if months < 6 else 25.0 if months < 9 else 0.0


class _Satellite:
    __slots__ = ("doc", "id", "joined", "short", "url", "vetted")

    def __init__(self, sat_id: str, url: str, vetted: str | None, doc: dict[str, Any]) -> None:
        self.id, self.url, self.vetted, self.doc = sat_id, url, vetted, doc
        self.short = short_name_from_url(url)
        self.joined = _parse_time(doc["nodeJoinedAt"])


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
            _Satellite(s["id"], s["url"], s["vettedAt"], per_sat[s["id"]])
            for s in node["satellites"]
        ]

    # -- building blocks -----------------------------------------------------------------------

    def satellites(self, scenario: dict[str, Any]) -> list[_Satellite]:
        sats = list(self.recorded_sats)
        template = self.recorded_sats[0].doc
        for extra in scenario.get("extra_satellites", []):
            doc = copy.deepcopy(template)
            doc["id"] = extra["id"]
            doc["nodeJoinedAt"] = rfc3339(self.start - 40 * 86400)
            doc["vettedAt"] = None
            sats.append(_Satellite(extra["id"], extra["url"], None, doc))
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

    def day_bandwidth(self, sat: _Satellite, day: date, fraction: float) -> dict:
        share = SHARES.get(sat.short, EXTRA_SHARE)
        return {key: int(per_day * share * fraction * (0.8 + 0.4 * self._u(sat.short, day, key)))
                for key, per_day in DAILY_BYTES.items()}

    def bandwidth_days(self, sat: _Satellite, now: float, month: date | None = None):
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

    def storage_days(self, sat: _Satellite, scenario: dict[str, Any], now: float,
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

    def payout_month(self, sat: _Satellite, scenario: dict[str, Any], now: float,
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
        begin = _month_start(today).timestamp()
        nxt = _month_start(today.replace(day=28) + timedelta(days=4)).timestamp()
        end = nxt - 1e-9
        if joined < begin:
            past, total = (now - begin) / 60, (end - begin) / 60
        else:
            past, total = (now - joined) / 60, (end - joined) / 60
        return int(payout_cents / past * total) if past > 0 else 0


class SimulatedNodeApi:
    """The dashboard API of one simulated node on a real ThreadingHTTPServer."""

    def __init__(self, version: str = "v1.146", host: str = "127.0.0.1", port: int = 0,
                 scenario: dict[str, Any] | None = None, *, seed: int = 0,
                 clock: Callable[[], float] | None = None, start: float | None = None) -> None:
        self.scenario: dict[str, Any] = scenario if scenario is not None else {}
        validate_scenario(self.scenario)
        self.clock = clock or time.time
        self.model = NodeModel(version.strip() if version.startswith("v") else f"v{version}",
                               seed, self.clock() if start is None else start)
        self.version = self.model.version_key
        self.requests: dict[str, int] = {}  # endpoint -> count, for tests
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.sim = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SimulatedNodeApi:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name=f"sim-nodeapi-{self.version}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; answers sleeping in `slow_seconds` are cut short."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimulatedNodeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- documents -----------------------------------------------------------------------------

    def _score(self, key: str, sat: _Satellite, recorded: float) -> float:
        value = self.scenario.get(key)
        if isinstance(value, dict):
            return float(value.get(sat.short, recorded))
        return float(value) if value is not None else recorded

    def _audits(self, sat: _Satellite, recorded: dict[str, Any] | None) -> dict[str, Any]:
        base = recorded or {"auditScore": 1, "suspensionScore": 1, "onlineScore": 1}
        out = {}
        for key, field in _SCORE_KEYS.items():
            out[field] = self._score(key, sat, base[field])
        out["satelliteName"] = sat.url
        return out

    def _recorded_audits(self) -> dict[str, dict[str, Any]]:
        audits = self.model.endpoints["/api/sno/satellites"]["audits"]
        return {a["satelliteName"]: a for a in audits}

    def node_doc(self, now: float) -> dict[str, Any]:
        m, sc = self.model, self.scenario
        doc = copy.deepcopy(m.endpoints["/api/sno/"])
        sats = m.satellites(sc)
        template = doc["satellites"][0]
        doc["satellites"] = []
        for sat in sats:
            item = copy.deepcopy(template)
            item.update(id=sat.id, url=sat.url, vettedAt=sat.vetted)
            flagged = rfc3339(now - 2 * 86400)
            item["disqualified"] = flagged if sat.short in sc.get("disqualified", []) else None
            item["suspended"] = flagged if sat.short in sc.get("suspended", []) else None
            if "vettedAt" not in template:
                del item["vettedAt"]
            doc["satellites"].append(item)
        used = m.used(sc, now)
        trash = min(m.trash0, used)
        over = max(0, used - m.allocated)
        disk = doc["diskSpace"]
        if m.old_disk:
            disk.update(used=used - trash, available=m.allocated, trash=trash, overused=over)
        else:
            available = m.allocated - used
            if m.version_key != "v1.144":  # v1.143-v1.144 let it go negative
                available = max(0, available)
            disk.update(used=used, available=available, overused=over, allocated=m.allocated,
                        trash=trash)
            if "reclaimable" in disk:
                disk["reclaimable"] = min(m.reclaimable0 or 0, max(0, used - trash))
        month_total = 0
        for sat in sats:
            for _, use in m.bandwidth_days(sat, now):
                month_total += sum(use.values())
        doc["bandwidth"]["used"] = month_total
        ago = sc.get("last_pinged_ago_seconds", DEFAULT_PINGED_AGO)
        doc["lastPinged"] = "0001-01-01T00:00:00Z" if ago is None else rfc3339(now - ago)
        doc["startedAt"] = rfc3339(m.start - STARTED_BEFORE)
        doc["lastQuicPingedAt"] = rfc3339(now - QUIC_PINGED_AGO)
        if "quic_status" in sc:
            doc["quicStatus"] = sc["quic_status"]
        if sc.get("up_to_date") is False:
            major, minor, _ = (int(p) for p in doc["version"].split("."))
            doc["allowedVersion"] = f"{major}.{minor + 1}.0"
            doc["upToDate"] = False
        return doc

    def _rollup(self, template: dict[str, Any], day: date, use: dict) -> dict[str, Any]:
        item = copy.deepcopy(template)
        for (direction, kind), value in use.items():
            item[direction][kind] = value
        item["delete"] = 0
        item["intervalStart"] = rfc3339(_month_start(day).timestamp() + (day.day - 1) * 86400)
        return item

    def _stamp(self, template: dict[str, Any], day: date, stored: float,
               calculated: bool = False, hours: float = 24) -> dict[str, Any]:
        item = copy.deepcopy(template)
        item["atRestTotal"] = 0 if calculated else round(stored * hours, 1)
        item["atRestTotalBytes"] = stored
        if "intervalInHours" in item:
            item["intervalInHours"] = hours
        item["intervalStart"] = rfc3339(_month_start(day).timestamp() + (day.day - 1) * 86400)
        if "calculated" in item:
            item["calculated"] = calculated
        return item

    def _stamps(self, template: dict[str, Any], days: list[tuple[date, float]],
                now: float) -> list[dict[str, Any]] | None:
        """storageDaily rows. From v1.162 (`calculated` in the shape) the node fills the
        newest completed day, whose tally has not arrived yet, and today with the last
        tallied rate and flags them (storageusage.NormalizeForDisplay); before, those days
        are simply missing."""
        if "calculated" not in template or len(days) < 2:
            return [self._stamp(template, d, b) for d, b in days] or None
        *tallied, (pending, _) = days
        rate = tallied[-1][1]
        today = datetime.fromtimestamp(now, UTC).date()
        since_midnight = (now - _month_start(today).timestamp()) / 3600 - (today.day - 1) * 24
        return [*(self._stamp(template, d, b) for d, b in tallied),
                self._stamp(template, pending, rate, calculated=True),
                self._stamp(template, today, rate, calculated=True,
                            hours=round(since_midnight, 6) or 24)]

    def satellite_doc(self, sat: _Satellite, now: float) -> dict[str, Any]:
        m = self.model
        doc = copy.deepcopy(sat.doc)
        bw = m.bandwidth_days(sat, now)
        st = m.storage_days(sat, self.scenario, now)
        doc["storageDaily"] = self._stamps(sat.doc["storageDaily"][0], st, now)
        doc["bandwidthDaily"] = [self._rollup(sat.doc["bandwidthDaily"][0], d, u)
                                 for d, u in bw] or None
        doc["storageSummary"] = sum(b * 24 for _, b in st)
        doc["averageUsageBytes"] = sum(b for _, b in st) / len(st) if st else 0
        ingress = sum(v for _, u in bw for (dr, _), v in u.items() if dr == "ingress")
        egress = sum(v for _, u in bw for (dr, _), v in u.items() if dr == "egress")
        doc["bandwidthSummary"] = ingress + egress
        doc["egressSummary"] = egress
        doc["ingressSummary"] = ingress
        doc["audits"] = self._audits(sat, self._recorded_audits().get(sat.url))
        doc["auditHistory"]["score"] = doc["audits"]["onlineScore"]
        return doc

    def satellites_doc(self, now: float) -> dict[str, Any]:
        m = self.model
        doc = copy.deepcopy(m.endpoints["/api/sno/satellites"])
        sats = m.satellites(self.scenario)
        bw: dict[date, dict] = {}
        st: dict[date, float] = {}
        for sat in sats:
            for day, use in m.bandwidth_days(sat, now):
                total = bw.setdefault(day, dict.fromkeys(DAILY_BYTES, 0))
                for key, value in use.items():
                    total[key] += value
            for day, stored in m.storage_days(sat, self.scenario, now):
                st[day] = st.get(day, 0.0) + stored
        tmpl_st, tmpl_bw = doc["storageDaily"][0], doc["bandwidthDaily"][0]
        days = [(day, round(st[day], 1)) for day in sorted(st)]
        doc["storageDaily"] = self._stamps(tmpl_st, days, now)
        doc["bandwidthDaily"] = [self._rollup(tmpl_bw, d, bw[d]) for d in sorted(bw)] or None
        doc["storageSummary"] = sum(round(b * 24, 1) for _, b in days)
        doc["averageUsageBytes"] = sum(b for _, b in days) / len(days) if days else 0
        ingress = sum(v for u in bw.values() for (dr, _), v in u.items() if dr == "ingress")
        egress = sum(v for u in bw.values() for (dr, _), v in u.items() if dr == "egress")
        doc["bandwidthSummary"] = ingress + egress
        doc["egressSummary"] = egress
        doc["ingressSummary"] = ingress
        doc["earliestJoinedAt"] = rfc3339(min(s.joined for s in sats))
        recorded = self._recorded_audits()
        doc["audits"] = [self._audits(s, recorded.get(s.url)) for s in sats]
        return doc

    def payout_doc(self, now: float, only: str | None = None) -> dict[str, Any]:
        """All satellites (heldRate stays 0 in the sum, as upstream) or one (`?id=`)."""
        m = self.model
        doc = copy.deepcopy(m.endpoints["/api/sno/estimated-payout"])
        today = datetime.fromtimestamp(now, UTC).date()
        prev = _prev_month(today)
        keys = list(doc["currentMonth"])
        cur_sum = dict.fromkeys(keys, 0.0)
        prev_sum = dict.fromkeys(keys, 0.0)
        expected = 0
        disqualified = set(self.scenario.get("disqualified", []))
        for sat in m.satellites(self.scenario):
            if (only and sat.id != only) or (not only and sat.short in disqualified):
                continue
            cur = m.payout_month(sat, self.scenario, now, None)
            old = m.payout_month(sat, self.scenario, now, prev)
            expected += m.expectation(cur["payout"], sat.joined, now)
            for total, month in ((cur_sum, cur), (prev_sum, old)):
                for key in keys:
                    if key != "heldRate" or only:
                        total[key] += month[key]
        for name, total in (("currentMonth", cur_sum), ("previousMonth", prev_sum)):
            for key in keys:
                value = total[key]
                doc[name][key] = int(value) if key in ("egressBandwidth",
                                                       "egressRepairAudit") else value
        doc["currentMonthExpectations"] = expected
        return doc

    def held_doc(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.model.endpoints["/api/heldamount/held-history"])

    def pricing_doc(self, sat: _Satellite) -> dict[str, Any]:
        prices = sat.doc["priceModel"]
        return {"satelliteID": sat.id, "egressBandwidth": prices["EgressBandwidth"],
                "repairBandwidth": prices["RepairBandwidth"],
                "auditBandwidth": prices["AuditBandwidth"], "diskSpace": prices["DiskSpace"]}

    # -- HTTP ----------------------------------------------------------------------------------

    def route(self, path: str, query: str) -> tuple[str | None, Callable[[], tuple[int, Any]]]:
        """(endpoint name or None, a function returning (status, JSON document))."""
        now = self.clock()
        by_id = {s.id: s for s in self.model.satellites(self.scenario)}

        def one(sat_id: str, fn: Callable[[_Satellite], Any]) -> tuple[int, Any]:
            if not re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{40,60}", sat_id):
                return 400, {"error": "storagenode console web error: node ID: checksum error"}
            if sat_id not in by_id:
                return 404, {"error": "storagenode console web error: satellite not found"}
            return 200, fn(by_id[sat_id])

        if path == "/api/sno/":
            return "node", lambda: (200, self.node_doc(now))
        if path == "/api/sno/satellites":
            return "satellites", lambda: (200, self.satellites_doc(now))
        if match := re.fullmatch(r"/api/sno/satellite/([^/]+)", path):
            return "satellite", lambda: one(match[1], lambda s: self.satellite_doc(s, now))
        if match := re.fullmatch(r"/api/sno/satellites/([^/]+)/pricing", path):
            return "pricing", lambda: one(match[1], self.pricing_doc)
        sat_id = dict(p.partition("=")[::2] for p in query.split("&") if p).get("id")
        if path == "/api/sno/estimated-payout":
            if sat_id:
                return "satellite_payout", lambda: one(sat_id,
                                                       lambda s: self.payout_doc(now, s.id))
            return "payout", lambda: (200, self.payout_doc(now))
        if path == "/api/heldamount/held-history":
            return "held", lambda: (200, self.held_doc())
        if match := re.fullmatch(r"/api/heldamount/paystubs/([^/]+)/([^/]+)", path):
            def stubs() -> tuple[int, Any]:
                return paystubs_doc(self.model, self.scenario, now, match[1], match[2], sat_id)
            return "paystubs", stubs
        return None, lambda: (200, None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Go server
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests and the demo do not want a line per request

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) while we slept
            self.close_connection = True

    def do_GET(self) -> None:
        sim: SimulatedNodeApi = self.server.sim  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        if path == "/api/sno":  # gorilla/mux StrictSlash
            self.send_response(301)
            self.send_header("Location", "/api/sno/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        endpoint, render = sim.route(path, query)
        if endpoint is None:
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            return
        sim.requests[endpoint] = sim.requests.get(endpoint, 0) + 1
        sc = sim.scenario
        slow = _for_endpoint(sc.get("slow_seconds"), endpoint)
        if slow and sim._stopping.wait(float(slow)):
            self.close_connection = True
            return
        if _for_endpoint(sc.get("fail"), endpoint):
            self._send(500, b'{"error":"storagenode console web error: simulated failure"}\n',
                       "application/json")
            return
        malformed = _for_endpoint(sc.get("malformed"), endpoint)
        if malformed == "html":
            self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            return
        try:
            status, doc = render()
        except Exception as exc:  # a model bug: answer like the node does on errors
            status, doc = 500, {"error": f"simulator: {type(exc).__name__}: {exc}"}
        body = go_json(doc)
        if malformed == "truncated":
            body = body[: len(body) // 2]
        self._send(status, body, "application/json")


# -- CLI -------------------------------------------------------------------------------------

def _load_scenario(path: str) -> dict[str, Any]:
    scenario = json.loads(Path(path).read_text())
    if not isinstance(scenario, dict):
        raise ValueError(f"{path}: a JSON object expected")
    validate_scenario(scenario)
    return scenario


def _watch(path: str, sim: SimulatedNodeApi, stop: threading.Event) -> None:
    """Re-read the scenario file when it changes, so a running test can switch faults."""
    seen = os.stat(path).st_mtime_ns
    while not stop.wait(0.2):
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime == seen:
                continue
            seen = mtime
            scenario = _load_scenario(path)
        except (OSError, ValueError) as exc:
            print(f"scenario {path} not applied: {exc}", file=sys.stderr, flush=True)
            continue
        sim.scenario.clear()
        sim.scenario.update(scenario)
        print(f"scenario reloaded from {path}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exporter.simulate.nodeapi",
                                description="Serve a simulated storagenode dashboard API.")
    p.add_argument("--listen", default="127.0.0.1:14002", metavar="HOST:PORT",
                   help="address to serve on (port 0 = any free port; default %(default)s)")
    p.add_argument("--version", default="v1.146", choices=VERSIONS,
                   help="node version whose answers to serve (default %(default)s)")
    p.add_argument("--scenario", metavar="FILE.json",
                   help="scenario (see the module docstring); re-read when the file changes")
    p.add_argument("--seed", type=int, default=0, help="seed of the day-to-day variation")
    p.add_argument("--fixed-time", metavar="RFC3339",
                   help="answer as if it were always this time (default: the real clock)")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        scenario = _load_scenario(args.scenario) if args.scenario else {}
        clock = None
        if args.fixed_time:
            fixed = _parse_time(args.fixed_time)
            clock = lambda: fixed  # noqa: E731
        sim = SimulatedNodeApi(args.version, host.strip("[]") or "127.0.0.1", int(port),
                               scenario, seed=args.seed, clock=clock)
    except (OSError, ValueError) as exc:
        print(f"simulated node API: error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim.start()
    print(f"simulated storagenode {sim.version} dashboard API on {sim.url}", flush=True)
    if args.scenario:
        threading.Thread(target=_watch, args=(args.scenario, sim, stop), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
