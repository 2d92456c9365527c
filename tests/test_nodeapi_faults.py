"""A hostile node API: drips, hangs, huge, cut-off, invalid or absurd answers (issue 12, item 9).

`FaultyApi` is a tiny raw-socket HTTP server that answers like the simulated node (its documents
come from `SimulatedNodeApi.route`) until a test sets a fault for an endpoint. The process tests
run the real exporter against it with short intervals from the config file and measure, while
the bad answers are being polled, the /metrics latency and the exporter's RSS.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import socketserver
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from exporter.nodeapi import NodeApiPoller
from exporter.nodeapi.client import MAX_BODY
from exporter.simulate.nodeapi import SimulatedNodeApi, go_json
from tests.conftest import parse_exposition, wait_for

FIXED = 1787220900.0  # 2026-08-20T10:15:00Z
USED = 4213456789012  # storagenode_disk_used_bytes of the simulated v1.146 node
DRIP_PERIOD = 0.5
HUGE = 60 * 1024 * 1024


def _node_doc_with(raw_used: str) -> bytes:
    """The node document with diskSpace.used replaced by raw JSON text (NaN, 1e400, ...)."""
    sim = SimulatedNodeApi("v1.146", clock=lambda: FIXED)
    try:
        body = go_json(sim.node_doc(FIXED)).decode()
    finally:
        sim.stop()
    body, n = re.subn(r'("diskSpace":\{"used":)[^,]+', r"\g<1>" + raw_used, body)
    assert n == 1
    return body.encode()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        api: FaultyApi = self.server.api  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        sock.settimeout(5)
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(4096)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode()
            endpoint, render = api.sim.route(*path.partition("?")[::2])
            api.requests[endpoint] = api.requests.get(endpoint, 0) + 1
            getattr(self, "_" + api.faults.get(endpoint, "ok"))(sock, render, api)
        except OSError:
            pass  # the exporter gave up: that is the point

    @staticmethod
    def _send(sock: socket.socket, body: bytes, ctype: str = "application/json",
              status: str = "200 OK", length: int | None = None) -> None:
        length = len(body) if length is None else length
        sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode() + body)

    def _ok(self, sock, render, api) -> None:
        status, doc = render()
        self._send(sock, go_json(doc), status=f"{status} X")

    def _drip(self, sock, render, api) -> None:
        """A valid header, then one byte of the body every DRIP_PERIOD: each recv succeeds."""
        body = go_json(render()[1])
        self._send(sock, b"", length=len(body))
        for byte in body:
            if api.stopping.wait(DRIP_PERIOD):
                return
            sock.sendall(bytes([byte]))

    def _drip_headers(self, sock, render, api) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
            if api.stopping.wait(DRIP_PERIOD):
                return
            sock.sendall(bytes([byte]))

    def _hang(self, sock, render, api) -> None:
        api.stopping.wait(60)

    def _huge(self, sock, render, api) -> None:
        """60 MB of valid JSON, announced by Content-Length."""
        huge = api.huge_body()
        self._send(sock, b"", length=len(huge))
        sock.sendall(huge)

    def _huge_unannounced(self, sock, render, api) -> None:
        """60 MB without Content-Length (ends when the connection closes)."""
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n\r\n[")
        chunk = b"0," * 32768
        for _ in range(HUGE // len(chunk)):
            sock.sendall(chunk)
        sock.sendall(b"0]")

    def _many_lists(self, sock, render, api) -> None:
        """Just under the size cap of the JSON that is slowest to parse (GIL held)."""
        self._send(sock, b"[" + b"[]," * (MAX_BODY // 3 - 1) + b"0]")

    def _cut(self, sock, render, api) -> None:
        body = go_json(render()[1])
        self._send(sock, body[: len(body) // 3], length=len(body))

    def _invalid(self, sock, render, api) -> None:
        self._send(sock, b'{"nodeID": "12Pq", "diskSpace": {')

    def _deep(self, sock, render, api) -> None:
        self._send(sock, b"[" * 20_000 + b"]" * 20_000)  # past the recursion limit

    def _nan(self, sock, render, api) -> None:
        self._send(sock, _node_doc_with("NaN"))

    def _infinity(self, sock, render, api) -> None:
        self._send(sock, _node_doc_with("Infinity"))

    def _overflow(self, sock, render, api) -> None:
        self._send(sock, _node_doc_with("1e400"))

    def _huge_int(self, sock, render, api) -> None:
        self._send(sock, _node_doc_with("1" + "0" * 40))

    def _long_int(self, sock, render, api) -> None:
        self._send(sock, _node_doc_with("9" * 5000))

    def _png(self, sock, render, api) -> None:
        self._send(sock, go_json(render()[1]), ctype="image/png")

    def _html(self, sock, render, api) -> None:
        self._send(sock, b"<html><body>login</body></html>", ctype="text/html")

    def _error_escape(self, sock, render, api) -> None:
        self._send(sock, b'{"error": "bad\\u001b[31m\\nnode n1: API forged"}',
                   status="500 Internal Server Error")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultyApi:
    """Serves the simulated node; `faults[endpoint] = mode` makes one endpoint misbehave."""

    def __init__(self) -> None:
        self.sim = SimulatedNodeApi("v1.146", clock=lambda: FIXED)
        self.sim.stop()  # only its documents are used
        self.faults: dict[str, str] = {}
        self.requests: dict[str, int] = {}
        self.huge: bytes | None = None
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def huge_body(self) -> bytes:
        """60 MB of JSON, built once; call it before measuring (building it holds this
        process's GIL, which would slow the test's scraper thread, not the exporter)."""
        if self.huge is None:
            self.huge = b"[" + b"0," * (HUGE // 2) + b"0]"
        return self.huge

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def api():
    server = FaultyApi()
    yield server
    server.stop()


# -- through the real exporter process --------------------------------------------------------

def _config(tmp_path: Path, url: str, node_timeout: float = 1.0) -> str:
    path = tmp_path / "exporter.yml"
    path.write_text(json.dumps({"nodes": [{
        "name": "n1", "api": url,
        "api_intervals": {"node": 0.5, "satellites": 0.5, "satellite": 0.5, "payout": 0.5,
                          "held": 0.5},
        "api_timeouts": {"node": node_timeout, "satellites": 1, "satellite": 1, "payout": 1,
                         "held": 1},
    }]}))
    return str(path)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Scraper:
    """Scrapes /metrics in a loop and keeps the slowest answer and the exporter's peak RSS."""

    def __init__(self, exporter) -> None:
        self.exporter = exporter
        self.worst = 0.0
        self.peak_rss = 0.0
        self.scrapes = 0
        self.last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with urllib.request.urlopen(self.exporter.url + "/metrics", timeout=10) as r:
                text = r.read().decode()
            self.worst = max(self.worst, time.perf_counter() - started)
            self.peak_rss = max(self.peak_rss, _rss_mb(self.exporter.proc.pid))
            self.last = parse_exposition(text)
            self.scrapes += 1
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def _value(samples: dict[str, float], name: str, endpoint: str | None = None) -> float | None:
    labels = f'endpoint="{endpoint}",node="n1"' if endpoint else 'node="n1"'
    return samples.get(f"{name}{{{labels}}}")


def _failure_lines(log: str, path: str) -> list[str]:
    return [line for line in log.splitlines() if f"{path} failed" in line]


@pytest.mark.parametrize("mode", ["drip", "drip_headers", "hang", "huge", "huge_unannounced",
                                  "many_lists"])
def test_bad_node_endpoint_through_the_exporter(api, exporter_process, tmp_path, mode) -> None:
    exporter = exporter_process("--config", _config(tmp_path, api.url))
    wait_for(lambda: _value(exporter.samples(), "storagenode_up") == 1, timeout=10,
             what="a healthy start")
    baseline_rss = _rss_mb(exporter.proc.pid)
    api.huge_body()
    scraper = Scraper(exporter)
    api.faults["node"] = mode
    started = time.monotonic()
    try:
        wait_for(lambda: (_value(scraper.last, "storagenode_api_errors_total", "node") or 0) >= 2,
                 timeout=8, what="two counted node errors")
        wait_for(lambda: _value(scraper.last, "storagenode_up") == 0, timeout=8,
                 what="storagenode_up 0")
        # expiry: 3 node intervals + the timeout after the last success the values go
        wait_for(lambda: _value(scraper.last, "storagenode_disk_used_bytes") is None, timeout=8,
                 what="node values expired")
        took = time.monotonic() - started
    finally:
        scraper.stop()
    samples = scraper.last
    log = exporter.stop()
    print(f"\n{mode}: 2 errors and up=0 after {took:.1f}s, {scraper.scrapes} scrapes, worst "
          f"{scraper.worst * 1000:.0f} ms, RSS {baseline_rss:.0f} -> peak "
          f"{scraper.peak_rss:.0f} MB")
    assert scraper.worst < 0.5
    assert scraper.peak_rss < max(120.0, baseline_rss + 40)
    assert _value(samples, "storagenode_api_errors_total", "satellites") == 0  # others unharmed
    assert samples['storagenode_satellite_audit_score{node="n1",satellite="us1"}'] == 1
    reason = {"huge": "too_large", "huge_unannounced": "too_large",
              "many_lists": "malformed"}.get(mode, "timeout")
    by_reason = samples.get('storagenode_api_failures_total'
                            f'{{endpoint="node",node="n1",reason="{reason}"}}')
    assert by_reason == _value(samples, "storagenode_api_errors_total", "node")
    assert len(_failure_lines(log, "/api/sno/")) == 1, log
    assert len([line for line in log.splitlines() if "/api/sno/" in line]) == 1, log


def test_recovery_is_logged_once_and_up_returns(api, exporter_process, tmp_path) -> None:
    exporter = exporter_process("--config", _config(tmp_path, api.url))
    wait_for(lambda: _value(exporter.samples(), "storagenode_up") == 1, timeout=10,
             what="a healthy start")
    first = _value(exporter.samples(), "storagenode_api_last_success_timestamp_seconds", "node")
    api.faults["node"] = "hang"
    wait_for(lambda: _value(exporter.samples(), "storagenode_up") == 0, timeout=8,
             what="storagenode_up 0")
    stale = _value(exporter.samples(), "storagenode_api_last_success_timestamp_seconds", "node")
    del api.faults["node"]
    wait_for(lambda: _value(exporter.samples(), "storagenode_up") == 1, timeout=8,
             what="storagenode_up back to 1")
    after = _value(exporter.samples(), "storagenode_api_last_success_timestamp_seconds", "node")
    log = exporter.stop()
    assert first <= stale < after
    lines = [line for line in log.splitlines() if "/api/sno/" in line]
    assert len(lines) == 2, log
    assert "failed" in lines[0] and "timed out" in lines[0]
    assert "answers again" in lines[1]


# -- the poller in-process: every kind of bad answer ------------------------------------------

BAD = {  # mode -> (reason, text in the one log line)
    "drip": ("timeout", "timed out after 1s"),
    "drip_headers": ("timeout", "timed out after 1s"),
    "hang": ("timeout", "timed out after 1s"),
    "huge": ("too_large", "larger than"),
    "huge_unannounced": ("too_large", "larger than"),
    "cut": ("connection", "cut off"),
    "invalid": ("malformed", "invalid JSON"),
    "deep": ("malformed", "nested"),
    "nan": ("malformed", "NaN"),
    "infinity": ("malformed", "Infinity"),
    "overflow": ("malformed", "diskSpace.used: inf is outside"),
    "huge_int": ("malformed", "diskSpace.used: 1" + "0" * 39),
    "many_lists": ("malformed", "JSON arrays/objects"),
    "long_int": ("malformed", "invalid JSON"),
    "png": ("malformed", "image/png"),
    "html": ("malformed", "HTML"),
}


def _poller_text(poller: NodeApiPoller) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from exporter.nodeapi import NodeApiCollector

    registry = CollectorRegistry()
    registry.register(NodeApiCollector([poller]))
    return generate_latest(registry).decode()


@pytest.mark.parametrize("mode", sorted(BAD))
def test_every_bad_answer_is_counted_and_logged_once(api, caplog, mode) -> None:
    caplog.set_level(logging.INFO, logger="exporter.nodeapi")
    reason, text = BAD[mode]
    poller = NodeApiPoller("n1", api.url, timeouts={"node": 1.0}, clock=lambda: FIXED)
    assert poller.poll_once()["node"] is True
    api.faults["node"] = mode
    for _ in range(2):
        started = time.monotonic()
        assert poller.poll_once()["node"] is False
        assert time.monotonic() - started < 1.0 + 4 * 0.5  # 1 s node + the other endpoints
    samples = parse_exposition(_poller_text(poller))
    assert _value(samples, "storagenode_up") == 0
    assert _value(samples, "storagenode_api_errors_total", "node") == 2
    assert samples[f'storagenode_api_failures_total{{endpoint="node",node="n1",reason="{reason}"}}'
                   ] == 2
    assert _value(samples, "storagenode_disk_used_bytes") == USED  # last good value kept
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and text in warnings[0], warnings
    assert "\n" not in warnings[0] and "\x1b" not in warnings[0]


def test_error_text_from_the_wire_is_escaped(api, caplog) -> None:
    caplog.set_level(logging.INFO, logger="exporter.nodeapi")
    api.faults["node"] = "error_escape"
    poller = NodeApiPoller("n1", api.url, timeouts={"node": 1.0})
    assert poller.poll_once()["node"] is False
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "HTTP 500" in line and "\x1b" not in line and "\n" not in line
    samples = parse_exposition(_poller_text(poller))
    assert samples['storagenode_api_failures_total{endpoint="node",node="n1",reason="http_status"}'
                   ] == 1


def test_up_is_0_while_a_request_overruns_its_deadline(api) -> None:
    """Even where no deadline can be enforced (a DNS lookup), up does not stay 1."""
    poller = NodeApiPoller("n1", api.url, intervals={"node": 0.2}, timeouts={"node": 0.2})
    assert poller.poll_once()["node"] is True
    assert _value(parse_exposition(_poller_text(poller)), "storagenode_up") == 1
    stats = poller._stats["node"]
    with poller._lock:  # a poll that started 5 s ago and is still in flight
        stats.in_flight_since = time.monotonic() - 5
        stats.last_success_mono = time.monotonic()
    assert _value(parse_exposition(_poller_text(poller)), "storagenode_up") == 0


def test_config_file_sets_api_intervals_and_timeouts(tmp_path) -> None:
    from exporter.config import ConfigError, load_file

    good = load_file(_config(tmp_path, "http://127.0.0.1:14002", node_timeout=0.7))
    assert good.nodes[0].api_timeouts["node"] == 0.7
    assert good.nodes[0].api_intervals["payout"] == 0.5
    path = tmp_path / "bad.yml"
    for item, message in (({"api_timeouts": {"notifications": 1}},
                           "api_timeouts.notifications: unknown"),
                          ({"api_intervals": {"node": 0}}, "api_intervals.node: must be positive"),
                          ({"api_timeouts": {"node": "1s"}}, "expected seconds")):
        path.write_text(json.dumps({"nodes": [{"name": "n1", "api": "http://x:1", **item}]}))
        with pytest.raises(ConfigError, match=message):
            load_file(str(path))


@pytest.mark.parametrize("score", [1.5, -0.1, 1e300])
def test_scores_outside_0_to_1_are_malformed(score) -> None:
    from exporter.nodeapi.parse import Malformed, parse_satellites

    item = {"satelliteName": "us1.storj.io:7777", "auditScore": 1, "suspensionScore": 1,
            "onlineScore": score}
    with pytest.raises(Malformed, match="onlineScore"):
        parse_satellites({"audits": [item]})
    assert parse_satellites({"audits": [{**item, "onlineScore": 0.5}]})[
        "us1.storj.io:7777"].online == 0.5
