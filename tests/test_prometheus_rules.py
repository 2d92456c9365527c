"""The Prometheus and Alertmanager configs in prometheus/ pass the real promtool and amtool.

Besides the tools' own checks this makes sure every alert is covered by a promtool unit test
(firing, and quiet) and that the rules only use metric names from docs/metrics.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
METRICS_DOC = ROOT / "docs" / "metrics.md"

# Series Prometheus itself creates for every target.
BUILTIN_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z0-9_]+$")


def run_tool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed")
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


def alertmanager_yml(tmp_path: Path) -> Path:
    """prometheus/alertmanager.yml as the installed amtool can read it: Debian 12's 0.25
    predates Discord's webhook_url_file (0.26), which the compose-pinned 0.27 reads, so 0.25
    gets a copy with a webhook_url instead."""
    if shutil.which("amtool") is None:
        pytest.skip("amtool is not installed")
    out = subprocess.run(["amtool", "--version"], capture_output=True, text=True, timeout=30)
    m = re.search(r"version (\d+)\.(\d+)", out.stdout + out.stderr)
    if m and (int(m[1]), int(m[2])) >= (0, 26):
        return PROM / "alertmanager.yml"
    copy = tmp_path / "alertmanager.yml"
    copy.write_text(re.sub(r"webhook_url_file: \S+", "webhook_url: https://discord.invalid/x",
                           (PROM / "alertmanager.yml").read_text()))
    return copy


def rules() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alert_rules() -> list[dict]:
    return [r for r in rules() if "alert" in r]


def test_files_exist():
    assert (PROM / "prometheus.yml").is_file()
    assert (PROM / "alertmanager.yml").is_file()
    assert len(RULE_FILES) >= 2
    assert TEST_FILES


def test_promtool_check_config():
    result = run_tool("promtool", "check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_check_rules():
    result = run_tool("promtool", "check", "rules", "--lint-fatal", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout))
    assert found == len(rules())


def test_promtool_unit_tests():
    result = run_tool("promtool", "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_amtool_check_config(tmp_path):
    result = run_tool("amtool", "check-config", str(alertmanager_yml(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "4 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=StoragenodeAuditFailed", "node=n1"], "critical,webhook"),
        (["severity=warning", "alertname=StoragenodeDiskAlmostFull", "node=n1"], "warning,webhook"),
        (["alertname=SomethingElse"], "webhook"),
    ],
)
def test_alertmanager_routes_by_severity(labels, receivers, tmp_path):
    result = run_tool(
        "amtool", "config", "routes", "test",
        f"--config.file={alertmanager_yml(tmp_path)}", *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_alertmanager_config_shape():
    """Grouping by node, inhibition by the down alerts, secrets only from files."""
    config = yaml.safe_load((PROM / "alertmanager.yml").read_text())
    assert config["route"]["group_by"] == ["node", "alertname"]
    sources = {
        m for rule in config["inhibit_rules"] for m in rule["source_matchers"]
    }
    assert 'alertname="StoragenodeDown"' in sources
    assert 'alertname="StoragenodeExporterDown"' in sources
    assert 'severity="critical"' in sources
    kinds = {key for r in config["receivers"] for key in r if key.endswith("_configs")}
    assert kinds == {"email_configs", "discord_configs", "slack_configs", "webhook_configs"}
    assert "smtp_auth_password_file" in config["global"]
    assert "smtp_auth_password" not in config["global"]
    assert "slack_api_url_file" in config["global"]
    assert "slack_api_url" not in config["global"]


def test_every_alert_has_severity_and_annotations():
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"].strip(), name
        assert len(rule["annotations"]["description"]) > 80, name
    names = {r["alert"] for r in alert_rules()}
    assert names >= {
        "StoragenodeDown", "StoragenodeLogSilent", "StoragenodeAuditFailed",
        "StoragenodeAuditScoreLow", "StoragenodeSuspensionScoreLow", "StoragenodeOnlineScoreLow",
        "StoragenodeDisqualified", "StoragenodeSuspended", "StoragenodeDiskAlmostFull",
        "StoragenodeDiskFullForecast", "StoragenodeOutdated", "StoragenodeQuicMisconfigured",
        "StoragenodeSatellitePingFailing", "StoragenodeSuccessRateLow",
        "StoragenodeTransfersSlow", "StoragenodeLogFormatDrift", "StoragenodeExporterDown",
    }


def test_every_alert_is_unit_tested_firing_and_quiet():
    """Each alert (and each of its severities) appears in exp_alerts, and in a quiet case."""
    fired: dict[str, set[str]] = {}
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if not expected:
                    quiet.add(check["alertname"])
                for alert in expected:
                    labels = alert["exp_labels"]
                    fired.setdefault(check["alertname"], set()).add(labels["severity"])
                    assert alert.get("exp_annotations", {}).keys() >= {"summary", "description"}
    for rule in alert_rules():
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert severity in fired.get(name, set()), f"{name} ({severity}) never fires in a test"
        if rule["expr"].strip() == "vector(1)":  # the dead man's switch fires always
            continue
        assert name in quiet, f"{name} has no test where it must stay quiet"


def documented_metrics() -> set[str]:
    """Metric names in docs/metrics.md; `a_{x,y}_b` is expanded, histograms get their series."""
    text = METRICS_DOC.read_text()
    names: set[str] = set()
    for token in re.findall(r"`(storagenode_[a-z0-9_{},]+)`", text):
        match = re.fullmatch(r"([a-z0-9_]*)\{([a-z0-9_,]+)\}([a-z0-9_]*)", token)
        if match:
            names |= {match[1] + part + match[3] for part in match[2].split(",")}
        else:
            names.add(token)
    for line in text.splitlines():
        histogram = re.match(r"\| `(storagenode_[a-z0-9_]+)` \| histogram \|", line)
        if histogram:
            names |= {histogram[1] + suffix for suffix in ("_bucket", "_count", "_sum")}
    return names


def documented_events() -> set[str]:
    text = METRICS_DOC.read_text().split("### `event` values", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for line in text.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])
    }


def expression_names(expr: str) -> set[str]:
    """Metric-like identifiers of a PromQL expression (rough: strings and label lists removed)."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {t for t in tokens if t.startswith("storagenode_") or ":" in t or t in BUILTIN_METRICS}


def test_rules_use_documented_metrics_only():
    documented = documented_metrics()
    assert {"storagenode_transfers_total", "storagenode_disk_free_bytes",
            "storagenode_satellite_audit_score",
            "storagenode_transfer_duration_seconds_bucket"} <= documented
    recorded = {r["record"] for r in rules() if "record" in r}
    used: set[str] = set()
    for rule in rules():
        used |= expression_names(rule["expr"])
    unknown = used - documented - recorded - BUILTIN_METRICS
    assert not unknown, f"not in docs/metrics.md: {sorted(unknown)}"
    assert "storagenode_transfers_total" in used


def test_rules_use_documented_events_only():
    events = documented_events()
    assert {"ping_satellite_failed", "quic_misconfigured"} <= events
    used = set()
    for rule in rules():
        used |= set(re.findall(r'event="([^"]+)"', rule["expr"]))
    assert used, "no event matcher found"
    assert used <= events, sorted(used - events)


def test_recording_rule_names_follow_conventions():
    documented = documented_metrics()
    for rule in rules():
        if "record" not in rule:
            continue
        name = rule["record"]
        assert RECORD_NAME.match(name), name
        metric = name.split(":")[1]
        assert any(d.startswith(metric) for d in documented), name
        # aggregations must keep job/instance for the Alertmanager inhibition on `instance`
        assert not re.search(r"\bsum\s+by\b", rule["expr"]), name
