"""End to end: a failed audit in a node log reaches an Alertmanager webhook.

Real processes on 127.0.0.1: the exporter tailing a log file and polling a simulated node API
(low audit score, nearly full disk), the Debian `prometheus` with the real rule files of
prometheus/rules/ (scrape and evaluation every second), the Debian `prometheus-alertmanager`
with the real routing tree and inhibition rules of prometheus/alertmanager.yml (receivers
pointed at a webhook server in this test, group_wait/group_interval 1 s).

Covered here: StoragenodeAuditFailed, StoragenodeAuditScoreLow, StoragenodeDiskAlmostFull (no
`for:`), routing by severity and the critical-inhibits-warning rule. Alerts with a `for:` of
minutes or hours cannot fire within the time bound; they are covered by the promtool unit tests
in prometheus/tests/ only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, free_port, wait_for

PROM = ROOT / "prometheus"
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
EU1 = "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"
TIME_BOUND = 90.0
EXPECTED_ALERTS = {"StoragenodeAuditFailed", "StoragenodeAuditScoreLow",
                   "StoragenodeDiskAlmostFull", "Watchdog"}


def missing_prerequisite() -> str | None:
    """Why the test cannot run yet, or None."""
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed"
    if not (ROOT / "exporter" / "simulate" / "nodeapi.py").is_file():
        return "exporter/simulate/nodeapi.py (simulated node API) does not exist yet"
    helped = subprocess.run([sys.executable, "-m", "exporter", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    if helped.returncode != 0 or "--api" not in helped.stdout:
        return "`python -m exporter --help` does not offer --api yet"
    return None


# -- log lines (v1.146 console format) ----------------------------------------------------------

def log_line(level: str, message: str, satellite: str, action: str, piece: str,
             size: int, **extra: object) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {"process": "storagenode", "piece_id": piece, "satellite_id": satellite,
              "action": action}
    if action.startswith("GET"):
        fields["offset"] = 0
    fields.update(size=size, remote_address="203.0.113.7:41080", **extra)
    return f"{stamp}\t{level}\tpiecestore\t{message}\t{json.dumps(fields)}\n"


def piece(n: int) -> str:
    return f"{n:04d}".replace("0", "A") + "QHDD2YN7WG7JNBOFX3PJZ5FZQM423KWU3JLHML5KRFWCNAO7M"


NORMAL_TRAFFIC = [
    log_line("INFO", "uploaded", US1, "PUT", piece(1), 2293760),
    log_line("INFO", "downloaded", US1, "GET", piece(2), 7936),
    log_line("INFO", "downloaded", US1, "GET_AUDIT", piece(3), 256),
    log_line("INFO", "download canceled", EU1, "GET", piece(4), 7936, reason="context canceled"),
    log_line("INFO", "uploaded", EU1, "PUT_REPAIR", piece(5), 1048576),
]


def failed_audit_line() -> str:
    return log_line("ERROR", "download failed", US1, "GET_AUDIT", piece(6), 256,
                    error="file does not exist",
                    errorVerbose="file does not exist\n\tstorj.io/common/rpc/rpcstatus.Wrap:75")


# -- the webhook ---------------------------------------------------------------------------------

class Webhook:
    """Records every alert Alertmanager posts: (monotonic arrival, receiver, alert)."""

    def __init__(self) -> None:
        self.alerts: list[tuple[float, str, dict]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                arrived = time.monotonic()
                payload = json.loads(body)
                with hook.lock:
                    for alert in payload["alerts"]:
                        hook.alerts.append((arrived, payload["receiver"], alert))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, alertname: str, **labels: str) -> list[tuple[float, str, dict]]:
        with self.lock:
            return [
                (t, receiver, alert) for t, receiver, alert in self.alerts
                if alert["labels"].get("alertname") == alertname
                and all(alert["labels"].get(k) == v for k, v in labels.items())
            ]

    def names(self) -> set[str]:
        with self.lock:
            return {alert["labels"]["alertname"] for _, _, alert in self.alerts}


# -- processes -----------------------------------------------------------------------------------

def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def prom_api(port: int, path: str, **params: str):
    url = f"http://127.0.0.1:{port}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=2) as answer:
        return json.loads(answer.read())["data"]


def prom_query(port: int, query: str) -> list[dict]:
    return prom_api(port, "query", query=query)["result"]


def prometheus_config(exporter_port: int, alertmanager_port: int) -> dict:
    """The shipped prometheus.yml with loopback targets, 1 s intervals, the real rule files."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "storagenode"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    config["scrape_configs"] = [job]
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(p) for p in sorted((PROM / "rules").glob("*.yml"))]
    config["alerting"]["alertmanagers"] = [
        {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
    ]
    return config


def alertmanager_config(webhook_port: int) -> dict:
    """The shipped routing tree and inhibit rules; every receiver posts to the test webhook."""
    config = yaml.safe_load((PROM / "alertmanager.yml").read_text())
    config["global"] = {"resolve_timeout": "5m"}
    config["route"].update(group_wait="1s", group_interval="1s")
    for child in config["route"].get("routes", []):
        assert "group_wait" not in child and "group_interval" not in child
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [
            {"url": f"http://127.0.0.1:{webhook_port}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]
    ]
    return config


@pytest.fixture
def started():
    """Popen objects started by the test; each is stopped (by its own pid) at the end."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(procs: list, args: list[str], log: Path) -> subprocess.Popen:
    out = log.open("w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    out.close()
    procs.append(proc)
    return proc


def alive(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"{proc.args[0]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")


# -- the test ------------------------------------------------------------------------------------

def test_failed_audit_reaches_the_webhook(tmp_path, started, exporter_process):
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    began = time.monotonic()

    def within(seconds: float) -> float:
        """A wait's timeout, cut so the whole test stays inside TIME_BOUND."""
        return max(0.5, min(seconds, began + TIME_BOUND - 5 - time.monotonic()))

    hook = Webhook()
    try:
        # simulated node API: audit score 0.965 on us1 (critical, < 0.97), disk 97 % used
        scenario = tmp_path / "scenario.json"
        scenario.write_text(json.dumps({"audit_score": {"us1": 0.965}, "disk_used_ratio": 0.97}))
        api_port = free_port()
        api_log = tmp_path / "nodeapi.log"
        api = start(started, [sys.executable, "-m", "exporter.simulate.nodeapi",
                              "--listen", f"127.0.0.1:{api_port}", "--version", "v1.146",
                              "--scenario", str(scenario)], api_log)
        wait_for(lambda: alive(api, api_log) or http_ok(f"http://127.0.0.1:{api_port}/api/sno/"),
                 timeout=within(15), what="simulated node API")

        # the exporter reads the log from its start: the satellites appear, with every
        # action x result series (failed GET_AUDIT included) at 0
        node_log = tmp_path / "node.log"
        node_log.write_text("".join(NORMAL_TRAFFIC))
        exporter = exporter_process("--node", f"n1:{node_log}", "--from-start",
                                    "--api", f"n1=http://127.0.0.1:{api_port}")

        am_port, prom_port = free_port(), free_port()
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_config(hook.port)))
        am_log = tmp_path / "alertmanager.log"
        am = start(started, ["prometheus-alertmanager", f"--config.file={am_config}",
                             f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address=127.0.0.1:{am_port}",
                             "--cluster.listen-address="], am_log)

        prom_config = tmp_path / "prometheus.yml"
        prom_config.write_text(yaml.safe_dump(prometheus_config(exporter.port, am_port)))
        prom_log = tmp_path / "prometheus.log"
        prom = start(started, ["prometheus", f"--config.file={prom_config}",
                               f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                               f"--web.listen-address=127.0.0.1:{prom_port}",
                               # alerts sent before the Alertmanager is discovered are dropped;
                               # resend each second, not each minute (the Watchdog fires at once)
                               "--rules.alert.resend-delay=1s"], prom_log)
        wait_for(lambda: alive(am, am_log) or http_ok(f"http://127.0.0.1:{am_port}/-/ready"),
                 timeout=within(20), what="alertmanager ready")
        wait_for(lambda: alive(prom, prom_log)
                 or http_ok(f"http://127.0.0.1:{prom_port}/-/ready"),
                 timeout=within(20), what="prometheus ready")

        # the API-driven alerts come through the whole chain first
        wait_for(lambda: hook.received("StoragenodeAuditScoreLow"), timeout=within(30),
                 what="StoragenodeAuditScoreLow at the webhook")
        wait_for(lambda: hook.received("StoragenodeDiskAlmostFull"), timeout=within(30),
                 what="StoragenodeDiskAlmostFull at the webhook")
        # Prometheus holds at least two samples of the zero-valued failed-audit series
        failed = ('storagenode_transfers_total{job="storagenode", node="n1", satellite="us1",'
                  ' action="GET_AUDIT", result="failed"}')
        wait_for(lambda: [r for r in prom_query(prom_port, f"count_over_time({failed}[1m])")
                          if float(r["value"][1]) >= 2],
                 timeout=within(20), what="failed-audit series scraped at 0")
        assert [float(r["value"][1]) for r in prom_query(prom_port, failed)] == [0.0]
        assert not hook.received("StoragenodeAuditFailed"), "fired before any failed audit"

        # now the node fails an audit
        with node_log.open("a") as log:
            log.write(failed_audit_line())
        appended = time.monotonic()
        wait_for(lambda: hook.received("StoragenodeAuditFailed"), timeout=within(30),
                 what="StoragenodeAuditFailed at the webhook")
        latency = hook.received("StoragenodeAuditFailed")[0][0] - appended
        print(f"\nlog line -> webhook latency for StoragenodeAuditFailed: {latency:.2f} s "
              "(scrape and evaluation interval 1 s, group_wait 1 s)")
        # routing by severity: critical alerts go to `critical` and to `webhook`
        wait_for(lambda: {r for _, r, _ in hook.received("StoragenodeAuditFailed")}
                 == {"critical", "webhook"}, timeout=within(10), what="both receivers")
    finally:
        hook.server.shutdown()

    instance = f"127.0.0.1:{exporter.port}"
    (_, _, audit_failed), *_ = hook.received("StoragenodeAuditFailed")
    assert audit_failed["labels"] == {
        "alertname": "StoragenodeAuditFailed", "severity": "critical", "job": "storagenode",
        "instance": instance, "node": "n1", "satellite": "us1", "action": "GET_AUDIT",
        "result": "failed",
    }
    assert audit_failed["annotations"]["summary"] == "A storagenode failed an audit."
    assert audit_failed["annotations"]["description"].startswith(
        "Node n1 recently failed 1 audit(s) of satellite us1.")

    score = hook.received("StoragenodeAuditScoreLow")
    assert {r for _, r, _ in score} == {"critical", "webhook"}
    for _, _, alert in score:
        assert alert["labels"] == {
            "alertname": "StoragenodeAuditScoreLow", "severity": "critical",
            "job": "storagenode", "instance": instance, "node": "n1", "satellite": "us1",
        }
        assert alert["annotations"]["description"].startswith(
            "The audit score of node n1 on satellite us1 is 0.9650: about 10 more failed")

    disk = hook.received("StoragenodeDiskAlmostFull")
    assert {r for _, r, _ in disk} == {"critical", "webhook"}
    for _, _, alert in disk:
        assert alert["labels"] == {
            "alertname": "StoragenodeDiskAlmostFull", "severity": "critical",
            "job": "storagenode", "instance": instance, "node": "n1",
        }
        assert alert["annotations"]["description"].startswith(
            "Only 3% of the allocation of node n1 is free.")

    # the warning levels fired in Prometheus too, but were inhibited by the critical ones
    firing = {(a["labels"]["alertname"], a["labels"]["severity"])
              for a in prom_api(prom_port, "alerts")["alerts"] if a["state"] == "firing"}
    assert ("StoragenodeAuditScoreLow", "warning") in firing
    assert ("StoragenodeDiskAlmostFull", "warning") in firing
    assert not hook.received("StoragenodeAuditScoreLow", severity="warning")
    assert not hook.received("StoragenodeDiskAlmostFull", severity="warning")
    assert not [a for _, r, a in hook.alerts if r == "warning"]

    assert hook.names() == EXPECTED_ALERTS
    # the dead man's switch (rules/storagenode-meta.yml) reaches its heartbeat receiver only
    assert {r for _, r, _ in hook.received("Watchdog")} == {"heartbeat"}
    assert latency < 15, f"log line to webhook took {latency:.1f} s"
    elapsed = time.monotonic() - began
    print(f"whole end-to-end test: {elapsed:.1f} s")
    assert elapsed < TIME_BOUND
