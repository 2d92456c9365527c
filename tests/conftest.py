"""Shared helpers: free ports, the real exporter process, scraping over HTTP."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
GOLDEN = ROOT / "tests" / "golden"
SHARED = Path(os.environ.get("STORAGENODE_SHARED_DIR", ROOT.parent / "shared"))

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def parse_exposition(text: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` whose labels include `labels`."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        v for k, v in samples.items()
        if k.split("{", 1)[0] == name and all(w in k for w in want)
    )


def terminate(proc: subprocess.Popen) -> None:
    """SIGTERM and wait; SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ExporterProcess:
    """The real `python -m exporter` started as a user would, on a free loopback port."""

    def __init__(self, args: list[str], env: dict | None = None, cwd: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "exporter", *args,
               "--web.listen-address", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, cwd=cwd or ROOT,
        )
        # stderr is read as it comes, so a test can wait for a log line (see logged)
        self._log: list[str] = []
        self._log_reader = threading.Thread(
            target=lambda: self._log.extend(self.proc.stderr), daemon=True)
        self._log_reader.start()
        wait_for(self._ready, timeout=15, what=f"exporter on port {self.port}")

    def logged(self) -> str:
        """What the process has logged so far."""
        return "".join(self._log)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            self._log_reader.join(5)
            raise AssertionError(f"exporter exited {self.proc.returncode}: {self.logged()}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def get(self, path: str = "/metrics") -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return r.read().decode()

    def samples(self) -> dict[str, float]:
        return parse_exposition(self.get())

    def stop(self) -> str:
        """SIGTERM, wait, and return what the process logged."""
        terminate(self.proc)
        self._log_reader.join(5)
        return self.logged()


@pytest.fixture
def exporter_process():
    started: list[ExporterProcess] = []

    def start(*args: str, **kwargs) -> ExporterProcess:
        proc = ExporterProcess(list(args), **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
