"""The simulated dashboard API: recorded shapes, model consistency, scenario keys, faults, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from exporter.simulate.nodeapi import (
    DATA_DIR,
    VERSIONS,
    SimulatedNodeApi,
    rfc3339,
    validate_scenario,
)

ROOT = Path(__file__).resolve().parent.parent
FIXED = 1787220900.0  # 2026-08-20T10:15:00Z
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
SALTLAKE = "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"
PATHS = {
    "/api/sno/": "/api/sno/",
    "/api/sno/satellites": "/api/sno/satellites",
    "/api/sno/satellite/{id}": f"/api/sno/satellite/{US1}",
    "/api/sno/estimated-payout": "/api/sno/estimated-payout",
    "/api/heldamount/held-history": "/api/heldamount/held-history",
    "/api/heldamount/paystubs/{start}/{end}": "/api/heldamount/paystubs/2026-07/2026-07",
}


def get(sim: SimulatedNodeApi, path: str):
    resp = requests.get(sim.url + path, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def shape(doc):
    """Keys in order, recursively; a list is represented by its first item."""
    if isinstance(doc, dict):
        return [(k, shape(v)) for k, v in doc.items()]
    if isinstance(doc, list):
        return [shape(doc[0])] if doc else []
    return None


@pytest.fixture
def sim():
    server = SimulatedNodeApi("v1.146", clock=lambda: FIXED).start()
    yield server
    server.stop()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_endpoint_serves_the_recorded_shape(version: str) -> None:
    recorded = json.loads((DATA_DIR / f"nodeapi_{version}.json").read_text())["endpoints"]
    with SimulatedNodeApi(version, clock=lambda: FIXED) as server:
        for key, path in PATHS.items():
            want = recorded[key][US1] if key.endswith("{id}") else recorded[key]
            assert shape(get(server, path)) == shape(want), (version, key)


def test_disk_shapes_by_version() -> None:
    keys = {}
    for version in VERSIONS:
        with SimulatedNodeApi(version, clock=lambda: FIXED) as server:
            node = get(server, "/api/sno/")
            keys[version] = list(node["diskSpace"])
            assert node["version"] == json.loads(
                (DATA_DIR / f"nodeapi_{version}.json").read_text())["version"]
            daily = get(server, "/api/sno/satellites")["storageDaily"][0]
            assert ("calculated" in daily) == (version == "v1.162")
    assert keys["v1.142"] == ["used", "available", "trash", "overused"]
    for version in ("v1.144", "v1.146", "v1.162"):
        assert keys[version] == ["used", "available", "overused", "allocated", "trash",
                                 "reclaimable"]


def test_v1142_disk_meanings() -> None:
    with SimulatedNodeApi("v1.142", clock=lambda: FIXED) as server:
        disk = get(server, "/api/sno/")["diskSpace"]
    assert disk == {"used": 4213456789012 - 52345678901, "available": 6000000000000,
                    "trash": 52345678901, "overused": 0}


def test_v1144_available_goes_negative_when_overused() -> None:
    for version, available in (("v1.144", -120000000000), ("v1.146", 0)):
        scenario = {"disk_used_ratio": 1.02}
        with SimulatedNodeApi(version, clock=lambda: FIXED, scenario=scenario) as server:
            disk = get(server, "/api/sno/")["diskSpace"]
        assert disk["available"] == available
        assert disk["overused"] == 120000000000


def test_answers_are_deterministic_for_a_clock_and_seed() -> None:
    bodies = []
    for seed in (0, 0, 1):
        with SimulatedNodeApi("v1.146", clock=lambda: FIXED, seed=seed) as server:
            bodies.append([requests.get(server.url + p, timeout=10).content
                           for p in PATHS.values()])
    assert bodies[0] == bodies[1]
    assert bodies[0][1] != bodies[2][1]  # another seed, other daily numbers


def test_values_drift_with_time() -> None:
    now = [FIXED]
    with SimulatedNodeApi("v1.146", clock=lambda: now[0]) as server:
        a_node, a_sat = get(server, "/api/sno/"), get(server, f"/api/sno/satellite/{US1}")
        now[0] += 600
        b_node, b_sat = get(server, "/api/sno/"), get(server, f"/api/sno/satellite/{US1}")
    assert b_node["diskSpace"]["used"] - a_node["diskSpace"]["used"] == 600 * 1_500_000
    assert b_node["bandwidth"]["used"] > a_node["bandwidth"]["used"]
    assert b_sat["ingressSummary"] > a_sat["ingressSummary"]
    assert b_node["lastPinged"] == rfc3339(FIXED + 600 - 15)


def test_documents_agree_with_each_other(sim) -> None:
    node = get(sim, "/api/sno/")
    total = get(sim, "/api/sno/satellites")
    per_sat = [get(sim, f"/api/sno/satellite/{s['id']}") for s in node["satellites"]]
    assert node["bandwidth"]["used"] == total["bandwidthSummary"]
    assert total["bandwidthSummary"] == sum(s["bandwidthSummary"] for s in per_sat)
    assert total["egressSummary"] == sum(
        sum(day["egress"].values()) for s in per_sat for day in s["bandwidthDaily"])
    assert len(total["bandwidthDaily"]) == 20  # August 1st-20th, today partial
    assert len(total["storageDaily"]) == 19  # completed tallies only
    assert [a["satelliteName"] for a in total["audits"]] == [s["url"] for s in node["satellites"]]


def test_payout_follows_the_node_formulas(sim) -> None:
    pay = get(sim, "/api/sno/estimated-payout")
    cur = pay["currentMonth"]
    gross = cur["egressBandwidthPayout"] + cur["egressRepairAuditPayout"] + cur["diskSpacePayout"]
    assert cur["payout"] == pytest.approx(gross - cur["held"], abs=0.03)
    assert cur["heldRate"] == 0  # never summed over satellites (upstream Add())
    # 19.43 days of 31 elapsed: the expectation projects to the month's end.
    assert pay["currentMonthExpectations"] == pytest.approx(cur["payout"] * 31 / 19.427, rel=0.01)
    egress = sum(day["egress"]["usage"] for s in get(sim, "/api/sno/")["satellites"]
                 for day in get(sim, f"/api/sno/satellite/{s['id']}")["bandwidthDaily"])
    assert cur["egressBandwidth"] == egress
    # saltlake joined 2026-06-02: 2 months -> 75 % held.
    salt = get(sim, f"/api/sno/estimated-payout?id={SALTLAKE}")["currentMonth"]
    assert salt["heldRate"] == 75
    assert salt["held"] == pytest.approx(0.75 * (salt["egressBandwidthPayout"]
                                                 + salt["egressRepairAuditPayout"]
                                                 + salt["diskSpacePayout"]))
    us1 = get(sim, f"/api/sno/estimated-payout?id={US1}")["currentMonth"]
    assert (us1["heldRate"], us1["held"]) == (0, 0)


def test_scenario_keys_change_the_answers(sim) -> None:
    sim.scenario.update({
        "audit_score": 0.97, "online_score": {"eu1": 0.5}, "suspension_score": {"us1": 0.7},
        "disqualified": ["eu1"], "suspended": ["saltlake"], "quic_status": "Misconfigured",
        "up_to_date": False, "last_pinged_ago_seconds": None, "disk_used_ratio": 0.5,
    })
    node = get(sim, "/api/sno/")
    flags = {s["url"].split(".")[0]: (s["disqualified"], s["suspended"])
             for s in node["satellites"]}
    when = rfc3339(FIXED - 2 * 86400)
    assert flags == {"us1": (None, None), "eu1": (when, None), "ap1": (None, None),
                     "saltlake": (None, when)}
    assert (node["quicStatus"], node["upToDate"]) == ("Misconfigured", False)
    assert node["allowedVersion"] == "1.147.0"
    assert node["lastPinged"] == "0001-01-01T00:00:00Z"
    assert node["diskSpace"]["used"] == 3e12 and node["diskSpace"]["available"] == 3e12
    audits = {a["satelliteName"].split(".")[0]: a
              for a in get(sim, "/api/sno/satellites")["audits"]}
    assert audits["us1"] == {"auditScore": 0.97, "suspensionScore": 0.7, "onlineScore": 0.9987,
                             "satelliteName": "us1.storj.io:7777"}
    assert audits["eu1"]["onlineScore"] == 0.5
    sat = get(sim, "/api/sno/satellite/12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs")
    assert sat["audits"]["onlineScore"] == sat["auditHistory"]["score"] == 0.5


def test_faults(sim) -> None:
    url = sim.url
    sim.scenario["fail"] = True
    resp = requests.get(url + "/api/sno/", timeout=5)
    assert resp.status_code == 500
    assert resp.json() == {"error": "storagenode console web error: simulated failure"}
    sim.scenario.clear()
    sim.scenario["malformed"] = {"satellites": "html", "*": "truncated"}
    resp = requests.get(url + "/api/sno/satellites", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    resp = requests.get(url + "/api/sno/", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        resp.json()
    assert resp.content.startswith(b'{"nodeID":')
    sim.scenario.clear()
    sim.scenario["slow_seconds"] = {"payout": 0.4}
    started = time.monotonic()
    get(sim, "/api/sno/")
    fast = time.monotonic() - started
    started = time.monotonic()
    get(sim, "/api/sno/estimated-payout")
    slow = time.monotonic() - started
    assert fast < 0.3 and 0.4 <= slow < 1.5
    sim.scenario["fail"] = ["held"]
    assert requests.get(url + "/api/heldamount/held-history", timeout=5).status_code == 500
    assert requests.get(url + "/api/sno/satellites", timeout=5).status_code == 200
    assert sim.requests["payout"] == 1


def test_routes_like_the_console_server(sim) -> None:
    url = sim.url
    resp = requests.get(url + "/api/sno", timeout=5)  # StrictSlash redirect
    assert resp.status_code == 200 and resp.url.endswith("/api/sno/")
    assert requests.get(url + "/api/sno/satellite/" + "1" * 50, timeout=5).status_code == 404
    assert requests.get(url + "/api/sno/satellite/not-an-id", timeout=5).status_code == 400
    page = requests.get(url + "/dashboard", timeout=5)
    assert page.status_code == 200 and b"<!DOCTYPE html>" in page.content
    assert get(sim, f"/api/sno/satellites/{US1}/pricing") == {
        "satelliteID": US1, "egressBandwidth": 200, "repairBandwidth": 200,
        "auditBandwidth": 200, "diskSpace": 150}


def test_stop_cuts_slow_answers_short() -> None:
    server = SimulatedNodeApi("v1.146", scenario={"slow_seconds": 30}).start()
    errors = []

    def call() -> None:
        try:
            requests.get(server.url + "/api/sno/", timeout=20)
        except requests.RequestException as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2
    assert errors  # the client saw the connection close, not an answer


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="unknown scenario keys: audit"):
        validate_scenario({"audit": 0.5})
    with pytest.raises(ValueError, match="audit_score"):
        validate_scenario({"audit_score": 1.5})
    with pytest.raises(ValueError, match="malformed"):
        validate_scenario({"malformed": "xml"})
    with pytest.raises(ValueError, match="extra_satellites"):
        validate_scenario({"extra_satellites": [{"id": "x"}]})
    validate_scenario({"online_score": {"us1": 0.5}, "fail": ["node"], "slow_seconds": 1,
                       "malformed": {"payout": "truncated"}, "disk_used_ratio": 0.97})
    with pytest.raises(ValueError, match="unknown version"):
        SimulatedNodeApi("v1.150")


def test_cli_serves_and_reloads_the_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"audit_score": 0.99}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulate.nodeapi", "--listen", "127.0.0.1:0",
         "--version", "v1.142", "--scenario", str(scenario),
         "--fixed-time", "2026-08-20T10:15:00Z"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("simulated storagenode v1.142 dashboard API on http://127.0.0.1:")
        url = line.split(" on ")[1].strip()
        node = requests.get(url + "/api/sno/", timeout=5).json()
        assert node["version"] == "1.142.7"
        assert node["lastPinged"] == "2026-08-20T10:14:45Z"
        audits = requests.get(url + "/api/sno/satellites", timeout=5).json()["audits"]
        assert {a["auditScore"] for a in audits} == {0.99}
        scenario.write_text(json.dumps({"fail": True}))
        os.utime(scenario, ns=(time.time_ns(), time.time_ns() + 10**9))
        deadline = time.monotonic() + 5
        while requests.get(url + "/api/sno/", timeout=5).status_code != 500:
            assert time.monotonic() < deadline, "scenario file change not applied"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_rejects_a_bad_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"audit_scores": 1}))
    out = subprocess.run(
        [sys.executable, "-m", "exporter.simulate.nodeapi", "--listen", "127.0.0.1:0",
         "--scenario", str(scenario)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "unknown scenario keys: audit_scores" in out.stderr


def test_paystubs_route_like_the_console_server(sim) -> None:
    """Range inclusive, `?id=` filters, no paystub yet -> null (Go's nil slice), a bad period
    -> 400; a huge range is clipped to the months that can have paystubs."""
    stubs = get(sim, "/api/heldamount/paystubs/2025-08/2026-07")
    periods = {s["period"] for s in stubs}
    assert periods == {f"2025-{m:02d}" for m in range(8, 13)} | {
        f"2026-{m:02d}" for m in range(1, 8)}
    assert {s["satelliteId"] for s in stubs if s["period"] == "2026-06"} >= {US1, SALTLAKE}
    only = get(sim, f"/api/heldamount/paystubs/2026-06/2026-07?id={SALTLAKE}")
    assert [(s["satelliteId"], s["period"]) for s in only] == [(SALTLAKE, "2026-06"),
                                                                (SALTLAKE, "2026-07")]
    assert get(sim, "/api/heldamount/paystubs/2026-08/2026-08") is None  # not paid yet
    for bad in ("2026-13/2026-12", "2026-07/2026-06", "July/2026-07"):
        resp = requests.get(f"{sim.url}/api/heldamount/paystubs/{bad}", timeout=5)
        assert resp.status_code == 400 and "wrong period format" in resp.json()["error"]
    started = time.monotonic()
    every = get(sim, "/api/heldamount/paystubs/0001-01/9999-12")
    # us1, eu1, ap1 joined 2021-05: 63 months to 2026-07; saltlake 2
    assert len(every) == 3 * 63 + 2
    assert min(s["period"] for s in every) == "2021-05"
    assert max(s["period"] for s in every) == "2026-07"
    assert time.monotonic() - started < 2
    assert sim.requests["paystubs"] == 7


def test_estimated_payout_by_satellite_is_its_own_endpoint(sim) -> None:
    one = get(sim, f"/api/sno/estimated-payout?id={SALTLAKE}")
    assert one["currentMonth"]["heldRate"] == 75
    assert get(sim, "/api/sno/estimated-payout")["currentMonth"]["heldRate"] == 0
    assert sim.requests == {"satellite_payout": 1, "payout": 1}
    sim.scenario["fail"] = ["satellite_payout"]
    assert requests.get(f"{sim.url}/api/sno/estimated-payout?id={US1}",
                        timeout=5).status_code == 500
    assert requests.get(f"{sim.url}/api/sno/estimated-payout", timeout=5).status_code == 200


def test_v1162_flags_the_projected_days() -> None:
    """v1.162 fills yesterday (tally not in yet) and today from the last tallied rate and
    flags them `calculated` with no byte-hours; older versions leave those days out."""
    for version in ("v1.146", "v1.162"):
        with SimulatedNodeApi(version, clock=lambda: FIXED) as server:
            per_sat = get(server, f"/api/sno/satellite/{US1}")["storageDaily"]
            total = get(server, "/api/sno/satellites")["storageDaily"]
        for daily in (per_sat, total):
            days = [d["intervalStart"][:10] for d in daily]
            if version == "v1.146":
                assert days[-1] == "2026-08-19" and "calculated" not in daily[-1]
                continue
            assert days[-3:] == ["2026-08-18", "2026-08-19", "2026-08-20"]
            assert [d["calculated"] for d in daily[-3:]] == [False, True, True]
            assert daily[-1]["atRestTotal"] == daily[-2]["atRestTotal"] == 0
            assert daily[-1]["atRestTotalBytes"] == daily[-3]["atRestTotalBytes"]
        assert per_sat[-1].get("intervalInHours") in (None, 24, 10.25)
