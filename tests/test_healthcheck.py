"""exporter/healthcheck.py, the image's HEALTHCHECK, against the real exporter process.

It must follow the address the exporter was given, however it was given (flag, --config,
demo), reach /healthz with basic auth on and over TLS, and fail when nothing answers.
tests/test_docker_image.py runs the same check inside a real container.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import bcrypt
import pytest

from exporter import healthcheck
from tests.conftest import FIXTURES, ROOT, free_port, terminate, wait_for

LOG = FIXTURES / "logs" / "v1.80.log"


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "exporter", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _healthcheck(pid: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter.healthcheck", "--pid", str(pid)],
                          cwd=ROOT, capture_output=True, text=True, timeout=20)


def _listening(proc: subprocess.Popen, port: int, scheme: str = "http") -> bool:
    assert proc.poll() is None, proc.stderr.read()
    try:
        urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/", timeout=1).close()
    except urllib.error.HTTPError:
        return True  # 401: it answers
    except urllib.error.URLError as exc:
        return "CERTIFICATE_VERIFY_FAILED" in str(exc)  # TLS: it answers
    except OSError:
        return False
    return True


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _healthy_then_not(proc: subprocess.Popen, port: int, scheme: str = "http") -> None:
    try:
        wait_for(lambda: _listening(proc, port, scheme), timeout=15, what="exporter")
        result = _healthcheck(proc.pid)
        assert result.returncode == 0, result.stderr
    finally:
        terminate(proc)
    result = _healthcheck(proc.pid)  # the process is gone
    assert result.returncode == 1
    assert "no storagenode-exporter process" in result.stderr


def test_follows_the_listen_address_flag():
    port = free_port()
    proc = _start(["--node", f"n1:{LOG}", "--web.listen-address", f"127.0.0.1:{port}"])
    _healthy_then_not(proc, port)


def test_follows_the_config_file(tmp_path):
    port = free_port()
    config = tmp_path / "exporter.yml"
    config.write_text(f"nodes:\n  - name: n1\n    log: {LOG}\n"
                      f"web:\n  listen_address: '127.0.0.1:{port}'\n")
    proc = _start(["--config", str(config)])
    _healthy_then_not(proc, port)


def test_demo_on_all_interfaces():
    port = free_port()
    proc = _start(["demo", f"--web.listen-address=0.0.0.0:{port}"])
    _healthy_then_not(proc, port)


def test_basic_auth_on(tmp_path):
    port = free_port()
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    proc = _start(["--node", f"n1:{LOG}", "--web.listen-address", f"127.0.0.1:{port}",
                   "--web.config.file", str(web)])
    _healthy_then_not(proc, port)


def test_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=test",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    port = free_port()
    proc = _start(["--node", f"n1:{LOG}", "--web.listen-address", f"127.0.0.1:{port}",
                   "--web.config.file", str(web)])
    _healthy_then_not(proc, port, "https")


def test_an_exporter_that_does_not_answer_is_unhealthy(tmp_path):
    """Listening but never answering (hung): exit 1 within --timeout, the URL in the log."""
    port = free_port()
    hung = tmp_path / "storagenode-exporter"
    hung.write_text("import socket, sys, time\n"
                    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[2].split(':')[1])))\n"
                    "s.listen(); time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, str(hung), "--web.listen-address",
                             f"127.0.0.1:{port}"])
    try:
        wait_for(lambda: _connects(port), timeout=10, what="the hung listener")
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "exporter.healthcheck", "--pid",
                                 str(proc.pid), "--timeout", "1"],
                                cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert result.returncode == 1 and f"127.0.0.1:{port}/healthz" in result.stderr
        assert time.monotonic() - started < 10
    finally:
        terminate(proc)


@pytest.mark.parametrize(("argv", "url"), [
    (["python3", "/opt/venv/bin/storagenode-exporter", "demo"], "http://127.0.0.1:9184/healthz"),
    (["/sbin/docker-init", "--", "storagenode-exporter", "--web.listen-address", ":9999"],
     "http://127.0.0.1:9999/healthz"),
    (["python", "-m", "exporter", "--web.listen-address=[::]:9185"], "http://[::1]:9185/healthz"),
    (["storagenode-exporter", "--web.listen-address", "10.1.2.3:80"], "http://10.1.2.3:80/healthz"),
])
def test_command_lines(tmp_path, argv, url):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(b"python3\0-m\0exporter.healthcheck\0")
    args = healthcheck.exporter_argv(proc=tmp_path)
    assert healthcheck.healthz_url(*healthcheck.listen_and_web_config(args)) == url
