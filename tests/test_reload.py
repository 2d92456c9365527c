"""SIGHUP against the real process: nodes start, stop and restart, the TLS certificate is
reloaded, a bad config keeps the running one, a removed node leaves the state file."""

from __future__ import annotations

import json
import signal
import ssl

from tests.conftest import FIXTURES, wait_for
from tests.webtools import CA, WebExporter

LOG = FIXTURES / "logs" / "v1.142.log"


def _nodes(samples: dict[str, float]) -> set[str]:
    return {k.split('node="', 1)[1].split('"', 1)[0] for k in samples
            if k.startswith("storagenode_log_lines_total{")}


def _config(path, *nodes: str) -> None:
    path.write_text("nodes:\n" + "".join(
        f"  - name: {n}\n    log: {LOG}\n    from_start: true\n" for n in nodes))


def test_sighup_starts_stops_and_keeps_nodes(tmp_path, exporter_process):
    config = tmp_path / "exporter.yml"
    state = tmp_path / "state.json"
    _config(config, "n1", "n2")
    proc = exporter_process("--config", str(config), "--state-file", str(state))
    wait_for(lambda: _nodes(proc.samples()) == {"n1", "n2"}, what="n1 and n2")
    wait_for(lambda: state.exists() and set(json.loads(state.read_text())["nodes"])
             == {"n1", "n2"}, what="both nodes in the state file")
    _config(config, "n2", "n3")
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: _nodes(proc.samples()) == {"n2", "n3"}, what="n1 gone, n3 there")
    assert [n["name"] for n in json.loads(proc.get("/api/status"))["nodes"]] \
        == ["n2", "n3"]
    wait_for(lambda: set(json.loads(state.read_text())["nodes"]) == {"n2", "n3"},
             what="n1 dropped from the state file")
    log = proc.logged()
    assert "reload: node n1: removed, log source stopped" in log
    assert "reload: node n3: log source started" in log
    assert "node n2" not in log.split("reload:", 1)[1]  # unchanged: not restarted

    other = FIXTURES / "logs" / "v1.80.log"
    config.write_text(f"nodes:\n  - name: n2\n    log: {LOG}\n    from_start: true\n"
                      f"  - name: n3\n    log: {other}\n    from_start: true\n")
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: f"reload: node n3: log source restarted ({other})" in proc.logged(),
             what="n3 restarted on its new log")
    assert _nodes(proc.samples()) == {"n2", "n3"}

    config.write_text(f"nodes:\n  - name: n2\n    log: {LOG}\nnodes: []\n")
    proc.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in proc.logged(), what="the reload error")
    errors = [line for line in proc.logged().splitlines() if "reload failed" in line]
    assert len(errors) == 1 and "duplicate key 'nodes'" in errors[0], errors
    assert _nodes(proc.samples()) == {"n2", "n3"} and proc.proc.poll() is None


def test_sighup_reloads_the_tls_certificate(tmp_path):
    ca = CA(tmp_path)
    cert, key = ca.issue("server", "IP:127.0.0.1")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    tls = ssl.create_default_context(cafile=str(ca.cert))
    proc = WebExporter(web, tls=tls)
    try:
        def served() -> str:
            return ssl.get_server_certificate(("127.0.0.1", proc.port), timeout=5)

        before = served()
        assert proc.request("/healthz")[0] == 200
        new_cert, new_key = ca.issue("server2", "IP:127.0.0.1")
        cert.write_bytes(new_cert.read_bytes())
        key.write_bytes(new_key.read_bytes())
        proc.proc.send_signal(signal.SIGHUP)
        try:
            wait_for(lambda: served() != before, timeout=10, what="the new certificate")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the exporter logged:\n{proc.logged()}") from None
        assert ssl.PEM_cert_to_DER_cert(served()) == ssl.PEM_cert_to_DER_cert(
            new_cert.read_text())
        assert proc.request("/healthz")[0] == 200  # verified against the CA
        # the new certificate is served a moment before the reload's log lines are written
        wait_for(lambda: f"reload: web config {web} re-read" in proc.logged(), timeout=10,
                 what="the reload's log line")
    finally:
        proc.stop()
