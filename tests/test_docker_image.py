"""The Docker image, built from the project's Dockerfile and run in a real Docker engine.

Built on a base made from Debian packages (scripts/docker-base.sh) where no registry can be
reached; run as its unprivileged user with a log mounted read-only and the state volume, as
docker-compose.yml runs it. Checks what an operator relies on: the image's own HEALTHCHECK
(also with basic auth on and another port), exact counts from the mounted log, counters kept
across `docker restart` and `docker kill`, `demo` mode, the C hot path, the git revision in
build_info (and "unknown" when built without one, as from a tarball). The engine, the image
size and the time each part took are printed at the end of the session (tests/dockertools.py).
Skips, with the reason, where no Docker engine can run.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import uuid

import bcrypt
import pytest

from tests.conftest import parse_exposition, total, wait_for
from tests.dockertools import (
    Engine,
    build_image,
    git_revision,
    report_to,
    start_engine,
    timed,
)

SATELLITE = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
STATE_DIR = "/var/lib/storagenode-exporter"


@pytest.fixture(scope="module")
def engine(request):
    started = time.monotonic()
    try:
        engine = start_engine()
    except pytest.skip.Exception:
        report_to(request.config)
        raise
    try:
        yield engine
    finally:
        engine.close()
        timed("docker part of the tests, in all", started)
        report_to(request.config)


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    return build_image(engine)


def _lines(action: str, count: int, first: int) -> str:
    """`count` successful transfers of `action`, numbered from `first` (distinct pieces)."""
    verb = "uploaded" if action == "PUT" else "downloaded"
    out = []
    for i in range(first, first + count):
        piece = f"{i:052d}"
        out.append(
            f"2026-08-20T10:{i // 60 % 60:02d}:{i % 60:02d}Z\tINFO\tpiecestore\t{verb}\t"
            f'{{"process": "storagenode", "piece_id": "{piece}", "satellite_id": "{SATELLITE}", '
            f'"action": "{action}", "remote_address": "172.17.0.1:4000", "size": 2048}}\n')
    return "".join(out)


def _get(port: int, path: str = "/metrics", auth: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _samples(port: int) -> dict[str, float] | None:
    try:
        status, body = _get(port)
    except OSError:
        return None
    return parse_exposition(body) if status == 200 else None


def _transfers(engine: Engine, cid: str) -> dict[str, float] | None:
    """PUT and GET totals, or None while the container is not answering."""
    samples = _samples(engine.host_port(cid, 9184))
    if samples is None:
        return None
    return {a: total(samples, "storagenode_transfers_total", action=a) for a in ("PUT", "GET")}


def _wait_counts(engine: Engine, cid: str, want: dict[str, float], what: str) -> None:
    """Until the counts reach `want`, then exactly `want` (more would be a double count)."""
    def reached():
        counts = _transfers(engine, cid)
        return counts if counts and all(counts[k] >= v for k, v in want.items()) else None

    assert wait_for(reached, timeout=45, interval=0.3, what=what) == want, engine.logs(cid)


def test_image_runs_unprivileged_with_its_healthcheck(engine: Engine, image: str):
    assert engine.inspect(image, "{{.Config.User}}") == "10001:10001"
    check = engine.inspect(image, "{{json .Config.Healthcheck.Test}}")
    assert check == '["CMD","python","-m","exporter.healthcheck"]'


def test_demo_mode_healthy_with_the_c_hot_path(engine: Engine, image: str):
    cid = engine.container("--health-interval", "1s", "-p", "127.0.0.1::9184", image,
                           "demo", "--web.listen-address", "0.0.0.0:9184")
    started = time.monotonic()
    engine.wait_healthy(cid)
    timed("demo container healthy", started)
    port = engine.host_port(cid, 9184)
    samples = wait_for(lambda: (s := _samples(port)) and total(
        s, "storagenode_transfers_total") > 0 and s, timeout=30, what="demo transfers")
    build = [k for k in samples if k.startswith("storagenode_exporter_build_info{")]
    assert len(build) == 1 and 'hotpath="c"' in build[0], build
    # the commit the image was built from (the build argument), not "unknown"
    revision = git_revision() or "unknown"
    assert f'revision="{revision}"' in build[0], build
    assert engine.inspect(image, '{{index .Config.Labels "org.opencontainers.image.revision"}}'
                          ) == (git_revision() or "")
    assert engine.run("exec", cid, "id", "-u").stdout.strip() == "10001"


def test_an_image_built_without_a_revision_says_unknown(engine: Engine, image: str):
    """A build from a tarball (no .git, no build argument): the same image but for the last
    layer, so this costs seconds on top of the main build."""
    tag = build_image(engine, "storagenode-exporter:test-no-revision", revision=None)
    out = engine.run("run", "--rm", tag, "--version").stdout
    assert "(revision: unknown)" in out, out


def test_healthcheck_with_basic_auth_on_another_port(engine: Engine, image: str, tmp_path):
    web = tmp_path / "web"
    web.mkdir(mode=0o755)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    (web / "web.yml").write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    (web / "web.yml").chmod(0o644)
    cid = engine.container(
        "--health-interval", "1s", "-p", "127.0.0.1::9999",
        "-v", f"{web}:/etc/storagenode-exporter:ro", image,
        "demo", "--web.listen-address", "0.0.0.0:9999",
        "--web.config.file", "/etc/storagenode-exporter/web.yml")
    engine.wait_healthy(cid)
    port = engine.host_port(cid, 9999)
    assert _get(port)[0] == 401
    status, body = _get(port, auth="prometheus:s3cret")
    assert status == 200 and 'hotpath="c"' in body


def test_counts_exact_and_kept_across_restart_and_kill(engine: Engine, image: str, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    log = logs / "node.log"
    log.write_text(_lines("PUT", 30, 0) + _lines("GET", 20, 0))
    log.chmod(0o644)
    volume = f"storagenode-exporter-test-{uuid.uuid4().hex[:8]}"
    engine.run("volume", "create", volume)
    try:
        cid = engine.container(
            "-p", "127.0.0.1::9184", "-v", f"{logs}:/logs:ro",
            "-v", f"{volume}:{STATE_DIR}", image,
            "--node", "n1:/logs/node.log", "--from-start", "--web.listen-address", "0.0.0.0:9184")
        _wait_counts(engine, cid, {"PUT": 30, "GET": 20}, "the log's transfers")
        with log.open("a") as fh:
            fh.write(_lines("PUT", 5, 30))
        _wait_counts(engine, cid, {"PUT": 35, "GET": 20}, "the appended lines")

        for step, stop in (("restart", ["restart", "-t", "20"]), ("kill", ["kill"])):
            started = time.monotonic()
            engine.run(*stop, cid, timeout=60)
            if step == "kill":
                assert engine.inspect(cid, "{{.State.Running}}") == "false"
                with log.open("a") as fh:  # written while the exporter is down
                    fh.write(_lines("GET", 3, 100))
                engine.run("start", cid)
            # The first answer after the restart already has the saved counters: no reset.
            first = wait_for(lambda: _transfers(engine, cid), timeout=30, what=f"up after {step}")
            assert first["PUT"] >= 35, (step, first)
            with log.open("a") as fh:
                fh.write(_lines("PUT", 2, 200 if step == "kill" else 100))
            want = {"restart": {"PUT": 37, "GET": 20}, "kill": {"PUT": 39, "GET": 23}}[step]
            _wait_counts(engine, cid, want, f"counts after docker {step}")
            time.sleep(1.0)  # a late re-read of the log would show up now
            assert _transfers(engine, cid) == want, (step, engine.logs(cid))
            timed(f"docker {step}: back with the same counts", started)
        assert engine.run("exec", cid, "ls", STATE_DIR).stdout.split() == ["state.json"]
    finally:
        engine.run("rm", "-f", *engine.containers, check=False)
        engine.containers.clear()
        engine.run("volume", "rm", "-f", volume, check=False)


def test_forwarder_image(engine: Engine):
    """deploy/forwarder/Dockerfile on the same base: runs as its own user, the command works."""
    tag = build_image(engine, "storagenode-log-forwarder:test", "deploy/forwarder/Dockerfile")
    assert engine.inspect(tag, "{{.Config.User}}") == "10185"
    result = engine.run("run", "--rm", tag, "--help")
    assert "--token-file" in result.stdout
    # and it runs: tails a log (missing yet) and listens, on the container's loopback
    cid = engine.container(tag, "--log", "n1=/tmp/node.log", "--listen", "127.0.0.1:9185",
                           "--insecure-no-auth")
    time.sleep(2)
    assert engine.inspect(cid, "{{.State.Running}}") == "true", engine.logs(cid)
    assert "Traceback" not in engine.logs(cid)
