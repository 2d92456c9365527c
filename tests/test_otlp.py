"""OTLP/HTTP logs (issue 13 §4): the real exporter process fed by the OpenTelemetry Python
SDK's OTLPLogExporter in a subprocess (tests/otlp_sender.py, records shaped like the modular
storagenode's), exact counts on /metrics, auth, limits and bad bodies."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.error
import urllib.request

import bcrypt
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from tests.conftest import ROOT, free_port, total, wait_for
from tests.webtools import basic

SENDER = ROOT / "tests" / "otlp_sender.py"
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"


def send(url: str, **scenario) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SENDER), url, json.dumps(scenario)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def post(url: str, body: bytes, content_type: str = "application/x-protobuf",
         headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def otlp_args(port: int, *nodes: str) -> list[str]:
    return [arg for n in nodes for arg in ("--node", f"{n}:otlp")] + [
        "--otlp.listen-address", f"127.0.0.1:{port}"]


def request_for(node: str | None, uploads: int) -> ExportLogsServiceRequest:
    """A hand-built request: `uploads` uploaded records of the modular node's shape."""
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    if node:
        kv = rl.resource.attributes.add()
        kv.key, kv.value.string_value = "service.instance.id", node
    scope = rl.scope_logs.add()
    scope.scope.name = "piecestore:endpoint"
    for i in range(uploads):
        rec = scope.log_records.add()
        rec.time_unix_nano = 1_787_000_000_000_000_000 + i
        rec.severity_number, rec.severity_text = 9, "info"
        rec.body.string_value = "uploaded"
        for key, value in (("piece_id", f"PIECE{i}"), ("satellite_id", US1),
                           ("action", "PUT"), ("remote_address", "10.0.0.1:1")):
            kv = rec.attributes.add()
            kv.key, kv.value.string_value = key, value
        kv = rec.attributes.add()
        kv.key, kv.value.int_value = "size", 1000
    return request


def test_sdk_records_of_the_modular_node_are_counted_exactly(exporter_process):
    port = free_port()
    exp = exporter_process(*otlp_args(port, "n1", "n2"))
    base = f"http://127.0.0.1:{port}/v1/logs"
    transfers = {"uploaded": 40, "downloaded": 25, "download failed": 3,
                 "upload canceled": 2, "upload started": 5, "download started": 4}
    by_attribute = send(base, instance="n1", gzip=True, transfers=transfers, other=3)
    assert by_attribute.returncode == 0, by_attribute.stderr
    by_path = send(base + "/n2", instance=None, gzip=False,
                   transfers={"uploaded": 7, "downloaded": 1})
    assert by_path.returncode == 0, by_path.stderr
    unknown = send(base, instance="elsewhere", transfers={"uploaded": 4})
    assert unknown.returncode == 0, unknown.stderr  # partial success: not retried
    s = exp.samples()
    t = "storagenode_transfers_total"
    assert total(s, t, node="n1", action="PUT", result="success", satellite="us1") == 40
    assert total(s, t, node="n1", action="GET", result="success", satellite="us1") == 25
    assert total(s, t, node="n1", action="GET", result="failed") == 3
    assert total(s, t, node="n1", action="PUT", result="canceled") == 2
    assert total(s, "storagenode_transfer_errors_total", node="n1",
                 reason="file_not_found") == 3
    assert total(s, "storagenode_ingress_bytes_total", node="n1", result="success") == (
        40 * 2_319_872)
    assert total(s, "storagenode_events_total", node="n1", event="ping_satellite_failed") == 3
    assert total(s, "storagenode_log_lines_total", node="n1", level="debug") == 9
    assert total(s, "storagenode_log_lines_total", node="n1", level="error") == 3
    assert total(s, "storagenode_log_lines_total", node="n1", level="warn") == 3
    assert total(s, "storagenode_log_unparsed_lines_total", node="n1") == 0
    assert total(s, t, node="n2", action="PUT", result="success") == 7
    assert total(s, t, node="n2", action="GET", result="success") == 1
    assert total(s, "storagenode_otlp_log_records_total", node="n1") == 82
    assert total(s, "storagenode_otlp_log_records_total", node="n2") == 8
    assert total(s, "storagenode_otlp_rejected_log_records_total", reason="unknown_node") == 4
    assert total(s, "storagenode_otlp_requests_total", result="partial") == 1
    assert "elsewhere" not in exp.get()  # a name from the wire is never a label


def test_json_limits_and_bad_bodies(exporter_process):
    port = free_port()
    exp = exporter_process(*otlp_args(port, "n1"))
    url = f"http://127.0.0.1:{port}/v1/logs"
    body = json_format.MessageToJson(request_for("n1", 3)).encode()
    status, headers, answer = post(url, body, "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(answer) == {}  # a full success: no partial_success
    status, _, answer = post(url, request_for(None, 2).SerializeToString())
    assert status == 200
    response = ExportLogsServiceResponse.FromString(answer)
    assert response.partial_success.rejected_log_records == 2
    # 4 MiB + 1 byte as sent: refused from Content-Length
    assert post(url, b"\0" * ((4 << 20) + 1))[0] == 413
    # a gzip bomb: 64 KiB that inflate to 64 MiB, stopped at 4 MiB
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    assert len(bomb) < 128 << 10
    assert post(url, bomb, headers={"Content-Encoding": "gzip"})[0] == 413
    assert post(url, b"\xff\xff\xff\xff garbage")[0] == 400  # not protobuf
    assert post(url, b"{not json", "application/json")[0] == 400
    assert post(url, b"x", "text/plain")[0] == 415
    assert post(url, b"x", headers={"Content-Encoding": "br"})[0] == 415
    assert post(f"http://127.0.0.1:{port}/v1/traces", b"")[0] == 404
    # still serving, still counting
    gz = gzip.compress(request_for("n1", 5).SerializeToString())
    assert post(url, gz, headers={"Content-Encoding": "gzip"})[0] == 200
    s = exp.samples()
    assert total(s, "storagenode_transfers_total", node="n1", result="success") == 8
    assert total(s, "storagenode_otlp_requests_total", result="too_large") == 2
    assert total(s, "storagenode_otlp_requests_total", result="malformed") == 2
    assert total(s, "storagenode_otlp_requests_total", result="unsupported") == 2
    assert total(s, "storagenode_otlp_requests_total", result="ok") == 2
    assert total(s, "storagenode_otlp_rejected_log_records_total", reason="no_node") == 2
    assert exp.proc.poll() is None


def test_beyond_loopback_only_with_auth(tmp_path, exporter_process):
    port = free_port()
    refused = subprocess.run(
        [sys.executable, "-m", "exporter", "--node", "n1:otlp",
         "--otlp.listen-address", f"0.0.0.0:{port}",
         "--web.listen-address", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert refused.returncode == 2
    assert "is not a loopback address" in refused.stderr
    web = tmp_path / "otlp-web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    web.write_text(f"basic_auth_users:\n  node1: '{hashed}'\n")
    exp = exporter_process("--node", "n1:otlp", "--otlp.listen-address", f"0.0.0.0:{port}",
                           "--otlp.web.config.file", str(web))
    url = f"http://127.0.0.1:{port}/v1/logs"
    without = send(url, instance="n1", transfers={"uploaded": 3})
    assert without.returncode == 1 and "export failed" in without.stdout
    wrong = send(url, instance="n1", auth=basic("node1", "nope"), transfers={"uploaded": 3})
    assert wrong.returncode == 1
    right = send(url, instance="n1", auth=basic("node1", "s3cret"), transfers={"uploaded": 3})
    assert right.returncode == 0, right.stderr
    s = exp.samples()
    assert total(s, "storagenode_transfers_total", node="n1", result="success") == 3
    assert total(s, "storagenode_otlp_requests_total", result="unauthorized") == 2


def test_counts_survive_a_restart_with_the_state_file(tmp_path, exporter_process):
    port = free_port()
    state = tmp_path / "state.json"
    args = [*otlp_args(port, "n1"), "--state-file", str(state)]
    url = f"http://127.0.0.1:{port}/v1/logs"
    first = exporter_process(*args)
    assert post(url, request_for("n1", 5).SerializeToString())[0] == 200
    first.stop()
    second = exporter_process(*args)
    assert post(url, request_for("n1", 3).SerializeToString())[0] == 200
    wait_for(lambda: total(second.samples(), "storagenode_transfers_total",
                           node="n1", result="success") == 8, timeout=5, what="8 uploads")
