"""The node API families written as text and kept per node (exporter/nodeapi/text.py) give the
bytes generate_latest gives for collect(): every recorded version and scenario of the simulated
API, the recorded documents of tests/fixtures/api, a poll landing between scrapes, a node going
down, time passing the staleness limit without a poll, a satellite named later (issue 15)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from exporter import exposition
from exporter.nodeapi import NodeApiCollector, NodeApiPoller
from exporter.satellites import SATELLITES, encode_node_id
from exporter.simulate.nodeapi import VERSIONS, SimulatedNodeApi
from tests.test_nodeapi import DURATION, FIXED, FIXTURES, dead_url, fixed, value

SCENARIO = {  # everything the collector shows differently, on one node
    "extra_satellites": [{"id": encode_node_id(bytes(range(64, 96))),
                          "url": "extra.example.com:7777"}],
    "disqualified": ["eu1"], "suspended": ["ap1"], "quic_status": "Misconfigured",
    "up_to_date": False, "last_pinged_ago_seconds": None, "disk_used_ratio": 1.02,
    "audit_score": {"us1": 0.95}, "fail": ["payout"], "malformed": {"held": "truncated"},
}


def check(collector: NodeApiCollector) -> str:
    """The kept text equals generate_latest of collect(), now and from the cache."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    want = generate_latest(registry).decode()
    first = collector.text()
    assert first.text == want
    assert collector.text() is first  # nothing changed: the same text, not written again
    return want


@pytest.fixture
def sims():
    servers = [SimulatedNodeApi(v, clock=fixed).start() for v in VERSIONS]
    servers.append(SimulatedNodeApi("v1.146", clock=fixed, scenario=dict(SCENARIO)).start())
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("wallet", [False, True])
def test_every_version_and_scenario_is_byte_identical(sims, wallet):
    pollers = [NodeApiPoller(f"n{i}", s.url, clock=fixed, include_wallet=wallet)
               for i, s in enumerate(sims)]
    pollers.append(NodeApiPoller("dead", dead_url(), clock=fixed, timeouts={"node": 1}))
    for poller in pollers:
        poller.poll_once()
    text = check(NodeApiCollector(pollers))
    assert text.count("# TYPE storagenode_up gauge") == 1
    assert value(text, "storagenode_up", node="dead") == 0
    assert ('satellite="extra"' in text) and ("wallet=" in text) == wallet


class _Recorded(BaseHTTPRequestHandler):
    """The recorded documents of tests/fixtures/api by path; anything else answers 404."""

    documents: dict[str, bytes] = {}

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        body = self.documents.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b'{"error": "not found"}')


@pytest.mark.parametrize("node", ["node_v1.120.json", "node_v1.144_hashstore.json",
                                  "node_new_empty.json", "node_bad_type.json",
                                  "node_truncated.json", "dashboard.html"])
def test_recorded_documents_are_byte_identical(node):
    handler = type("H", (_Recorded,), {"documents": {
        "/api/sno/": (FIXTURES / node).read_bytes(),
        "/api/sno/satellites": (FIXTURES / "satellites_new_empty.json").read_bytes()}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        poller = NodeApiPoller("r", f"http://127.0.0.1:{server.server_port}", clock=fixed)
        poller.poll_once()
        check(NodeApiCollector([poller]))
    finally:
        server.shutdown()
        server.server_close()


def test_polls_landing_and_a_node_going_down_between_scrapes():
    with SimulatedNodeApi("v1.146", clock=fixed) as sim:
        poller = NodeApiPoller("n1", sim.url, clock=fixed)
        other = NodeApiPoller("n2", sim.url, clock=fixed)
        for p in (poller, other):
            p.poll_once()
        collector = NodeApiCollector([poller, other])
        check(collector)
        kept = collector.text()
        other.poll_once(("satellites",))  # the same values again, in a new duration
        assert DURATION.sub("", check(collector)) == DURATION.sub("", kept.text)
        sim.scenario["audit_score"] = 0.97  # a poll lands with a new score
        poller.poll_once(("satellites",))
        text = check(collector)
        assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="us1") \
            == 0.97
        assert value(text, "storagenode_satellite_audit_score", node="n2", satellite="us1") == 1
        sim.scenario["fail"] = True  # the node goes down
        poller.poll_once()
        text = check(collector)
        assert value(text, "storagenode_up", node="n1") == 0
        assert value(text, "storagenode_api_failures_total", node="n1", endpoint="node",
                     reason="http_status") == 1
        assert value(text, "storagenode_up", node="n2") == 1
        del sim.scenario["fail"]  # and answers again
        poller.poll_once(("node",))
        assert value(check(collector), "storagenode_up", node="n1") == 1


def test_up_drops_while_a_poll_overruns_its_deadline():
    """Only `up` changes (as in tests/test_nodeapi_faults.py, a DNS lookup without deadline)."""
    with SimulatedNodeApi("v1.146", clock=fixed) as sim:
        poller = NodeApiPoller("n1", sim.url, clock=fixed, timeouts={"node": 0.2})
        poller.poll_once()
        collector = NodeApiCollector([poller])
        assert value(check(collector), "storagenode_up", node="n1") == 1
        with poller._lock:  # a poll that started 5 s ago and is still in flight
            poller._stats["node"].in_flight_since = time.monotonic() - 5
        text = check(collector)
        assert value(text, "storagenode_up", node="n1") == 0
        assert value(text, "storagenode_disk_used_bytes", node="n1") == 4213456789012


def test_values_go_stale_without_a_poll():
    """No poll between the scrapes, only time: up drops to 0 and the node's values go."""
    with SimulatedNodeApi("v1.146", clock=fixed) as sim:
        poller = NodeApiPoller("n1", sim.url, clock=fixed, intervals={"node": 0.05},
                               timeouts={"node": 0.2})
        poller.poll_once()
        collector = NodeApiCollector([poller])
        text = check(collector)
        assert value(text, "storagenode_up", node="n1") == 1
        time.sleep(0.45)  # > 3 x 0.05 s + 0.2 s since the last success
        text = check(collector)
        assert value(text, "storagenode_up", node="n1") == 0
        assert value(text, "storagenode_disk_used_bytes", node="n1") is None
        assert value(text, "storagenode_satellite_audit_score", node="n1", satellite="us1") == 1


def test_a_satellite_named_by_another_node_later():
    """A block shows the names of its satellites at the scrape, learned since or not."""
    sat = encode_node_id(bytes(range(96, 128)))
    with SimulatedNodeApi("v1.146", clock=fixed,
                          scenario={"extra_satellites": [{"id": sat, "url": "first.example:1"}]}
                          ) as sim:
        poller = NodeApiPoller("n1", sim.url, clock=fixed)
        poller.poll_once()
        collector = NodeApiCollector([poller])
        assert 'satellite="first"' in check(collector)
        SATELLITES.learn(sat, "second.example:1")
        text = check(collector)
        assert 'satellite="second"' in text and 'satellite="first"' not in text


def test_a_scrape_puts_the_text_where_the_families_were():
    """exposition.rest: the registry's families before and after the collector's text, as
    generate_latest orders them."""
    with SimulatedNodeApi("v1.146", clock=fixed) as sim:
        poller = NodeApiPoller("n1", sim.url, clock=fixed)
        poller.poll_once()
        registry = CollectorRegistry(auto_describe=False)
        Gauge("before_api", "Registered first.", registry=registry).set(1)
        registry.register(NodeApiCollector([poller]))
        Gauge("after_api", "Registered last.", registry=registry).set(FIXED)
        want = generate_latest(registry)
        assert exposition.rest(registry) == want
        assert want.index(b"before_api 1.0") < want.index(b"storagenode_up{") \
            < want.index(b"after_api ")


def test_a_node_poll_leaves_the_payout_part_as_it_was():
    """The parts of a block are kept under what their renderer reads: a node poll with a new
    document writes the node and satellite parts again, not the payout part."""
    with SimulatedNodeApi("v1.146") as sim:  # the real clock: every node poll differs
        poller = NodeApiPoller("n1", sim.url)
        poller.poll_once()
        collector = NodeApiCollector([poller])
        check(collector)
        before = collector._blocks["n1"].parts
        time.sleep(0.01)
        poller.poll_once(("node",))
        check(collector)
        after = collector._blocks["n1"].parts
        assert [a is b for a, b in zip(before, after, strict=True)] == [False, False, True]


def test_a_renderer_that_fails_keeps_what_collect_keeps(monkeypatch, caplog):
    """A bug in one renderer: the samples it wrote stay, the renderers after it are left
    out, the poller's own families and the other nodes are there, in both paths alike."""
    satellites = NodeApiCollector._satellites

    def broken(snap, gauge, sat_labels):
        if snap.node == "bad":
            gauge("storagenode_satellite_info", "Satellites the node works for (always 1).",
                  ["node", "satellite", "satellite_id", "url"]).add_metric(
                      ["bad", "us1", "x", "y"], 1.0)
            raise RuntimeError("a bug")
        satellites(snap, gauge, sat_labels)

    monkeypatch.setattr(NodeApiCollector, "_satellites", staticmethod(broken))
    with SimulatedNodeApi("v1.146", clock=fixed) as sim:
        pollers = [NodeApiPoller(name, sim.url, clock=fixed) for name in ("bad", "good")]
        for poller in pollers:
            poller.poll_once()
        collector = NodeApiCollector(pollers)
        text = check(collector)
        pollers[0].poll_once(("node",))  # written again from the kept parts
        text = check(collector)
    assert value(text, "storagenode_satellite_info", node="bad", satellite="us1",
                 satellite_id="x", url="y") == 1
    assert value(text, "storagenode_payout_held_total_dollars", node="bad",
                 satellite="us1") is None
    assert value(text, "storagenode_payout_held_total_dollars", node="good",
                 satellite="us1") == 6.172839
    assert value(text, "storagenode_api_errors_total", node="bad", endpoint="node") == 0
    assert len([r for r in caplog.records if "cannot render" in r.getMessage()]) == 1
