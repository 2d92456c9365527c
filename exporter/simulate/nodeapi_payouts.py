"""Paystubs of the simulated node (`/api/heldamount/paystubs/{start}/{end}[?id=]`).

A paystub is what the satellite computed for one whole month and sent to the node; here it
comes from the same daily model as the estimated payout (`NodeModel`), in the units the node
serves: money in micro-dollars, `usageAtRest` in TB-months, bytes for the other usage. The
held part follows the node's age on the satellite (`held_rate`), nothing is disposed within
the window the exporter asks for (held amounts are returned at month 16), and everything owed
is paid and distributed. A month's paystub exists from the PAYSTUB_DAY of the next month.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime
from typing import Any

from exporter.simulate.nodeapi_model import NodeModel, Satellite, held_rate, rfc3339

PAYSTUB_DAY = 10  # a month's paystub arrives on this day of the next month
PATH = "/api/heldamount/paystubs/{start}/{end}"
_PERIOD = re.compile(r"(\d{4})-(\d{1,2})")


def parse_period(text: str) -> date | None:
    """YYYY-MM as the node's parsePeriodRange accepts it (month 1-12), else None."""
    match = _PERIOD.fullmatch(text)
    if not match or not 1 <= int(match[2]) <= 12:
        return None
    return date(int(match[1]), int(match[2]), 1)


def _months(start: date, end: date) -> list[date]:
    months, cur = [], start
    while cur <= end:
        months.append(cur)
        cur = date(cur.year + cur.month // 12, cur.month % 12 + 1, 1)
    return months


def _micro(nbytes: float, cents_per_tb: float) -> int:
    """Bytes (or byte-months) at a price in cents per TB -> micro-dollars."""
    return round(nbytes / 1e12 * cents_per_tb * 1e4)


def paystub(model: NodeModel, sat: Satellite, scenario: dict[str, Any], now: float,
            month: date, template: dict[str, Any]) -> dict[str, Any] | None:
    """The satellite's paystub for `month`, or None if it does not exist (yet)."""
    joined = datetime.fromtimestamp(sat.joined, UTC).date().replace(day=1)
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    created = datetime(nxt.year, nxt.month, PAYSTUB_DAY, 12, 30, 41, 125367, tzinfo=UTC)
    if month < joined or created.timestamp() > now:
        return None
    prices = sat.doc["priceModel"]
    use = {"usage": 0, "repair": 0, "audit": 0}
    for _, day in model.bandwidth_days(sat, now, month):
        for kind in use:
            use[kind] += day[("egress", kind)]
    byte_hours = sum(b * 24 for _, b in model.storage_days(sat, scenario, now, month))
    stub = copy.deepcopy(template)
    stub.update(
        satelliteId=sat.id, period=f"{month.year:04d}-{month.month:02d}",
        created=rfc3339(created.timestamp()), codes="",
        usageAtRest=byte_hours / 1e12 / 720, usageGet=use["usage"], usagePut=0,
        usageGetRepair=use["repair"], usagePutRepair=0, usageGetAudit=use["audit"],
        compAtRest=_micro(byte_hours / 720, prices["DiskSpace"]),
        compGet=_micro(use["usage"], prices["EgressBandwidth"]), compPut=0,
        compGetRepair=_micro(use["repair"], prices["RepairBandwidth"]), compPutRepair=0,
        compGetAudit=_micro(use["audit"], prices["AuditBandwidth"]), surgePercent=0,
    )
    earned = stub["compAtRest"] + stub["compGet"] + stub["compGetRepair"] + stub["compGetAudit"]
    held = round(earned * held_rate(sat.joined, month) / 100)
    stub.update(held=held, owed=earned - held, disposed=0, paid=earned - held,
                distributed=earned - held)
    return stub


def paystubs_doc(model: NodeModel, scenario: dict[str, Any], now: float, start: str,
                 end: str, only: str | None = None) -> tuple[int, Any]:
    """(status, document) for the paystubs range, as consoleapi.PayStubPeriod answers."""
    first, last = parse_period(start), parse_period(end)
    if first is None or last is None or last < first:
        return 400, {"error": "payouts console web error: wrong period format: period has "
                              "wrong format"}
    template = model.endpoints[PATH][0]
    sats = model.satellites(scenario)
    # no paystub before the first join or after now: clip, so a huge range stays cheap
    earliest = datetime.fromtimestamp(min(s.joined for s in sats), UTC).date().replace(day=1)
    latest = datetime.fromtimestamp(now, UTC).date().replace(day=1)
    stubs = []
    for month in _months(max(first, earliest), min(last, latest)):
        for sat in sats:
            if only and sat.id != only:
                continue
            stub = paystub(model, sat, scenario, now, month, template)
            if stub is not None:
                stubs.append(stub)
    return 200, stubs or None  # Go marshals an empty (nil) slice as null
