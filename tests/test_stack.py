"""docker-compose.yml's demo started for real with Debian's docker-compose, and an alert seen
to go from the exporter through Prometheus and Alertmanager to the demo receiver.

No registry here, so the pinned prom/prometheus and prom/alertmanager images are replaced by
images built from Debian 12's `prometheus` (2.42) and `prometheus-alertmanager` (0.25)
packages on the stand-in base, and the exporter image (also the demo receiver's) is built from
the Dockerfile as in tests/test_docker_image.py. Grafana has no Debian package and is left out.
The compose file is used as it is, but for what is listed in `compose_for_test`: the images,
random published ports, 2 s intervals and one extra alert rule that fires as soon as the
exporter is scraped. No .env: the demo must start without one.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, wait_for
from tests.dockertools import Engine, base_image, build_image, report_to, start_engine, timed

PROJECT = "storagenode-stack-test"
STAND_INS = {  # service -> (Debian package, binary, data directory the volume is mounted on)
    "prometheus": ("prometheus", "/usr/bin/prometheus", "/prometheus"),
    "alertmanager-demo": ("prometheus-alertmanager", "/usr/bin/prometheus-alertmanager",
                          "/alertmanager"),
}
SERVICES = ["demo", "demo-receiver", "alertmanager-demo", "prometheus"]
STAND_IN_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG PACKAGE
ARG BINARY
ARG DATA
RUN apt-get update && apt-get install -y --no-install-recommends ${PACKAGE} \\
    && rm -rf /var/lib/apt/lists/* \\
    && install -d -o nobody -g nogroup ${DATA} && ln -s ${BINARY} /bin/stand-in
USER nobody
ENTRYPOINT ["/bin/stand-in"]
"""
TEST_RULE = {"groups": [{"name": "stack-test", "rules": [{
    "alert": "StackTestExporterScraped",
    "expr": 'storagenode_exporter_build_info{job="storagenode"}',
    "labels": {"severity": "warning"},
    "annotations": {"summary": "The exporter is scraped (tests/test_stack.py)."}}]}]}


@pytest.fixture(scope="module")
def engine(request):
    started = time.monotonic()
    try:
        engine = start_engine()
        if subprocess.run(["which", "docker-compose"], capture_output=True).returncode != 0:
            pytest.skip("no docker-compose (apt-get install docker-compose)")
    except pytest.skip.Exception:
        report_to(request.config)
        raise
    try:
        yield engine
    finally:
        engine.close()
        timed("stack test, in all", started)
        report_to(request.config)


def stand_in(engine: Engine, service: str) -> str:
    package, binary, data = STAND_INS[service]
    base, _ = base_image(engine)
    tag = f"storagenode-exporter-ci/{package}:debian"
    started = time.monotonic()
    engine.run("build", "-q", "--build-arg", f"BASE={base}", "--build-arg", f"PACKAGE={package}",
               "--build-arg", f"BINARY={binary}", "--build-arg", f"DATA={data}", "-t", tag, "-",
               input=STAND_IN_DOCKERFILE, timeout=900)
    timed(f"stand-in {tag}", started)
    return tag


def compose_for_test(tmp: Path, images: dict[str, str]) -> Path:
    """docker-compose.yml with the substitutions named in the module docstring. Debian's
    docker-compose 1.29 does not know the top-level `name`; the project name is given as -p."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose.pop("name")
    compose = {k: v for k, v in compose.items() if not k.startswith("x-")}
    for name, service in compose["services"].items():
        if name in images:
            service["image"] = images[name]
            service.pop("build", None)
        if name in SERVICES:  # 127.0.0.1:9090:9090 -> 127.0.0.1::9090, a free port
            service["ports"] = [p.rsplit(":", 2)[0] + "::" + p.rsplit(":", 1)[1]
                                for p in service.get("ports", [])]
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    prom["global"].update(scrape_interval="2s", scrape_timeout="2s", evaluation_interval="2s")
    prom["rule_files"].append("/etc/prometheus/stack-test/*.yml")
    (tmp / "stack-test").mkdir(mode=0o755)
    (tmp / "stack-test" / "rule.yml").write_text(yaml.safe_dump(TEST_RULE))
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom))
    for path in (tmp / "stack-test" / "rule.yml", tmp / "prometheus.yml"):
        path.chmod(0o644)
    volumes = compose["services"]["prometheus"]["volumes"]
    volumes[volumes.index("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro")] = (
        f"{tmp / 'prometheus.yml'}:/etc/prometheus/prometheus.yml:ro")
    volumes.append(f"{tmp / 'stack-test'}:/etc/prometheus/stack-test:ro")
    out = tmp / "docker-compose.yml"
    out.write_text(yaml.safe_dump(compose, sort_keys=False))
    return out


def _json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def test_demo_stack_scrapes_and_alerts_to_the_demo_receiver(engine: Engine, tmp_path):
    tmp_path.chmod(0o755)
    images = {"demo": build_image(engine, "storagenode-exporter:local"),
              "demo-receiver": "storagenode-exporter:local"}
    images |= {service: stand_in(engine, service) for service in STAND_INS}
    compose_file = compose_for_test(tmp_path, images)
    (tmp_path / "empty.env").write_text("")
    base = ["docker-compose", "-p", PROJECT, "-f", str(compose_file), "--project-directory",
            str(ROOT), "--env-file", str(tmp_path / "empty.env"), "--profile", "demo"]

    def compose(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        result = subprocess.run([*base, *args], env=engine.env, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result

    started = time.monotonic()
    try:
        compose("up", "-d", "--no-build", *SERVICES)
        timed("docker-compose up", started)

        def port(service: str, container_port: int) -> int:
            out = compose("port", service, str(container_port), timeout=30).stdout.strip()
            return int(out.rsplit(":", 1)[1])

        prometheus = f"http://127.0.0.1:{port('prometheus', 9090)}"
        receiver = f"http://127.0.0.1:{port('demo-receiver', 9095)}"

        def scraped():
            try:
                targets = _json(prometheus + "/api/v1/targets")["data"]["activeTargets"]
            except OSError:
                return None
            health = {t["labels"]["job"]: t["health"] for t in targets}
            up = all(health.get(job) == "up" for job in ("storagenode", "alertmanager"))
            return health if up else None

        health = wait_for(scraped, timeout=90, interval=1, what="Prometheus scraping the demo")
        timed(f"Prometheus scrapes the exporter and Alertmanager (targets: {health})", started)

        def delivered():
            try:
                notifications = _json(receiver + "/alerts")
            except OSError:
                return None
            return [a for n in notifications for a in n["alerts"]
                    if a["labels"].get("alertname") == "StackTestExporterScraped"]

        alerts = wait_for(delivered, timeout=90, interval=1, what="the alert at demo-receiver")
        timed("alert delivered to demo-receiver", started)
        assert alerts[0]["status"] == "firing" and alerts[0]["labels"]["job"] == "storagenode"
        logs = compose("logs", "--no-color", "demo-receiver", timeout=30).stdout
        assert "alert firing: StackTestExporterScraped" in logs
    finally:
        subprocess.run([*base, "down", "-v", "--remove-orphans"], env=engine.env,
                       capture_output=True, timeout=120)
