"""Node API poller and collector against the simulated node over real HTTP on 127.0.0.1.

Goldens: `UPDATE_GOLDEN=1 pytest tests/test_nodeapi.py -k golden` rewrites
tests/golden/api_<version>.txt; review the diff by hand (dollars, bytes, 0-1 scores).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.nodeapi import ENDPOINTS, NodeApiCollector, NodeApiPoller
from exporter.nodeapi.parse import (
    Malformed,
    parse_held,
    parse_node,
    parse_payout,
    parse_satellites,
)
from exporter.satellites import SATELLITES
from exporter.simulate.nodeapi import VERSIONS, SimulatedNodeApi

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
FIXTURES = ROOT / "tests" / "fixtures" / "api"
FIXED = 1787220900.0  # 2026-08-20T10:15:00Z
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
DURATION = re.compile(r"^(storagenode_api_request_duration_seconds\{[^}]*\}) (\S+)$", re.M)


def fixed() -> float:
    return FIXED


def exposition(*pollers: NodeApiPoller) -> str:
    registry = CollectorRegistry()
    registry.register(NodeApiCollector(list(pollers)))
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.replace("<duration>", "0")):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def dead_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def sim():
    server = SimulatedNodeApi("v1.146", clock=fixed).start()
    yield server
    server.stop()


# -- golden exposition per recorded version ----------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_golden_exposition(version: str) -> None:
    with SimulatedNodeApi(version, clock=fixed) as server:
        poller = NodeApiPoller("n1", server.url, clock=fixed)
        assert poller.poll_once() == dict.fromkeys(ENDPOINTS, True)
        text = exposition(poller)
    durations = DURATION.findall(text)
    assert len(durations) == len(ENDPOINTS)
    for _, seconds in durations:
        assert 0 <= float(seconds) < 5
    text = DURATION.sub(r"\1 <duration>", text)
    path = GOLDEN / f"api_{version}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_disk_means_the_same_for_every_version(version: str) -> None:
    """The recorded node has 4.21 TB used (incl. 52 GB trash) of 6 TB in every version."""
    text = (GOLDEN / f"api_{version}.txt").read_text()
    assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012
    assert value(text, "storagenode_disk_free_bytes", node="n1") == 1786543210988
    assert value(text, "storagenode_disk_allocated_bytes", node="n1") == 6e12
    assert value(text, "storagenode_disk_trash_bytes", node="n1") == 52345678901
    assert value(text, "storagenode_disk_overused_bytes", node="n1") == 0
    reclaimable = value(text, "storagenode_disk_reclaimable_bytes", node="n1")
    assert reclaimable == {"v1.142": None, "v1.162": 123456789012}.get(version, 0)
    # Held history is micro-dollars: us1 holds 12345678 - 6172839 = 6172839 µ$.
    assert value(text, "storagenode_payout_held_total_dollars",
                 node="n1", satellite="us1") == 6.172839


def test_goldens_differ_only_where_versions_differ() -> None:
    """Across versions only the version labels, reclaimable and the at-rest day (v1.162
    flags the newest completed day `calculated`) may change."""
    def stripped(version: str) -> list[str]:
        return [line for line in (GOLDEN / f"api_{version}.txt").read_text().splitlines()
                if not line.startswith(("storagenode_info{", "storagenode_disk_reclaimable"))
                and "storagenode_disk_reclaimable" not in line
                and not line.startswith("storagenode_satellite_storage_at_rest_")]
    base = stripped("v1.146")
    for version in VERSIONS:
        assert stripped(version) == base, version


def test_golden_units_by_hand() -> None:
    """Cross-check the golden money against the raw answers the simulator gives."""
    with SimulatedNodeApi("v1.146", clock=fixed) as server:
        raw = json.load(urllib.request.urlopen(server.url + "/api/sno/estimated-payout"))
    text = (GOLDEN / "api_v1.146.txt").read_text()
    cur = raw["currentMonth"]
    assert value(text, "storagenode_payout_estimated_dollars", node="n1",
                 period="current_month") == round(cur["payout"] / 100, 6)
    assert value(text, "storagenode_payout_estimated_dollars", node="n1",
                 period="current_month_expected") == raw["currentMonthExpectations"] / 100
    assert value(text, "storagenode_payout_held_dollars", node="n1",
                 period="previous_month") == round(raw["previousMonth"]["held"] / 100, 6)
    # 4.2 TB at $1.50/TB-month for 19.4 days is about $4, not $400 (cents) or $0.04.
    disk = value(text, "storagenode_payout_estimated_component_dollars", node="n1",
                 period="current_month", component="disk")
    assert 3 < disk < 5
    for sat in ("us1", "eu1", "ap1", "saltlake"):
        for kind in ("audit", "suspension", "online"):
            score = value(text, f"storagenode_satellite_{kind}_score", node="n1", satellite=sat)
            assert 0.9 < score <= 1


# -- parsing recorded edge cases ---------------------------------------------------------------

def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_v1144_hashstore_used_is_repaired() -> None:
    """v1.143-v1.144 subtract hashstore bytes from `used`; allocated - available is right."""
    info = parse_node(load("node_v1.144_hashstore.json"))
    assert info.disk.used == 6000000000000 - 1786543210988
    assert info.disk.free == 1786543210988


def test_old_node_without_vetted_and_never_pinged() -> None:
    info = parse_node(load("node_v1.120.json"))
    assert info.disk.used == 1000000000000  # 900 GB pieces + 100 GB trash
    assert info.disk.free == 1000000000000  # 2 TB allocation - used - trash
    assert info.disk.allocated == 2000000000000
    assert info.disk.reclaimable is None
    assert info.last_pinged is None and info.last_quic_pinged is None
    assert info.started_at == 1735776000.5
    assert info.quic_ok is False
    (sat,) = info.satellites
    assert (sat.suspended, sat.disqualified, sat.vetted) == (True, False, None)


def test_new_node_with_null_lists() -> None:
    info = parse_node(load("node_new_empty.json"))
    assert info.satellites == ()
    assert parse_satellites(load("satellites_new_empty.json")) == {}
    assert parse_held(None) == ()


@pytest.mark.parametrize("name", ["node_bad_type.json"])
def test_wrong_shape_is_malformed(name: str) -> None:
    with pytest.raises(Malformed, match=r"diskSpace\.used"):
        parse_node(load(name))


def test_truncated_and_html_fixtures_are_not_json() -> None:
    for name in ("node_truncated.json", "dashboard.html"):
        with pytest.raises(ValueError):
            json.loads((FIXTURES / name).read_text())
    with pytest.raises(Malformed):
        parse_payout({"currentMonth": {}, "previousMonth": {}, "currentMonthExpectations": 1})


# -- faults ------------------------------------------------------------------------------------

def test_hanging_payout_does_not_delay_scrapes() -> None:
    server = SimulatedNodeApi("v1.146", clock=fixed, scenario={"slow_seconds": {"payout": 60}})
    server.start()
    poller = NodeApiPoller("n1", server.url, clock=fixed)
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = exposition(poller)
            if (value(text, "storagenode_up", node="n1") == 1
                    and server.requests.get("payout")
                    and value(text, "storagenode_month_egress_bytes", node="n1",
                              satellite="us1", kind="usage")):
                break
            time.sleep(0.02)
        else:
            pytest.fail("node never came up")
        worst = 0.0
        for _ in range(20):  # the payout request is in flight the whole time
            started = time.perf_counter()
            text = exposition(poller)
            worst = max(worst, time.perf_counter() - started)
        print(f"\nscrape while /api/sno/estimated-payout hangs: worst {worst * 1000:.1f} ms")
        assert worst < 0.5
        assert value(text, "storagenode_payout_estimated_dollars", node="n1",
                     period="current_month") is None  # no answer yet
        assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012
    finally:
        server.stop()
        poller.stop()


def test_timeout_is_enforced() -> None:
    with SimulatedNodeApi("v1.146", clock=fixed, scenario={"slow_seconds": {"node": 5}}) as srv:
        poller = NodeApiPoller("n1", srv.url, timeouts={"node": 0.3})
        started = time.monotonic()
        result = poller.poll_once()
        elapsed = time.monotonic() - started
    assert result["node"] is False and result["satellites"] is True
    assert elapsed < 2.5
    text = exposition(poller)
    assert value(text, "storagenode_up", node="n1") == 0
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="node") == 1
    assert 0.25 < value(text, "storagenode_api_request_duration_seconds",
                        node="n1", endpoint="node") < 1.5


def _log_lines(caplog) -> list[tuple[str, str]]:
    """(level, "endpoint path: what") for each exporter.nodeapi line, then forget them."""
    out = []
    for r in caplog.records:
        if r.name == "exporter.nodeapi":
            path = re.search(r"http://[^/]+(\S+)", r.getMessage())[1]
            out.append((r.levelname, path))
    caplog.clear()
    return out


ALL_PATHS = ("/api/sno/", "/api/sno/satellites", "/api/sno/satellite/{id}",
             "/api/sno/estimated-payout", "/api/heldamount/held-history",
             "/api/sno/estimated-payout?id={id}", "/api/heldamount/paystubs/{start}/{end}")


def test_malformed_answers_count_and_log_once_per_state_change(sim, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter.nodeapi")
    poller = NodeApiPoller("n1", sim.url, clock=fixed)
    assert all(poller.poll_once().values())
    assert _log_lines(caplog) == []
    steps = [
        # scenario, log lines expected from this poll
        ({"malformed": "html"}, [("WARNING", p) for p in ALL_PATHS]),
        ({"malformed": "truncated"}, []),
        ({"fail": True}, []),
        ({"malformed": {"node": "truncated"}}, [("INFO", p) for p in ALL_PATHS[1:]]),
    ]
    for errors, (scenario, lines) in enumerate(steps, start=1):
        sim.scenario.clear()
        sim.scenario.update(scenario)
        poller.poll_once()
        text = exposition(poller)
        assert value(text, "storagenode_up", node="n1") == 0, scenario
        assert value(text, "storagenode_api_errors_total", node="n1", endpoint="node") == errors
        # the last good values stay
        assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012
        assert _log_lines(caplog) == lines, scenario
    text = exposition(poller)
    # html, truncated and 500 hit every endpoint (4 requests per satellite round); the last
    # step only the node endpoint.
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="satellites") == 3
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="satellite") == 12
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="payout") == 3
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="held") == 3
    assert value(text, "storagenode_api_errors_total", node="n1",
                 endpoint="satellite_payout") == 12
    assert value(text, "storagenode_api_errors_total", node="n1", endpoint="paystubs") == 3
    sim.scenario.clear()
    assert all(poller.poll_once().values())
    assert value(exposition(poller), "storagenode_up", node="n1") == 1
    assert _log_lines(caplog) == [("INFO", "/api/sno/")]
    poller.poll_once()
    assert _log_lines(caplog) == []


def test_failure_log_line_says_what_happened(sim, caplog) -> None:
    caplog.set_level(logging.INFO, logger="exporter.nodeapi")
    poller = NodeApiPoller("n1", sim.url)
    for scenario, text in (({"malformed": {"node": "html"}}, "answered HTML, not JSON"),
                           ({"malformed": {"node": "truncated"}}, "invalid JSON"),
                           ({"fail": ["node"]}, "HTTP 500: storagenode console web error")):
        sim.scenario.clear()
        sim.scenario.update(scenario)
        caplog.clear()
        poller.poll_once()
        (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
        assert text in record.getMessage()
        sim.scenario.clear()
        poller.poll_once()


def test_failing_payout_keeps_other_endpoints(sim) -> None:
    poller = NodeApiPoller("n1", sim.url, clock=fixed)
    poller.poll_once()
    before = exposition(poller)
    sim.scenario["fail"] = ["payout"]
    result = poller.poll_once()
    assert result == {**dict.fromkeys(ENDPOINTS, True), "payout": False}
    after = exposition(poller)
    assert value(after, "storagenode_up", node="n1") == 1
    assert value(after, "storagenode_api_errors_total", node="n1", endpoint="payout") == 1
    assert (value(after, "storagenode_payout_estimated_dollars", node="n1", period="current_month")
            == value(before, "storagenode_payout_estimated_dollars", node="n1",
                     period="current_month"))


def test_stale_values_are_dropped(sim) -> None:
    poller = NodeApiPoller("n1", sim.url, clock=fixed,
                           intervals={"node": 0.05}, timeouts={"node": 0.2})
    poller.poll_once()
    poller.poll_once(("node",))  # a fresh success right before the failure
    sim.scenario["fail"] = {"node": True}
    poller.poll_once(("node",))
    text = exposition(poller)
    assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012  # kept
    time.sleep(0.45)  # > 3 x 0.05 s + 0.2 s since the last success
    text = exposition(poller)
    assert value(text, "storagenode_disk_used_bytes", node="n1") is None
    assert value(text, "storagenode_info", node="n1", node_id=sim.model.endpoints[
        "/api/sno/"]["nodeID"], version="1.146.10", allowed_version="1.140.0") is None
    assert value(text, "storagenode_up", node="n1") == 0
    # other endpoints poll every 60 s or slower by default: still fresh
    assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="us1") == 1


def test_two_nodes_one_dead(sim) -> None:
    alone = NodeApiPoller("a", sim.url, clock=fixed)
    alone.poll_once()
    good = NodeApiPoller("a", sim.url, clock=fixed)
    dead = NodeApiPoller("b", dead_url(), clock=fixed, timeouts={"node": 1})
    good.poll_once()
    dead.poll_once()
    both = samples(DURATION.sub(r"\1 0", exposition(good, dead)))
    single = samples(DURATION.sub(r"\1 0", exposition(alone)))
    only_a = {k: v for k, v in both.items() if ("node", "a") in k[1]}
    assert only_a == single
    assert both[("storagenode_up", (("node", "b"),))] == 0
    assert both[("storagenode_api_errors_total", (("endpoint", "node"), ("node", "b")))] == 1
    assert not [k for k in both if ("node", "b") in k[1] and k[0].startswith("storagenode_disk")]


def test_hanging_node_does_not_hold_up_another() -> None:
    with (SimulatedNodeApi("v1.146", clock=fixed) as fast,
          SimulatedNodeApi("v1.142", clock=fixed, scenario={"slow_seconds": 60}) as slow):
        pollers = [NodeApiPoller("fast", fast.url), NodeApiPoller("slow", slow.url)]
        for p in pollers:
            p.start()
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                text = exposition(*pollers)
                if value(text, "storagenode_up", node="fast") == 1:
                    break
                time.sleep(0.02)
            assert value(text, "storagenode_up", node="fast") == 1
            assert value(text, "storagenode_up", node="slow") == 0
        finally:
            for p in pollers:
                p.stop(wait=0)


# -- scenario values through the whole path ----------------------------------------------------

def test_scenario_values_reach_the_metrics(sim) -> None:
    sim.scenario.update({
        "audit_score": {"eu1": 0.95}, "online_score": 0.55, "suspension_score": {"ap1": 0.5},
        "disqualified": ["ap1"], "suspended": ["us1"], "quic_status": "Misconfigured",
        "up_to_date": False, "last_pinged_ago_seconds": 600, "disk_used_ratio": 0.97,
    })
    poller = NodeApiPoller("n1", sim.url, clock=fixed)
    poller.poll_once()
    text = exposition(poller)
    assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="eu1") == 0.95
    assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="us1") == 1
    assert value(text, "storagenode_satellite_online_score", node="n1", satellite="us1") == 0.55
    assert value(text, "storagenode_satellite_suspension_score", node="n1", satellite="ap1") == 0.5
    assert value(text, "storagenode_satellite_disqualified", node="n1", satellite="ap1") == 1
    assert value(text, "storagenode_satellite_disqualified", node="n1", satellite="us1") == 0
    assert value(text, "storagenode_satellite_suspended", node="n1", satellite="us1") == 1
    assert value(text, "storagenode_quic_ok", node="n1") == 0
    assert value(text, "storagenode_up_to_date", node="n1") == 0
    assert value(text, "storagenode_last_pinged_timestamp_seconds", node="n1") == FIXED - 600
    assert value(text, "storagenode_disk_used_bytes", node="n1") == 5.82e12
    assert value(text, "storagenode_disk_free_bytes", node="n1") == 0.18e12


@pytest.mark.parametrize("version", VERSIONS)
def test_overused_node(version: str) -> None:
    with SimulatedNodeApi(version, clock=fixed, scenario={"disk_used_ratio": 1.02}) as server:
        poller = NodeApiPoller("n1", server.url)
        poller.poll_once()
        text = exposition(poller)
    assert value(text, "storagenode_disk_used_bytes", node="n1") == 6.12e12
    assert value(text, "storagenode_disk_overused_bytes", node="n1") == 0.12e12
    assert value(text, "storagenode_disk_free_bytes", node="n1") == 0


def test_unknown_satellite_is_learned(sim) -> None:
    sat_id = "12X5e8aVzNMo9bUu8fk8ZDPAibwj7Bwn1p9gFYpJuQq1gUJzQs1"
    sim.scenario["extra_satellites"] = [{"id": sat_id, "url": "testsat.example.org:7777"}]
    poller = NodeApiPoller("n1", sim.url, clock=fixed)
    assert all(poller.poll_once().values())
    assert SATELLITES.name(sat_id) == "testsat"
    text = exposition(poller)
    assert value(text, "storagenode_satellite_info", node="n1", satellite="testsat",
                 satellite_id=sat_id, url="testsat.example.org:7777") == 1
    assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="testsat") == 1
    assert value(text, "storagenode_month_ingress_bytes", node="n1", satellite="testsat",
                 kind="usage") > 0


def test_satellites_with_the_same_short_name_stay_apart(sim) -> None:
    """Two community satellites on `satellite.*` hosts: the second is labelled by its ID."""
    first = "12fZ1cQeWgu2b9xXs6hXyKzQJpX4Y8MmrnHYFYUXnoTJ1Rk7Vxd"
    second = "12gA2dRfXhv3c1yYt7iYzLaRKqY5Z9NnsoJZGZVYopUK2Sm8Wye"
    sim.scenario["extra_satellites"] = [{"id": first, "url": "satellite.example.com:7777"},
                                        {"id": second, "url": "satellite.example.org:7777"}]
    poller = NodeApiPoller("n1", sim.url, clock=fixed)
    assert all(poller.poll_once().values())
    text = exposition(poller)
    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == len(set(series))
    assert value(text, "storagenode_satellite_info", node="n1", satellite="satellite",
                 satellite_id=first, url="satellite.example.com:7777") == 1
    assert value(text, "storagenode_satellite_info", node="n1", satellite=second,
                 satellite_id=second, url="satellite.example.org:7777") == 1
    assert value(text, "storagenode_satellite_online_score", node="n1", satellite=second) == 1


def test_wallet_only_with_opt_in(sim) -> None:
    plain = NodeApiPoller("n1", sim.url)
    plain.poll_once()
    assert "wallet" not in exposition(plain)
    with_wallet = NodeApiPoller("n1", sim.url, include_wallet=True)
    with_wallet.poll_once()
    assert ('wallet="0x0123456789abcdef0123456789abcdef01234567"'
            in exposition(with_wallet))


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown API endpoint"):
        NodeApiPoller("n1", "http://127.0.0.1:1", intervals={"notifications": 60})
    with pytest.raises(ValueError, match="positive"):
        NodeApiPoller("n1", "http://127.0.0.1:1", timeouts={"payout": 0})
    assert NodeApiPoller("n1", "10.0.0.5:14002/").base_url == "http://10.0.0.5:14002"


# -- through the real exporter process ---------------------------------------------------------

def exporter_has_api_flag() -> bool:
    try:
        out = subprocess.run([sys.executable, "-m", "exporter", "--help"], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--api" in out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not exporter_has_api_flag(), reason="exporter has no --api flag yet")
def test_real_exporter_process(sim) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--api", f"n1={sim.url}",
         "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        text = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                started = time.perf_counter()
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=2).read().decode()
                scrape = time.perf_counter() - started
                if value(text, "storagenode_up", node="n1") == 1 and value(
                        text, "storagenode_payout_held_total_dollars",
                        node="n1", satellite="us1") is not None:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail(f"exporter never showed the node:\n{text[-2000:]}\n{proc.stdout.read()}")
        print(f"\nexporter scrape: {scrape * 1000:.1f} ms")
        assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012
        assert value(text, "storagenode_payout_held_total_dollars",
                     node="n1", satellite="us1") == 6.172839
        assert value(text, "storagenode_api_errors_total", node="n1", endpoint="node") == 0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
