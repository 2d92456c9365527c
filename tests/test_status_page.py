"""The status page at `/` and `/api/status`: rendered by a real headless Chromium against the
real demo, escaped, behind basic auth, and with the alert thresholds of the rule files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import bcrypt
import pytest
import yaml

from exporter import status as st
from exporter.statuspage import render
from tests.conftest import FIXTURES, ROOT, wait_for
from tests.webtools import WebExporter, basic

RULES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
SCREENSHOT_DIR = Path("/tmp/storagenode-exporter-tests")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _alert_exprs() -> dict[tuple[str, str], str]:
    out = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[(rule["alert"], rule["labels"]["severity"])] = rule["expr"]
    return out


def _number(expr: str, pattern: str) -> float:
    m = re.search(pattern + r"\s*([0-9]*\.?[0-9]+)", expr)
    assert m, f"{pattern!r} not in {expr}"
    return float(m.group(1))


def test_thresholds_equal_the_alert_rules():
    exprs = _alert_exprs()
    for (alert, severity), value in st.ALERT_THRESHOLDS.items():
        op = r"(?<![<>=!])>(?!=)" if alert == "StoragenodeLogFormatDrift" else "<"
        assert _number(exprs[(alert, severity)], op) == value, (alert, severity)
    success = exprs[("StoragenodeSuccessRateLow", "warning")]
    assert _number(success, ">=") == st.SUCCESS_MIN_TRANSFERS
    drift = exprs[("StoragenodeLogFormatDrift", "warning")]
    assert _number(drift.split("and", 1)[1], ">") == st.DRIFT_MIN_UNPARSED
    assert "[30m]" in exprs[("StoragenodeLogSilent", "warning")] and st.SILENT_SECONDS == 1800
    assert "[10m]" in exprs[("StoragenodeAuditFailed", "critical")]
    assert st.AUDIT_FAILED_WINDOW == 600
    # every score/disk alert of the rules has its number here
    for (alert, severity) in exprs:
        if alert.endswith(("ScoreLow", "DiskAlmostFull")):
            assert (alert, severity) in st.ALERT_THRESHOLDS


def _node(**over) -> dict:
    node = {
        "name": "n1",
        "log": {"kind": "file", "source": "/x.log", "up": True, "newest_line_age_seconds": 1.0,
                "recent": {"window_seconds": 300, "lines": 10, "unparsed": 0},
                "hour": {"window_seconds": 3600, "lines": 500, "unparsed": 0, "actions": {
                    "GET": {"success": 70, "failed": 10, "canceled": 20, "total": 100,
                            "ratio": 0.7}}},
                "audits_failed_10m": 1, "total": {"lines": 500, "unparsed": 0}},
        "api": {"url": "http://n", "up": True, "version": "1.146.1", "up_to_date": True,
                "quic_ok": True, "last_success": 1.0, "errors": 0, "errors_by_reason": {}},
        "scores": [{"satellite": "us1", "score": "audit", "value": 0.965,
                    "disqualified": False}],
        "satellites": [], "disk": {"used_ratio": 0.97, "free_ratio": 0.03, "used_bytes": 1,
                                   "allocated_bytes": 2, "trash_bytes": 0},
        "lowest_score": {"satellite": "us1", "score": "audit", "value": 0.965},
    }
    node.update(over)
    node["alerts"] = st.alerts_of(node)
    return node


def test_alert_conditions_are_named_and_highlighted():
    node = _node()
    fired = {(a["alert"], a["severity"]) for a in node["alerts"]}
    assert fired == {("StoragenodeAuditScoreLow", "critical"),
                     ("StoragenodeDiskAlmostFull", "critical"),
                     ("StoragenodeAuditFailed", "critical"),
                     ("StoragenodeSuccessRateLow", "warning")}
    page = render({**st.empty_document(), "nodes": [node]}).decode()
    assert '<tr class="critical"><th>lowest score</th>' in page
    assert '<tr class="critical"><th>disk used</th>' in page
    assert "<tr class=warning><td>GET</td>" in page
    silent = _node()
    silent["log"]["silent"] = True
    assert ("StoragenodeLogSilent", "warning") in {
        (a["alert"], a["severity"]) for a in st.alerts_of(silent)}
    quiet = _node(scores=[], disk=None, lowest_score=None)
    quiet["log"]["audits_failed_10m"] = 0
    quiet["log"]["hour"]["actions"]["GET"].update(total=99)  # below the traffic guard
    assert st.alerts_of(quiet) == []


def test_everything_from_config_and_wire_is_escaped():
    evil = '<img src=x onerror="alert(1)">'
    node = _node(name=evil)
    node["log"]["source"] = evil
    node["api"]["version"] = evil
    node["lowest_score"]["satellite"] = evil
    node["log"]["hour"]["actions"] = {evil: {"success": 1, "failed": 0, "canceled": 0,
                                             "total": 1, "ratio": 1.0}}
    page = render({**st.empty_document(), "nodes": [node]}).decode()
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_ring_keeps_an_hour_and_samples_at_most_every_gap():
    ring = st.Ring()
    for t in range(0, 7200, 1):
        ring.add(st.Sample(float(t), t, 0, {}))
    assert len(ring.samples) <= (st.HOUR + 2 * st.SAMPLE_EVERY) / st.SAMPLE_GAP + 1
    base = ring.since(7199.0, st.HOUR)
    assert 7199 - base.at <= st.HOUR


def test_log_silent_needs_half_an_hour_without_lines():
    class State:
        import threading
        lock = threading.Lock()
        lines, unparsed, transfers, last_timestamp = {"info": 5}, 0, {}, ""

    class Runner:
        name, state = "n1", State()
        source = type("S", (), {"stats": type("T", (), {"up": True})()})()

    ring = st.Ring()
    for t in range(0, 2000, 30):
        ring.add(st.read_counters(State, float(t)))
    sample = st.read_counters(State, 2000.0)
    bases = {w: ring.since(2000.0, w) for w in (st.RECENT, st.HOUR, st.AUDIT_FAILED_WINDOW,
                                                st.SILENT_SECONDS)}
    assert st._log_part("/x", Runner, sample, bases, 2000.0)["silent"] is True
    young = {w: ring.since(100.0, w) for w in bases}
    assert st._log_part("/x", Runner, st.read_counters(State, 100.0), young, 100.0)[
        "silent"] is False


def _chromium(url: str, *extra: str, tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *extra, url],
        capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make deps-debian)")
def test_demo_status_page_in_chromium(tmp_path, exporter_process):
    proc = exporter_process("demo", "--rate", "50")

    def live():
        doc = json.loads(proc.get("/api/status"))
        node = doc["nodes"][0]
        return (node["log"]["recent"]["lines"] > 0 and node["api"]["version"]
                and node["log"]["hour"]["actions"] and node)

    node = wait_for(live, timeout=20, what="live values in /api/status")
    assert node["name"] == "demo" and node["log"]["up"] and node["api"]["up"]
    dom = _chromium(proc.url + "/", "--dump-dom", tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "demo" in text and "reading" in text and node["api"]["version"] in text
    parsed = re.search(r"lines, last \d+ s\s+(\d+) parsed", text)
    assert parsed and int(parsed.group(1)) > 0, text[:3000]
    assert re.search(r"GET\s+\d+\s+\d+\s+\d+\s+\d+\.\d%", text)
    assert re.search(r"disk used\s+\d+\.\d% of", text) and "lowest score" in text
    assert 'href="metrics"' in dom.stdout and 'href="healthz"' in dom.stdout
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    shot = SCREENSHOT_DIR / "status.png"
    shot.unlink(missing_ok=True)
    result = _chromium(proc.url + "/", f"--screenshot={shot}", "--window-size=1280,1000",
                       tmp=tmp_path)
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
    print(f"screenshot for review: {shot}")


def test_status_page_and_api_need_basic_auth(tmp_path):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  alice: {hashed}\n")
    proc = WebExporter(web)
    try:
        for path in ("/", "/api/status"):
            assert proc.request(path)[0] == 401
            code, _, body = proc.request(path, auth=basic("alice", "pw"))
            assert code == 200
            assert b"n1" in body and str(FIXTURES / "logs" / "v1.80.log").encode() in body
        assert proc.request("/healthz")[:3:2] == (200, b"ok\n")
    finally:
        proc.stop()
