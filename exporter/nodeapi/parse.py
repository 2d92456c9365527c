"""Dashboard API JSON -> plain, version-independent data in base units.

Every parser validates what it reads: a missing field, a wrong type or a document that is not
the expected object raises `Malformed`, so a half-written answer is counted as an error
instead of turning into zeros. Field meanings: reference storagenode-logs-and-api.md §4.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Malformed(ValueError):
    """The answer is JSON but not the document the endpoint should return."""


# -- small validating accessors ---------------------------------------------------------------

def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    """Go marshals an empty (nil) slice as null; treat it as an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{where}: expected a list, got {type(value).__name__}")
    return value


# No field the exporter reads comes near this (bytes: 1e18 is an exabyte; money in
# micro-dollars: a trillion dollars); beyond it a number is garbage, not a gauge value.
LIMIT = 1e18


def _num(doc: dict[str, Any], key: str, where: str, low: float = -LIMIT,
         high: float = LIMIT) -> float:
    """A finite number within [low, high]; anything else is Malformed (never inf or 1e300)."""
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{where}.{key}: expected a number, got {value!r:.40}")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not low <= number <= high:  # also false for NaN
        raise Malformed(f"{where}.{key}: {str(value)[:40]} is outside {low:g} to {high:g}")
    return number


def _str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise Malformed(f"{where}.{key}: expected a string, got {value!r:.40}")
    return value


def _bool(doc: dict[str, Any], key: str, where: str) -> bool:
    value = doc.get(key)
    if not isinstance(value, bool):
        raise Malformed(f"{where}.{key}: expected true/false, got {value!r:.40}")
    return value


def parse_time(value: Any, where: str) -> float | None:
    """RFC3339(Nano) -> Unix seconds; null and Go's zero time ("never") -> None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{where}: expected a time string, got {value!r:.40}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"{where}: not an RFC3339 time: {value!r:.40}") from exc
    if parsed.tzinfo is None:
        raise Malformed(f"{where}: time without zone: {value!r:.40}")
    if parsed.year <= 1:
        return None
    return parsed.timestamp()


def _version_tuple(version: str) -> tuple[int, ...]:
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(p) for p in match.groups()) if match else ()


# -- /api/sno/ ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Disk:
    """Bytes. `used` includes trash (and hashstore data); used + free = allocated unless the
    node is over its allocation or the disk itself is nearly full. `reclaimable` is None
    before v1.143, where the node does not report it."""

    used: float
    free: float
    trash: float
    allocated: float
    overused: float
    reclaimable: float | None


@dataclass(frozen=True, slots=True)
class SatelliteStatus:
    id: str
    url: str
    disqualified: bool
    suspended: bool
    vetted: bool | None  # None: node older than v1.131 (no vettedAt)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    wallet: str
    version: str
    allowed_version: str
    up_to_date: bool
    quic_ok: bool | None  # None: node older than v1.67 (no quicStatus)
    last_pinged: float | None
    last_quic_pinged: float | None
    started_at: float | None
    disk: Disk
    satellites: tuple[SatelliteStatus, ...]


def normalise_disk(raw: Any, version: str) -> Disk:
    """Give `diskSpace` one meaning for every node version.

    Before v1.143 `used` is pieces only and `available` is the whole allocation; from v1.143
    `used` includes trash, `available` is the free space and `allocated` exists (this is how
    the two are told apart). In v1.143.x-v1.144.x `used` subtracts hashstore bytes instead of
    adding them (fixed in v1.145, commit 3aea9a51a6) and `available` may go negative, so there
    `allocated - available` (exact unless the disk itself is nearly full) is taken when larger.
    """
    disk = _obj(raw, "diskSpace")
    used = _num(disk, "used", "diskSpace")
    available = _num(disk, "available", "diskSpace")
    trash = _num(disk, "trash", "diskSpace")
    overused = _num(disk, "overused", "diskSpace")
    if "allocated" not in disk:  # before v1.143
        return Disk(
            used=used + trash,
            free=max(0.0, available - used - trash),
            trash=trash,
            allocated=available,
            overused=overused,
            reclaimable=None,
        )
    allocated = _num(disk, "allocated", "diskSpace")
    if (1, 143) <= _version_tuple(version)[:2] < (1, 145):
        used = max(used, allocated - available)
    reclaimable = _num(disk, "reclaimable", "diskSpace") if "reclaimable" in disk else None
    return Disk(
        used=used,
        free=max(0.0, available),
        trash=trash,
        allocated=allocated,
        overused=overused,
        reclaimable=reclaimable,
    )


def parse_node(doc: Any) -> NodeInfo:
    """`GET /api/sno/` (the dashboard document)."""
    doc = _obj(doc, "/api/sno/")
    satellites = []
    for i, item in enumerate(_list(doc.get("satellites"), "satellites")):
        where = f"satellites[{i}]"
        item = _obj(item, where)
        satellites.append(SatelliteStatus(
            id=_str(item, "id", where),
            url=_str(item, "url", where),
            disqualified=parse_time(item.get("disqualified"), f"{where}.disqualified") is not None,
            suspended=parse_time(item.get("suspended"), f"{where}.suspended") is not None,
            vetted=(parse_time(item["vettedAt"], f"{where}.vettedAt") is not None
                    if "vettedAt" in item else None),
        ))
    version = _str(doc, "version", "/api/sno/")
    quic = doc.get("quicStatus")
    return NodeInfo(
        node_id=_str(doc, "nodeID", "/api/sno/"),
        wallet=doc.get("wallet") if isinstance(doc.get("wallet"), str) else "",
        version=version,
        allowed_version=_str(doc, "allowedVersion", "/api/sno/"),
        up_to_date=_bool(doc, "upToDate", "/api/sno/"),
        quic_ok=None if quic is None else quic == "OK",
        last_pinged=parse_time(doc.get("lastPinged"), "lastPinged"),
        last_quic_pinged=parse_time(doc.get("lastQuicPingedAt"), "lastQuicPingedAt"),
        started_at=parse_time(doc.get("startedAt"), "startedAt"),
        disk=normalise_disk(doc.get("diskSpace"), version),
        satellites=tuple(satellites),
    )


# -- /api/sno/satellites -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scores:
    audit: float
    suspension: float
    online: float


def _scores(item: Any, where: str) -> Scores:
    item = _obj(item, where)
    return Scores(
        audit=_num(item, "auditScore", where, 0.0, 1.0),
        suspension=_num(item, "suspensionScore", where, 0.0, 1.0),
        online=_num(item, "onlineScore", where, 0.0, 1.0),
    )


def parse_satellites(doc: Any) -> dict[str, Scores]:
    """`GET /api/sno/satellites` -> scores by satellite address (`audits[]` has no ID)."""
    doc = _obj(doc, "/api/sno/satellites")
    if "audits" not in doc:
        raise Malformed("/api/sno/satellites: no audits")
    scores = {}
    for i, item in enumerate(_list(doc.get("audits"), "audits")):
        where = f"audits[{i}]"
        scores[_str(_obj(item, where), "satelliteName", where)] = _scores(item, where)
    return scores


# -- /api/sno/satellite/{id} -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SatelliteMonth:
    """This UTC month so far for one satellite, in bytes."""

    id: str
    ingress: dict[str, float]  # usage, repair
    egress: dict[str, float]  # usage, repair, audit
    storage_average_bytes: float | None
    joined_at: float | None
    at_rest: AtRest | None  # the satellite's newest tally this month, if any


@dataclass(frozen=True, slots=True)
class AtRest:
    """One `storageDaily` day as the satellite tallied it: average bytes, and the day."""

    bytes: float
    day: float  # Unix time of intervalStart (the UTC day's start)


def newest_at_rest(raw: Any, where: str) -> AtRest | None:
    """The newest `storageDaily` day the satellite tallied, skipping `calculated` ones.

    Since v1.162 the node fills days whose tally has not arrived (and today) with a
    projection from the last tally, flagged `calculated: true` (storageusage.NormalizeForDisplay);
    those are not what the satellite reported. `atRestTotalBytes` (since v1.70) is the
    day's average in bytes; without it `atRestTotal` (byte-hours) / `intervalInHours`."""
    best: AtRest | None = None
    for i, item in enumerate(_list(raw, f"{where}.storageDaily")):
        day_where = f"{where}.storageDaily[{i}]"
        item = _obj(item, day_where)
        if item.get("calculated") is True:
            continue
        day = parse_time(item.get("intervalStart"), f"{day_where}.intervalStart")
        if day is None:
            continue
        if "atRestTotalBytes" in item:
            value = _num(item, "atRestTotalBytes", day_where, 0.0)
        else:
            hours = item.get("intervalInHours") or 24
            if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
                raise Malformed(f"{day_where}.intervalInHours: {hours!r:.40} is not positive")
            value = _num(item, "atRestTotal", day_where, 0.0) / hours
        if best is None or day > best.day:
            best = AtRest(bytes=value, day=day)
    return best


def parse_satellite(doc: Any, satellite_id: str) -> SatelliteMonth:
    """`GET /api/sno/satellite/{id}`: sums the daily bandwidth rollups by kind."""
    where = f"/api/sno/satellite/{satellite_id}"
    doc = _obj(doc, where)
    if doc.get("id") != satellite_id:
        raise Malformed(f"{where}: answer is for satellite {doc.get('id')!r:.60}")
    ingress = {"usage": 0.0, "repair": 0.0}
    egress = {"usage": 0.0, "repair": 0.0, "audit": 0.0}
    if "bandwidthDaily" not in doc:
        raise Malformed(f"{where}: no bandwidthDaily")
    for i, day in enumerate(_list(doc.get("bandwidthDaily"), "bandwidthDaily")):
        day_where = f"bandwidthDaily[{i}]"
        day = _obj(day, day_where)
        day_in = _obj(day.get("ingress"), f"{day_where}.ingress")
        day_out = _obj(day.get("egress"), f"{day_where}.egress")
        for kind in ingress:
            ingress[kind] += _num(day_in, kind, f"{day_where}.ingress")
        for kind in egress:
            egress[kind] += _num(day_out, kind, f"{day_where}.egress")
    average = doc.get("averageUsageBytes")  # since v1.70
    return SatelliteMonth(
        id=satellite_id,
        ingress=ingress,
        egress=egress,
        storage_average_bytes=(_num(doc, "averageUsageBytes", where)
                               if average is not None else None),
        joined_at=parse_time(doc.get("nodeJoinedAt"), f"{where}.nodeJoinedAt"),
        at_rest=newest_at_rest(doc.get("storageDaily"), where),
    )


# -- /api/sno/estimated-payout -----------------------------------------------------------------

def _cents(value: float) -> float:
    """US cents (rounded to 0.01 ¢ by the node) -> dollars, without float noise."""
    return round(value / 100, 6)


@dataclass(frozen=True, slots=True)
class PayoutMonth:
    """Dollars. `payout` is after `held` (the node computes payout = sum - held)."""

    payout: float
    held: float
    egress: float
    repair_audit: float
    disk: float
    held_rate: float  # 0-1; the node fills it in only for one satellite (`?id=`), else 0


@dataclass(frozen=True, slots=True)
class Payout:
    current_month: PayoutMonth
    previous_month: PayoutMonth
    current_month_expected: float


def _payout_month(raw: Any, where: str) -> PayoutMonth:
    month = _obj(raw, where)
    return PayoutMonth(
        payout=_cents(_num(month, "payout", where)),
        held=_cents(_num(month, "held", where)),
        egress=_cents(_num(month, "egressBandwidthPayout", where)),
        repair_audit=_cents(_num(month, "egressRepairAuditPayout", where)),
        disk=_cents(_num(month, "diskSpacePayout", where)),
        held_rate=_num(month, "heldRate", where, 0.0, 100.0) / 100,
    )


def parse_payout(doc: Any) -> Payout:
    """`GET /api/sno/estimated-payout[?id=]` (money in cents)."""
    doc = _obj(doc, "/api/sno/estimated-payout")
    return Payout(
        current_month=_payout_month(doc.get("currentMonth"), "currentMonth"),
        previous_month=_payout_month(doc.get("previousMonth"), "previousMonth"),
        current_month_expected=_cents(
            _num(doc, "currentMonthExpectations", "/api/sno/estimated-payout")),
    )


# -- /api/heldamount/held-history --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Held:
    satellite_id: str
    url: str
    held: float  # dollars still held back: totalHeld - totalDisposed
    returned: float  # dollars of held amount paid back (totalDisposed)


def parse_held(doc: Any) -> tuple[Held, ...]:
    """`GET /api/heldamount/held-history` (money in micro-dollars, 1e-6 $)."""
    if doc is not None and not isinstance(doc, list):
        raise Malformed(f"held-history: expected a list, got {type(doc).__name__}")
    result = []
    for i, item in enumerate(_list(doc, "held-history")):
        where = f"held-history[{i}]"
        item = _obj(item, where)
        disposed = _num(item, "totalDisposed", where)
        result.append(Held(
            satellite_id=_str(item, "satelliteID", where),
            url=_str(item, "satelliteName", where),
            held=_micro(_num(item, "totalHeld", where) - disposed),
            returned=_micro(disposed),
        ))
    return tuple(result)


def _micro(value: float) -> float:
    """Micro-dollars (paystubs, held history) -> dollars, without float noise."""
    return round(value / 1e6, 6)


# -- /api/heldamount/paystubs/{start}/{end} ----------------------------------------------------

# `distributed` (what was actually transferred) is left out: each kind is 12 samples per
# satellite and node, and the API documents no meaning for it beyond `paid`.
PAYSTUB_KINDS = ("earned", "held", "disposed", "paid")
_PERIOD = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class PayStub:
    """One satellite's paystub for one month, in dollars (see PAYSTUB_KINDS)."""

    satellite_id: str
    year: int
    month: int
    earned: float  # storage + egress + repair + audit, times the surge (as payout-history)
    held: float
    disposed: float  # held amount returned with this month's payout
    paid: float


def parse_paystubs(doc: Any) -> tuple[PayStub, ...]:
    """`GET /api/heldamount/paystubs/{start}/{end}`: `[]PayStub` (money in micro-dollars)."""
    if doc is not None and not isinstance(doc, list):
        raise Malformed(f"paystubs: expected a list, got {type(doc).__name__}")
    result = []
    for i, item in enumerate(_list(doc, "paystubs")):
        where = f"paystubs[{i}]"
        item = _obj(item, where)
        period = _str(item, "period", where)
        match = _PERIOD.fullmatch(period)
        if not match or not 1 <= int(match[2]) <= 12:
            raise Malformed(f"{where}.period: not YYYY-MM: {period!r:.40}")
        comp = sum(_num(item, key, where) for key in
                   ("compAtRest", "compGet", "compGetRepair", "compGetAudit"))
        surge = _num(item, "surgePercent", where, 0.0, 1e4) or 100.0  # 0: no surge
        result.append(PayStub(
            satellite_id=_str(item, "satelliteId", where),
            year=int(match[1]),
            month=int(match[2]),
            earned=_micro(comp * surge / 100),
            held=_micro(_num(item, "held", where)),
            disposed=_micro(_num(item, "disposed", where)),
            paid=_micro(_num(item, "paid", where)),
        ))
    return tuple(result)
