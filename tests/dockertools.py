"""A Docker engine for the image and stack tests, and the project's image built on it.

Uses a running engine when there is one (DOCKER_HOST or the default socket); otherwise, as
root with Debian's `docker.io` installed, starts its own `dockerd` with its own socket and a
data root under /var/lib that is kept between runs, so the stand-in base image and the build
cache make the next run fast. No registry is needed: the base is made from Debian packages
by scripts/docker-base.sh unless STORAGENODE_TEST_PYTHON_IMAGE names one that is present.
Where no engine can run the tests skip, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for

STATE = Path(os.environ.get("STORAGENODE_TEST_DOCKER_DIR", "/var/lib/storagenode-exporter-ci"))
SOCKET = Path("/run/storagenode-exporter-ci/docker.sock")
IMAGE = "storagenode-exporter:test"
# The Debian stand-in base has no Python headers; the official image has them.
STAND_IN_BUILD_PACKAGES = "gcc libc6-dev python3-dev"
PIP_SETTINGS = {"PIP_INDEX_URL": "index-url", "PIP_EXTRA_INDEX_URL": "extra-index-url",
                "PIP_TRUSTED_HOST": "trusted-host"}


# What the session did and how long it took; the test module's fixture shows it at the end
# (report_to), also under `pytest -q`, so CI logs carry the timings and any skip reason.
REPORT: list[str] = []


def note(line: str) -> None:
    REPORT.append(line)
    print(f"[docker] {line}", file=sys.stderr)


def timed(what: str, started: float) -> None:
    note(f"{what}: {time.monotonic() - started:.1f} s")


def report_to(config: pytest.Config) -> None:
    writer = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if writer is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            writer.write_line("")
            for line in REPORT:
                writer.write_line(f"[docker] {line}")
    REPORT.clear()


@dataclass
class Engine:
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    log: Path | None = None
    containers: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 60, check: bool = True,
            **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()[-2000:]}")
        return result

    def ok(self) -> bool:
        try:
            return self.run("info", timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def container(self, *args: str) -> str:
        """`docker run -d ARGS`; removed at the end of the session."""
        cid = self.run("run", "-d", *args).stdout.strip()
        self.containers.append(cid)
        return cid

    def inspect(self, cid: str, template: str) -> str:
        return self.run("inspect", "--format", template, cid).stdout.strip()

    def health(self, cid: str) -> str:
        return self.inspect(cid, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")

    def wait_healthy(self, cid: str, timeout: float = 45) -> None:
        def healthy():
            status = self.health(cid)
            if status == "unhealthy" or self.inspect(cid, "{{.State.Running}}") != "true":
                raise AssertionError(f"{cid[:12]} {status}: {self.logs(cid)}")
            return status == "healthy"

        wait_for(healthy, timeout=timeout, interval=0.5, what=f"{cid[:12]} healthy")

    def host_port(self, cid: str, port: int) -> int:
        out = self.run("port", cid, f"{port}/tcp").stdout.split()[0]
        return int(out.rsplit(":", 1)[1])

    def logs(self, cid: str) -> str:
        result = self.run("logs", "--tail", "30", cid, check=False)
        return result.stdout + result.stderr

    def close(self) -> None:
        if self.containers:
            self.run("rm", "-f", "-v", *self.containers, check=False, timeout=60)
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _skip(reason: str):
    note(f"skipped: {reason}")
    pytest.skip(reason)


def start_engine() -> Engine:
    """The running engine, or our own dockerd; skips where neither can be had."""
    if not shutil.which("docker"):
        _skip("no docker command (apt-get install docker.io)")
    engine = Engine(env=dict(os.environ))
    if engine.ok():
        return engine
    if os.geteuid() != 0:
        _skip("no running Docker engine, and not root to start one")
    if not shutil.which("dockerd"):
        _skip("no running Docker engine and no dockerd binary (apt-get install docker.io)")
    SOCKET.parent.mkdir(parents=True, exist_ok=True)
    (STATE / "docker").mkdir(parents=True, exist_ok=True)
    engine.env["DOCKER_HOST"] = f"unix://{SOCKET}"
    if engine.ok():  # left running by an earlier, interrupted run
        return engine
    engine.log = STATE / "dockerd.log"
    started = time.monotonic()
    with open(engine.log, "wb") as log:
        engine.proc = subprocess.Popen(
            ["dockerd", "--data-root", str(STATE / "docker"), "--exec-root",
             str(SOCKET.parent / "exec"), "--pidfile", str(SOCKET.parent / "dockerd.pid"),
             "-H", f"unix://{SOCKET}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not engine.ok():
        if engine.proc.poll() is not None or time.monotonic() > deadline:
            tail = engine.log.read_text(errors="replace")[-1500:]
            engine.close()
            _skip(f"dockerd did not start (exit {engine.proc.returncode}): {tail}")
        time.sleep(0.3)
    timed("dockerd started", started)
    return engine


def _pip_index_args() -> list[str]:
    """The host's pip index settings (environment, else `pip config`) as build arguments, so
    the build reaches the same index or mirror; file:// locations are not in the build."""
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                            capture_output=True, text=True, timeout=30).stdout
    args = []
    for env, key in PIP_SETTINGS.items():
        value = os.environ.get(env)
        if value is None:
            for line in config.splitlines():
                name, _, raw = line.partition("=")
                if name.split(".", 1)[-1] == key:
                    value = raw.strip("'\"")
        urls = [u for u in (value or "").split() if urllib.parse.urlsplit(u).scheme != "file"]
        if urls:
            args += ["--build-arg", f"{env}={' '.join(urls)}"]
    return args


def base_image(engine: Engine) -> tuple[str, list[str]]:
    """(PYTHON_IMAGE, extra build arguments)."""
    wanted = os.environ.get("STORAGENODE_TEST_PYTHON_IMAGE")
    if wanted:
        engine.run("image", "inspect", wanted)
        return wanted, []
    if not shutil.which("debootstrap"):
        _skip("no base image: debootstrap not installed (apt-get install debootstrap) and "
              "STORAGENODE_TEST_PYTHON_IMAGE not set")
    started = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts" / "docker-base.sh")], env=engine.env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    timed("stand-in base image", started)
    return result.stdout.strip(), ["--build-arg", f"BUILD_PACKAGES={STAND_IN_BUILD_PACKAGES}"]


def git_revision() -> str | None:
    """The checkout's HEAD, as an image build is given it; None outside a git checkout (a
    tarball), where the image says "unknown"."""
    if not (ROOT / ".git").exists():
        return None
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() if out.returncode == 0 else None


def build_image(engine: Engine, tag: str = IMAGE, dockerfile: str = "Dockerfile",
                revision: str | None = "HEAD") -> str:
    """A Dockerfile of the project (path from the repository root), built as CI builds it
    on the same base; returns the tag. `revision`: the REVISION build argument, for a
    Dockerfile that takes one ("HEAD": the checkout's, None: not given)."""
    base, extra = base_image(engine)
    started = time.monotonic()
    env = {**engine.env, "DOCKER_BUILDKIT": "0"}  # no registry for BuildKit's frontend image
    if revision == "HEAD":
        revision = git_revision()
    if revision is not None and "ARG REVISION" in (ROOT / dockerfile).read_text():
        extra = [*extra, "--build-arg", f"REVISION={revision}"]
    result = subprocess.run(
        ["docker", "build", "-q", "-f", str(ROOT / dockerfile),
         "--build-arg", f"PYTHON_IMAGE={base}", *extra, *_pip_index_args(), "-t", tag,
         str(ROOT)],
        env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    timed(f"docker build {tag} on {base}", started)
    size = int(engine.inspect(tag, "{{.Size}}"))
    note(f"image {tag}: {size / 1e6:.0f} MB")
    return tag
