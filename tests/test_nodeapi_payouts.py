"""Paystubs, held returned, per-satellite payout and the satellites' at-rest tally (issue 14).

Each value is cross-checked against the raw answer the simulated node gives over real HTTP:
units (micro-dollars, cents, bytes), the bounded `months_ago` label, and the v1.162 days the
node only projected (`calculated`), which must not be taken for the satellite's tally.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime

import pytest

from exporter.nodeapi import NodeApiPoller
from exporter.nodeapi.parse import Malformed, newest_at_rest, parse_paystubs
from exporter.simulate.nodeapi import SimulatedNodeApi
from tests.test_nodeapi import FIXED, US1, exposition, fixed, samples, value

SALTLAKE = "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"
DAY = 86400.0
TODAY = datetime(2026, 8, 20, tzinfo=UTC).timestamp()  # 00:00 UTC of FIXED's day


def raw(server: SimulatedNodeApi, path: str):
    return json.load(urllib.request.urlopen(server.url + path, timeout=10))


def polled(version: str = "v1.146", clock=fixed, **kw):
    """(exposition, server) after one poll of every endpoint at `clock`."""
    server = SimulatedNodeApi(version, clock=clock, **kw).start()
    poller = NodeApiPoller("n1", server.url, clock=clock)
    assert all(poller.poll_once().values())
    return exposition(poller), server, poller


def stub_values(text: str) -> dict[tuple[str, str, str], float]:
    """(satellite, months_ago, kind) -> dollars."""
    out = {}
    for (name, labels), v in samples(text).items():
        if name == "storagenode_paystub_dollars":
            d = dict(labels)
            out[(d["satellite"], d["months_ago"], d["kind"])] = v
    return out


# -- paystubs ----------------------------------------------------------------------------------

def test_paystubs_are_the_last_12_months_in_dollars() -> None:
    text, server, _ = polled()
    try:
        stubs = raw(server, "/api/heldamount/paystubs/2025-08/2026-07")
    finally:
        server.stop()
    got = stub_values(text)
    july_us1 = next(s for s in stubs if s["satelliteId"] == US1 and s["period"] == "2026-07")
    earned = sum(july_us1[k] for k in ("compAtRest", "compGet", "compGetRepair", "compGetAudit"))
    assert got[("us1", "1", "earned")] == round(earned / 1e6, 6)  # micro-dollars
    assert got[("us1", "1", "paid")] == july_us1["paid"] / 1e6
    aug_2025 = next(s for s in stubs if s["satelliteId"] == US1 and s["period"] == "2025-08")
    assert got[("us1", "12", "paid")] == aug_2025["paid"] / 1e6
    # $1.50 per TB-month for ~1.9 TB plus egress: a few dollars, not cents or thousands
    assert 3 < got[("us1", "1", "earned")] < 6
    # saltlake joined 2026-06-02: two paystubs, 75 % held in its first months
    assert {k[1] for k in got if k[0] == "saltlake"} == {"1", "2"}
    held = got[("saltlake", "1", "held")] / got[("saltlake", "1", "earned")]
    assert held == pytest.approx(0.75, abs=1e-5)
    assert {k[1] for k in got} == {str(m) for m in range(1, 13)}
    assert {k[2] for k in got} == {"earned", "held", "disposed", "paid"}


def test_last_month_appears_only_once_its_paystub_arrived() -> None:
    """On 5 August July's paystub is not there yet (it arrives on the 10th)."""
    early = datetime(2026, 8, 5, 9, tzinfo=UTC).timestamp()
    text, server, _ = polled(clock=lambda: early)
    server.stop()
    months = {k[1] for k in stub_values(text)}
    assert "1" not in months and months == {str(m) for m in range(2, 13)}


def test_months_ago_follows_the_clock_at_scrape_time() -> None:
    """A paystub polled in August is 1 month ago in August and 2 in September; one that
    would be 13 months ago is dropped (the label stays bounded), never renamed."""
    now = [FIXED]
    text, server, poller = polled(clock=lambda: now[0])
    server.stop()
    assert ("us1", "1", "earned") in stub_values(text)
    august = stub_values(text)
    now[0] = datetime(2026, 9, 2, tzinfo=UTC).timestamp()  # no new poll
    september = stub_values(exposition(poller))
    assert september[("us1", "2", "earned")] == august[("us1", "1", "earned")]
    assert ("us1", "1", "earned") not in september
    assert september[("us1", "12", "paid")] == august[("us1", "11", "paid")]
    # August 2025 (12 months ago in August) would be 13: dropped
    assert august[("us1", "12", "paid")] not in [v for k, v in september.items()
                                                 if k[0] == "us1" and k[2] == "paid"]
    assert {k[1] for k in september} == {str(m) for m in range(2, 13)}


def test_paystub_request_asks_for_the_12_whole_months() -> None:
    seen = []
    server = SimulatedNodeApi("v1.146", clock=fixed)
    route = server.route
    server.route = lambda path, query: (seen.append(path), route(path, query))[1]
    with server:
        NodeApiPoller("n1", server.url, clock=fixed).poll_once(("paystubs",))
    assert seen == ["/api/heldamount/paystubs/2025-08/2026-07"]


def test_paystub_shape_is_validated() -> None:
    stub = {"satelliteId": US1, "period": "2026-07", "compAtRest": 1_000_000, "compGet": 0,
            "compGetRepair": 0, "compGetAudit": 0, "surgePercent": 0, "held": 0,
            "disposed": 0, "paid": 1_000_000, "distributed": 1_000_000}
    (one,) = parse_paystubs([stub])
    assert (one.year, one.month, one.earned, one.paid) == (2026, 7, 1.0, 1.0)
    (surged,) = parse_paystubs([{**stub, "surgePercent": 200}])
    assert surged.earned == 2.0  # a surge multiplies earnings, 0 means none
    assert parse_paystubs(None) == ()
    for bad in ({**stub, "period": "2026-13"}, {**stub, "period": "July"},
                {**stub, "held": "0"}, {**stub, "paid": 1e300}):
        with pytest.raises(Malformed):
            parse_paystubs([bad])
    with pytest.raises(Malformed):
        parse_paystubs({"error": "x"})


# -- held returned -----------------------------------------------------------------------------

def test_held_returned_is_total_disposed() -> None:
    text, server, _ = polled()
    try:
        history = {h["satelliteID"]: h for h in raw(server, "/api/heldamount/held-history")}
    finally:
        server.stop()
    assert value(text, "storagenode_payout_held_returned_dollars", node="n1",
                 satellite="us1") == history[US1]["totalDisposed"] / 1e6 == 6.172839
    assert value(text, "storagenode_payout_held_returned_dollars", node="n1",
                 satellite="saltlake") == 0
    # still held + returned = everything ever held
    assert (value(text, "storagenode_payout_held_total_dollars", node="n1", satellite="us1")
            + 6.172839) == pytest.approx(history[US1]["totalHeld"] / 1e6)


# -- per-satellite estimated payout ------------------------------------------------------------

def test_per_satellite_payout_adds_up_to_the_node_estimate() -> None:
    text, server, _ = polled()
    try:
        one = raw(server, f"/api/sno/estimated-payout?id={SALTLAKE}")
    finally:
        server.stop()
    sats = ("us1", "eu1", "ap1", "saltlake")
    for period in ("current_month", "previous_month"):
        total = sum(value(text, "storagenode_satellite_payout_estimated_dollars", node="n1",
                          satellite=s, period=period) for s in sats)
        assert total == pytest.approx(value(text, "storagenode_payout_estimated_dollars",
                                            node="n1", period=period), abs=1e-4)
    assert value(text, "storagenode_satellite_payout_estimated_dollars", node="n1",
                 satellite="saltlake", period="current_month") == round(
                     one["currentMonth"]["payout"] / 100, 6)  # cents
    assert value(text, "storagenode_satellite_payout_held_rate_ratio", node="n1",
                 satellite="saltlake", period="current_month") == 0.75
    assert value(text, "storagenode_satellite_payout_held_rate_ratio", node="n1",
                 satellite="us1", period="current_month") == 0
    assert value(text, "storagenode_satellite_payout_estimated_component_dollars", node="n1",
                 satellite="saltlake", period="current_month", component="disk") == round(
                     one["currentMonth"]["diskSpacePayout"] / 100, 6)
    assert value(text, "storagenode_satellite_payout_estimated_dollars", node="n1",
                 satellite="us1", period="current_month_expected") > 0


def test_one_failing_satellite_payout_keeps_the_others() -> None:
    server = SimulatedNodeApi("v1.146", clock=fixed).start()
    try:
        poller = NodeApiPoller("n1", server.url, clock=fixed)
        poller.poll_once()
        server.scenario["fail"] = ["satellite_payout"]
        assert poller.poll_once()["satellite_payout"] is False
        text = exposition(poller)
    finally:
        server.stop()
    assert value(text, "storagenode_api_errors_total", node="n1",
                 endpoint="satellite_payout") == 4  # one per satellite
    assert value(text, "storagenode_satellite_payout_estimated_dollars", node="n1",
                 satellite="us1", period="current_month") > 0  # last good values kept
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="payout") == 0


# -- the satellites' at-rest tally -------------------------------------------------------------

@pytest.mark.parametrize("version", ["v1.146", "v1.162"])
def test_at_rest_is_the_newest_day_the_satellite_tallied(version: str) -> None:
    text, server, _ = polled(version)
    try:
        daily = raw(server, f"/api/sno/satellite/{US1}")["storageDaily"]
    finally:
        server.stop()
    at_rest = value(text, "storagenode_satellite_storage_at_rest_bytes", node="n1",
                    satellite="us1")
    day = value(text, "storagenode_satellite_storage_at_rest_timestamp_seconds", node="n1",
                satellite="us1")
    by_day = {d["intervalStart"]: d for d in daily}
    if version == "v1.162":
        # yesterday and today are the node's projections: the tally is from the day before
        flagged = [d["intervalStart"][:10] for d in daily if d["calculated"]]
        assert flagged == ["2026-08-19", "2026-08-20"]
        assert day == TODAY - 2 * DAY
        assert at_rest == by_day["2026-08-18T00:00:00Z"]["atRestTotalBytes"]
    else:
        assert day == TODAY - DAY
        assert at_rest == by_day["2026-08-19T00:00:00Z"]["atRestTotalBytes"]
    # about the node's share of the used space (us1 holds 45 % of 4.16 TB)
    assert 1.7e12 < at_rest < 2.0e12


def test_newest_at_rest_rules() -> None:
    rows = [
        {"atRestTotal": 48e12, "intervalInHours": 24, "intervalStart": "2026-08-02T00:00:00Z"},
        {"atRestTotal": 24e12, "intervalInHours": 12, "intervalStart": "2026-08-03T00:00:00Z"},
        {"atRestTotal": 0, "atRestTotalBytes": 9e12, "intervalStart": "2026-08-04T00:00:00Z",
         "calculated": True},
        {"atRestTotal": 1e12, "intervalInHours": 24, "intervalStart": "2026-08-01T00:00:00Z"},
    ]
    newest = newest_at_rest(rows, "x")
    # byte-hours / hours when atRestTotalBytes is absent; calculated and older days skipped
    assert newest.bytes == 2e12
    assert newest.day == datetime(2026, 8, 3, tzinfo=UTC).timestamp()
    assert newest_at_rest(None, "x") is None
    assert newest_at_rest([rows[2]], "x") is None  # only a projection: no tally yet
    with pytest.raises(Malformed):
        newest_at_rest([{**rows[0], "atRestTotal": -1}], "x")
    with pytest.raises(Malformed):
        newest_at_rest([{**rows[0], "intervalStart": "yesterday"}], "x")
