"""The JSON answers of a simulated storagenode dashboard API, without the HTTP (see nodeapi.py).

`NodeApiDocuments` holds the scenario (the switches a test flips, documented in nodeapi.py)
and the node's `NodeModel`; on every request it builds the document of an endpoint in the
shape recorded for the node's version and `route` maps a request path to it. The server in
nodeapi.py adds the fault switches (slow, fail, malformed) and the wire encoding.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from exporter.simulate.nodeapi_model import (
    DAILY_BYTES,
    DEFAULT_PINGED_AGO,
    QUIC_PINGED_AGO,
    STARTED_BEFORE,
    NodeModel,
    Satellite,
    month_start,
    prev_month,
    rfc3339,
)
from exporter.simulate.nodeapi_payouts import paystubs_doc

_SCORE_KEYS = {"audit_score": "auditScore", "suspension_score": "suspensionScore",
               "online_score": "onlineScore"}
SCENARIO_KEYS = frozenset({
    *_SCORE_KEYS, "disk_used_ratio", "disqualified", "suspended", "quic_status", "up_to_date",
    "last_pinged_ago_seconds", "extra_satellites", "slow_seconds", "fail", "malformed",
})


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


class NodeApiDocuments:
    """The answers of one simulated node, built from the model and the scenario per request."""

    def __init__(self, version: str = "v1.146", scenario: dict[str, Any] | None = None, *,
                 seed: int = 0, clock: Callable[[], float] | None = None,
                 start: float | None = None) -> None:
        self.scenario: dict[str, Any] = scenario if scenario is not None else {}
        validate_scenario(self.scenario)
        self.clock = clock or time.time
        self.model = NodeModel(version.strip() if version.startswith("v") else f"v{version}",
                               seed, self.clock() if start is None else start)
        self.version = self.model.version_key

    # -- documents -----------------------------------------------------------------------------

    def _score(self, key: str, sat: Satellite, recorded: float) -> float:
        value = self.scenario.get(key)
        if isinstance(value, dict):
            return float(value.get(sat.short, recorded))
        return float(value) if value is not None else recorded

    def _audits(self, sat: Satellite, recorded: dict[str, Any] | None) -> dict[str, Any]:
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
        item["intervalStart"] = rfc3339(month_start(day).timestamp() + (day.day - 1) * 86400)
        return item

    def _stamp(self, template: dict[str, Any], day: date, stored: float,
               calculated: bool = False, hours: float = 24) -> dict[str, Any]:
        item = copy.deepcopy(template)
        item["atRestTotal"] = 0 if calculated else round(stored * hours, 1)
        item["atRestTotalBytes"] = stored
        if "intervalInHours" in item:
            item["intervalInHours"] = hours
        item["intervalStart"] = rfc3339(month_start(day).timestamp() + (day.day - 1) * 86400)
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
        since_midnight = (now - month_start(today).timestamp()) / 3600 - (today.day - 1) * 24
        return [*(self._stamp(template, d, b) for d, b in tallied),
                self._stamp(template, pending, rate, calculated=True),
                self._stamp(template, today, rate, calculated=True,
                            hours=round(since_midnight, 6) or 24)]

    def satellite_doc(self, sat: Satellite, now: float) -> dict[str, Any]:
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
        prev = prev_month(today)
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

    def pricing_doc(self, sat: Satellite) -> dict[str, Any]:
        prices = sat.doc["priceModel"]
        return {"satelliteID": sat.id, "egressBandwidth": prices["EgressBandwidth"],
                "repairBandwidth": prices["RepairBandwidth"],
                "auditBandwidth": prices["AuditBandwidth"], "diskSpace": prices["DiskSpace"]}

    # -- routing -------------------------------------------------------------------------------

    def route(self, path: str, query: str) -> tuple[str | None, Callable[[], tuple[int, Any]]]:
        """(endpoint name or None, a function returning (status, JSON document))."""
        now = self.clock()
        by_id = {s.id: s for s in self.model.satellites(self.scenario)}

        def one(sat_id: str, fn: Callable[[Satellite], Any]) -> tuple[int, Any]:
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
