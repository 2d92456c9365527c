"""Helpers for the HTTP tests: test certificates made with openssl, and the real exporter
started with a web config (TLS and/or basic auth), which `ExporterProcess` cannot wait for."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import FIXTURES, ROOT, free_port, terminate, wait_for

LOG = FIXTURES / "logs" / "v1.80.log"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


class CA:
    """A throwaway CA (EC P-256, one day) that issues leaf certificates with given SANs."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.dir = directory
        self.key, self.cert = directory / f"{name}.key", directory / f"{name}.pem"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-days", "1", "-subj", f"/CN=test {name}",
                 "-keyout", str(self.key), "-out", str(self.cert))

    def issue(self, name: str, san: str) -> tuple[Path, Path]:
        """(cert, key) for `name` with subjectAltName `san`, e.g. 'IP:127.0.0.1'."""
        key, csr, cert = (self.dir / f"{name}.key", self.dir / f"{name}.csr",
                          self.dir / f"{name}.pem")
        ext = self.dir / f"{name}.ext"
        ext.write_text(f"subjectAltName={san}\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey",
                 str(self.key), "-CAcreateserial", "-days", "1", "-extfile", str(ext),
                 "-out", str(cert))
        return cert, key


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class WebExporter:
    """`python -m exporter` with --web.config.file on a free port; stderr is collected."""

    def __init__(self, web_config: Path | None, *, tls: ssl.SSLContext | None = None,
                 env: dict | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.tls = tls
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "exporter", "--node", f"n1:{LOG}", *args,
               "--web.listen-address", f"127.0.0.1:{self.port}"]
        if web_config is not None:
            cmd += ["--web.config.file", str(web_config)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT, env={**os.environ, **(env or {})})
        self._log: list[str] = []
        self._reader = threading.Thread(target=lambda: self._log.extend(self.proc.stderr),
                                        daemon=True)
        self._reader.start()
        wait_for(self._listening, timeout=15, what=f"exporter on port {self.port}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            self._reader.join(5)
            raise AssertionError(f"exporter exited {self.proc.returncode}: {self.logged()}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def logged(self) -> str:
        return "".join(self._log)

    def request(self, path: str = "/metrics", auth: str | None = None,
                context: ssl.SSLContext | None = None, timeout: float = 5):
        """(status, headers, body) of one GET; HTTP errors are answers too."""
        req = urllib.request.Request(self.base + path)
        if auth is not None:
            req.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, context=context or self.tls, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def threads(self) -> int:
        """The exporter's thread count, from /proc."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads line")

    def stop(self) -> str:
        terminate(self.proc)
        self._reader.join(5)
        return self.logged()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
