"""Two sites that watch each other (deploy/two-sites/, docs/many-sites.md), for real on loopback.

Per site: the real exporter reading a node log, Debian's `prometheus` with the site's example
config and `prometheus-alertmanager` with the cluster's example config; one webhook (the
test's) behind every receiver. What is changed from the example files, and only that:
addresses (the example host names -> 127.0.0.1 ports), 1 s scrape and evaluation,
--rules.alert.resend-delay=1s, the `for:` of the site rules in seconds instead of minutes,
group_wait/group_interval 1 s, repeat_interval 1 h (a ping every 4 s for the heartbeats), and
short gossip intervals and peer timeout for the Alertmanager cluster.

Checked: with both sites up, the same alerts from both Prometheus reach both Alertmanagers and
each goes out once (each heartbeat once per repeat); after site b dies (exporter, Prometheus
and Alertmanager SIGKILLed) site a says so once, and site b's heartbeat stops while site a's
goes on. The same setup without --cluster.peer sends everything twice, and the
cluster-degraded alert says so: that test shows the first one would catch a broken cluster.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import test_alerting_e2e
from tests.conftest import ROOT, free_port, wait_for
from tests.test_alerting_e2e import (
    NORMAL_TRAFFIC,
    Webhook,
    alive,
    failed_audit_line,
    http_ok,
    prom_api,
    prom_query,
    start,
)
from tests.test_mixin_lint import alert_problems

started = test_alerting_e2e.started  # the fixture: processes stopped by their pid at the end

SITES_DIR = ROOT / "deploy" / "two-sites"
SITE_RULES = SITES_DIR / "rules" / "storagenode-sites.yml"
TIME_BOUND = 75.0
# As shipped (peer-timeout 15 s < repeat_interval 1m < group_interval 5m), scaled down: the
# first Alertmanager pings at every group_interval tick, the second checks peer-timeout later
# and finds a ping younger than repeat_interval. A repeat_interval below the peer-timeout, or
# above group_interval, lets both send now and then.
HEARTBEAT_PERIOD = 4.0
GOSSIP = ["--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s",
          "--cluster.peer-timeout=1s", "--cluster.probe-interval=200ms",
          "--cluster.probe-timeout=100ms", "--cluster.settle-timeout=10s"]


def tool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed")
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


def for_alertmanager_025(path: Path, tmp_path: Path) -> Path:
    """Debian 12's Alertmanager 0.25 has no Discord webhook_url_file (0.26 has)."""
    copy = tmp_path / path.name
    copy.write_text(re.sub(r"webhook_url_file: \S+", "webhook_url: https://discord.invalid/x",
                           path.read_text()))
    return copy


def alert_rules(path: Path) -> list[dict]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


# -- the example files, statically ---------------------------------------------------------------

@pytest.mark.parametrize("site", ["a", "b"])
def test_site_config_passes_promtool(site):
    result = tool("promtool", "check", "config", str(SITES_DIR / f"prometheus-site-{site}.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rule files found" in result.stdout  # prometheus/rules/ and the site's


def test_site_configs_differ_in_the_site_only():
    """Same targets, same labels: an alert is the same alert from either Prometheus."""
    a, b = ((SITES_DIR / f"prometheus-site-{s}.yml").read_text() for s in "ab")
    config_a, config_b = yaml.safe_load(a), yaml.safe_load(b)
    assert config_a["global"].pop("external_labels") == {"site": "a"}
    assert config_b["global"].pop("external_labels") == {"site": "b"}
    assert config_a == config_b
    for job in config_a["scrape_configs"]:
        assert {c["labels"]["site"] for c in job["static_configs"]} == {"a", "b"}, job
    (managers,) = config_a["alerting"]["alertmanagers"]
    assert len(managers["static_configs"][0]["targets"]) == 2  # every Alertmanager


def test_site_rules_pass_promtool_and_the_mixin_lint():
    result = tool("promtool", "check", "rules", "--lint-fatal", str(SITE_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    result = tool("promtool", "test", "rules", *map(str, (SITES_DIR / "tests").glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    for rule in alert_rules(SITE_RULES):
        assert alert_problems(rule) == []


def test_cluster_config_keeps_the_projects_routing(tmp_path):
    result = tool("amtool", "check-config",
                  str(for_alertmanager_025(SITES_DIR / "alertmanager.yml", tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    ours = yaml.safe_load((SITES_DIR / "alertmanager.yml").read_text())
    project = yaml.safe_load((ROOT / "prometheus" / "alertmanager.yml").read_text())
    assert ours["global"] == project["global"]
    assert all(rule in ours["inhibit_rules"] for rule in project["inhibit_rules"])
    heartbeat = {r["name"] for r in ours["receivers"] if r["name"].startswith("heartbeat")}
    assert heartbeat == {"heartbeat-a", "heartbeat-b"}
    assert [r for r in ours["receivers"] if r["name"] not in heartbeat] == [
        r for r in project["receivers"] if r["name"] != "heartbeat"]
    assert [r for r in ours["route"]["routes"] if 'alertname="Watchdog"' not in
            r.get("matchers", [])] == [r for r in project["route"]["routes"]
                                       if r.get("receiver") != "heartbeat"]


def seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()
    return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]


@pytest.mark.parametrize("path", [ROOT / "prometheus" / "alertmanager.yml",
                                  SITES_DIR / "alertmanager.yml"], ids=lambda p: p.parent.name)
def test_heartbeat_repeats_once_per_group_interval(path):
    """peer-timeout (15 s by default) < repeat_interval < group_interval: one Alertmanager
    of a cluster pings at every group tick and the other finds that ping fresh."""
    route = yaml.safe_load(path.read_text())["route"]
    beats = [r for r in route["routes"] if r["receiver"].startswith("heartbeat")]
    assert beats
    for beat in beats:
        assert 'alertname="Watchdog"' in beat["matchers"] and not beat.get("continue")
        repeat = seconds(beat["repeat_interval"])
        assert 15 < repeat < seconds(beat.get("group_interval", route["group_interval"]))


@pytest.mark.parametrize(("labels", "receivers"), [
    (["alertname=Watchdog", "site=a", "severity=warning"], "heartbeat-a"),
    (["alertname=Watchdog", "site=b", "severity=warning"], "heartbeat-b"),
    (["alertname=StoragenodeSiteDown", "site=b", "severity=critical"], "critical,webhook"),
])
def test_cluster_routes(labels, receivers, tmp_path):
    config = for_alertmanager_025(SITES_DIR / "alertmanager.yml", tmp_path)
    result = tool("amtool", "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


# -- the two sites for real ----------------------------------------------------------------------

@dataclass
class Site:
    name: str
    log: Path
    exporter: object = None
    prom_port: int = 0
    am_port: int = 0
    cluster_port: int = 0
    prom: subprocess.Popen | None = None
    am: subprocess.Popen | None = None


def addresses(sites: dict[str, Site]) -> dict[str, str]:
    """The example host names -> where this test runs each process."""
    out = {}
    for s in sites.values():
        out[f"storj-{s.name}.example.net:9184"] = f"127.0.0.1:{s.exporter.port}"
        out[f"mon-{s.name}.example.net:9090"] = f"127.0.0.1:{s.prom_port}"
        out[f"mon-{s.name}.example.net:9093"] = f"127.0.0.1:{s.am_port}"
    return out


def substituted(path: Path, sites: dict[str, Site]) -> str:
    text = path.read_text()
    for example, real in addresses(sites).items():
        text = text.replace(example, real)
    assert "example.net" not in text.split("remote_write", 1)[0], "an address left unmapped"
    return text


def site_rules_in_seconds(tmp_path: Path) -> Path:
    """deploy/two-sites' rules with `for: 3m` as 3 s (and so on)."""
    out = tmp_path / "storagenode-sites.yml"
    out.write_text(re.sub(r"(\n\s+for: )(\d+)m\n", r"\1\2s\n", SITE_RULES.read_text()))
    return out


def prometheus_config(site: Site, sites: dict[str, Site], tmp_path: Path) -> Path:
    config = yaml.safe_load(substituted(SITES_DIR / f"prometheus-site-{site.name}.yml", sites))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    assert config["rule_files"] == ["../../prometheus/rules/*.yml", "rules/*.yml"]
    config["rule_files"] = [str(ROOT / "prometheus" / "rules" / "*.yml"),
                            str(site_rules_in_seconds(tmp_path))]
    out = tmp_path / f"prometheus-{site.name}.yml"
    out.write_text(yaml.safe_dump(config))
    return out


def alertmanager_config(webhook_port: int, tmp_path: Path) -> Path:
    config = yaml.safe_load((SITES_DIR / "alertmanager.yml").read_text())
    config["global"] = {"resolve_timeout": "5m"}
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for route in config["route"]["routes"]:
        if route.get("receiver", "").startswith("heartbeat"):
            route.update(group_interval=f"{HEARTBEAT_PERIOD:.0f}s",
                         repeat_interval=f"{HEARTBEAT_PERIOD - 1:.0f}s")
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [
            {"url": f"http://127.0.0.1:{webhook_port}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]]
    out = tmp_path / "alertmanager.yml"
    out.write_text(yaml.safe_dump(config))
    return out


def targets(site: Site) -> bool:
    """False, after printing the state of the Prometheus' targets (shown if a wait times out)."""
    active = prom_api(site.prom_port, "targets")["activeTargets"]
    print(f"prometheus {site.name}:", [(t["labels"]["job"], t["labels"]["site"], t["health"],
                                        t["lastError"][:80]) for t in active])
    return False


def am_status(site: Site) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{site.am_port}/api/v2/status",
                                timeout=2) as answer:
        return json.loads(answer.read())["cluster"]


def counts(hook: Webhook) -> dict[tuple, list[float]]:
    """(receiver, labels) -> arrival times of the notifications of that alert."""
    out: dict[tuple, list[float]] = {}
    with hook.lock:
        for arrived, receiver, alert in hook.alerts:
            out.setdefault((receiver, tuple(sorted(alert["labels"].items()))), []).append(arrived)
    return out


def named(hook: Webhook, receiver: str, alertname: str, **labels: str) -> list[float]:
    return [t for (r, key), times in counts(hook).items() for t in times
            if r == receiver and dict(key)["alertname"] == alertname
            and all(dict(key).get(k) == v for k, v in labels.items())]


class TwoSites:
    """Both sites started, clustered or not, up to the first notifications."""

    def __init__(self, tmp_path: Path, procs: list, exporter_process, clustered: bool):
        self.began = time.monotonic()
        self.hook = Webhook()
        self.tmp = tmp_path
        self.sites = {n: Site(n, tmp_path / f"{n}1.log") for n in "ab"}
        for s in self.sites.values():
            s.log.write_text("".join(NORMAL_TRAFFIC))
            s.exporter = exporter_process("--node", f"{s.name}1:{s.log}", "--from-start")
            s.prom_port, s.am_port, s.cluster_port = free_port(), free_port(), free_port()
        am_config = alertmanager_config(self.hook.port, tmp_path)
        for s in self.sites.values():
            other = self.sites["b" if s.name == "a" else "a"]
            cluster = ([f"--cluster.listen-address=127.0.0.1:{s.cluster_port}",
                        f"--cluster.peer=127.0.0.1:{other.cluster_port}", *GOSSIP]
                       if clustered else ["--cluster.listen-address="])
            s.am = start(procs, ["prometheus-alertmanager", f"--config.file={am_config}",
                                 f"--storage.path={tmp_path / f'am-{s.name}'}",
                                 f"--web.listen-address=127.0.0.1:{s.am_port}", *cluster],
                         self.log("am", s))
        for s in self.sites.values():
            wait_for(lambda s=s: alive(s.am, self.log("am", s))
                     or http_ok(f"http://127.0.0.1:{s.am_port}/-/ready"),
                     timeout=self.within(15), what=f"alertmanager {s.name} ready")
        if clustered:  # settled with both peers before any alert: no first-round race
            for s in self.sites.values():
                wait_for(lambda s=s: (lambda c: c["status"] == "ready" and len(c["peers"]) == 2)(
                    am_status(s)), timeout=self.within(15), what=f"cluster seen by {s.name}")
        for s in self.sites.values():
            config = prometheus_config(s, self.sites, tmp_path / s.name)
            s.prom = start(procs, ["prometheus", f"--config.file={config}",
                                   f"--storage.tsdb.path={tmp_path / s.name / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{s.prom_port}",
                                   "--rules.alert.resend-delay=1s"], self.log("prom", s))
        for s in self.sites.values():
            wait_for(lambda s=s: alive(s.prom, self.log("prom", s))
                     or http_ok(f"http://127.0.0.1:{s.prom_port}/-/ready"),
                     timeout=self.within(20), what=f"prometheus {s.name} ready")
        self.fail_an_audit_on_each_node()

    def log(self, kind: str, site: Site) -> Path:
        (self.tmp / site.name).mkdir(exist_ok=True)
        return self.tmp / site.name / f"{kind}.log"

    def within(self, seconds: float) -> float:
        """A wait's timeout, cut so the whole test stays inside TIME_BOUND."""
        return max(0.5, min(seconds, self.began + TIME_BOUND - 5 - time.monotonic()))

    def fail_an_audit_on_each_node(self) -> None:
        """Once both Prometheus hold the zero of both nodes' failed-audit series (increase()
        needs it), each node fails an audit: both Prometheus fire the same two alerts."""
        failed = ('count_over_time(storagenode_transfers_total{satellite="us1",'
                  ' action="GET_AUDIT", result="failed"}[1m]) >= 2')

        def nodes(s: Site) -> set[str]:
            return {r["metric"]["node"] for r in prom_query(s.prom_port, failed)}

        for s in self.sites.values():
            wait_for(lambda s=s: nodes(s) == {"a1", "b1"} or targets(s),
                     timeout=self.within(20), interval=0.5,
                     what=f"both nodes' series at prometheus {s.name}")
        for s in self.sites.values():
            with s.log.open("a") as log:
                log.write(failed_audit_line())

    def wait_for_first_notifications(self) -> None:
        hook = self.hook
        for receiver, alert, labels in [
            ("heartbeat-a", "Watchdog", {"site": "a"}),
            ("heartbeat-b", "Watchdog", {"site": "b"}),
            ("critical", "StoragenodeAuditFailed", {"node": "a1", "site": "a"}),
            ("critical", "StoragenodeAuditFailed", {"node": "b1", "site": "b"}),
            ("webhook", "StoragenodeAuditFailed", {"node": "a1"}),
            ("webhook", "StoragenodeAuditFailed", {"node": "b1"}),
        ]:
            wait_for(lambda r=receiver, a=alert, k=labels: named(hook, r, a, **k),
                     timeout=self.within(30),
                     what=f"{alert} {labels} at {receiver}")
        # the dedup was needed: each Prometheus fires both nodes' alerts ...
        for s in self.sites.values():
            firing = {a["labels"].get("node") for a in prom_api(s.prom_port, "alerts")["alerts"]
                      if a["labels"]["alertname"] == "StoragenodeAuditFailed"}
            assert firing == {"a1", "b1"}, (s.name, firing)

    def observe(self, seconds: float) -> None:
        time.sleep(min(seconds, max(0.0, self.began + TIME_BOUND - 5 - time.monotonic())))

    def elapsed(self) -> float:
        return time.monotonic() - self.began


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 2) for a, b in itertools.pairwise(sorted(times))]


def skip_without_binaries() -> None:
    for binary in ("prometheus", "prometheus-alertmanager"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (make deps-debian)")


def test_two_sites_one_notification_each_and_a_dead_site_is_noticed(
        tmp_path, started, exporter_process):
    skip_without_binaries()
    two = TwoSites(tmp_path, started, exporter_process, clustered=True)
    hook = two.hook
    try:
        two.wait_for_first_notifications()
        first = two.elapsed()
        two.observe(2 * HEARTBEAT_PERIOD + 2)
        sent = counts(hook)
        for (receiver, labels), times in sent.items():
            if receiver.startswith("heartbeat"):
                # once per repeat: never two in a row (both Alertmanagers sending)
                assert min(gaps(times), default=HEARTBEAT_PERIOD) >= HEARTBEAT_PERIOD - 1, (
                    receiver, gaps(times))
            else:
                assert len(times) == 1, (receiver, dict(labels), gaps(times))
        assert not named(hook, "warning", "StoragenodeAlertmanagerClusterDegraded")
        both_up = two.elapsed()

        # site b dies: its exporter, its Prometheus and its Alertmanager
        b = two.sites["b"]
        for proc in (b.exporter.proc, b.prom, b.am):
            proc.kill()
        killed = time.monotonic()
        wait_for(lambda: named(hook, "critical", "StoragenodeSiteDown", site="b"),
                 timeout=two.within(30), what="StoragenodeSiteDown{site=b} from site a")
        site_down = time.monotonic() - killed
        # b's Watchdog expires 4 resend delays (4 s) after b's last evaluation; wait past that
        # and a heartbeat period, then nothing more comes for b, and a's heartbeat goes on
        two.observe(max(0.0, killed + 4 + 1 + 2 + 2 * HEARTBEAT_PERIOD - time.monotonic()))
        late_b = [t for t in named(hook, "heartbeat-b", "Watchdog") if t > killed + 4 + 1 + 2]
        assert not late_b, f"site b's heartbeat went on {max(late_b) - killed:.1f} s after"
        assert [t for t in named(hook, "heartbeat-a", "Watchdog") if t > killed + 7]
    finally:
        hook.server.shutdown()
    assert len(named(hook, "critical", "StoragenodeSiteDown")) == 1
    assert len(named(hook, "webhook", "StoragenodeSiteDown")) == 1
    for inhibited in ("StoragenodeSitePrometheusDown", "StoragenodeAlertmanagerClusterDegraded"):
        fired = [a for a in prom_api(two.sites["a"].prom_port, "alerts")["alerts"]
                 if a["labels"]["alertname"] == inhibited and a["state"] == "firing"]
        assert fired, f"{inhibited} did not fire at site a"
        assert not [t for r in ("warning", "webhook") for t in named(hook, r, inhibited)]
    print(f"\nfirst notifications {first:.1f} s after the start, both sites up until "
          f"{both_up:.1f} s; site b killed -> StoragenodeSiteDown at the webhook in "
          f"{site_down:.1f} s; whole test {two.elapsed():.1f} s")
    assert two.elapsed() < TIME_BOUND


def test_without_cluster_peers_every_alert_goes_out_twice(tmp_path, started,
                                                          exporter_process):
    """What the first test would see with a broken cluster, and the alert that says so."""
    skip_without_binaries()
    two = TwoSites(tmp_path, started, exporter_process, clustered=False)
    hook = two.hook
    try:
        two.wait_for_first_notifications()
        wait_for(lambda: len(named(hook, "warning", "StoragenodeAlertmanagerClusterDegraded"))
                 >= 4, timeout=two.within(20), what="the cluster-degraded alert, twice each")
        two.observe(1.5)
    finally:
        hook.server.shutdown()
    for node in ("a1", "b1"):
        assert len(named(hook, "critical", "StoragenodeAuditFailed", node=node)) == 2
    for site in "ab":
        assert min(gaps(named(hook, f"heartbeat-{site}", "Watchdog"))) < 1.0
    degraded = named(hook, "warning", "StoragenodeAlertmanagerClusterDegraded")
    assert len(degraded) == 4  # each Alertmanager alone (2 alerts), each sent by both
    print(f"\nwithout --cluster.peer: {two.elapsed():.1f} s")
