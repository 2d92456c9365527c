"""exporter/alertsink.py, the demo stack's alert receiver, as the real process.

It takes what Alertmanager posts, logs one escaped line per alert, lists the notifications at
/alerts, refuses what is not a notification; tests/test_stack.py has the real Alertmanager
post to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, free_port, terminate, wait_for

NOTIFICATION = {
    "version": "4", "status": "firing", "receiver": "demo-receiver",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "StoragenodeAuditFailed", "node": "n1\n level=error forged",
                   "severity": "critical"},
        "annotations": {"summary": "A failed audit\x1b[31m"},
    }],
}  # fmt: skip


@pytest.fixture
def sink():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "exporter.alertsink", "--listen",
                             f"127.0.0.1:{port}"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, proc.stderr.read()
        try:
            return urllib.request.urlopen(url + "/healthz", timeout=1).status == 200
        except OSError:
            return False

    wait_for(up, timeout=15, what="alertsink")
    yield proc, url, port
    terminate(proc)


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url + "/alerts", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_receives_lists_and_logs_escaped(sink):
    proc, url, port = sink
    assert _post(url, json.dumps(NOTIFICATION).encode()) == 200
    with urllib.request.urlopen(url + "/alerts", timeout=5) as response:
        received = json.load(response)
    assert len(received) == 1
    assert received[0]["alerts"] == NOTIFICATION["alerts"]
    assert _post(url, b"{not json") == 400
    assert _post(url, b'{"alerts": 3}') == 400
    check = subprocess.run([sys.executable, "-m", "exporter.alertsink", "--check", "--listen",
                            f"0.0.0.0:{port}"], cwd=ROOT, capture_output=True, timeout=20)
    assert check.returncode == 0
    terminate(proc)
    log = proc.stderr.read().splitlines()
    alert_lines = [line for line in log if "alert firing" in line]
    assert len(alert_lines) == 1, log
    assert "StoragenodeAuditFailed" in alert_lines[0] and "forged" in alert_lines[0]
    assert "\x1b" not in "\n".join(log)  # the terminal escape arrives escaped
    assert not any(line.startswith(" level=error") for line in log)  # no forged line
    assert sum("not an Alertmanager notification" in line for line in log) == 2


def test_check_fails_when_nothing_listens():
    check = subprocess.run([sys.executable, "-m", "exporter.alertsink", "--check", "--listen",
                            f"127.0.0.1:{free_port()}"], cwd=ROOT, capture_output=True,
                           timeout=20)
    assert check.returncode == 1
