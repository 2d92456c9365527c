"""Hostile clients against the real exporter process: sockets that never send a ClientHello,
idle and slowloris HTTP clients, a connection flood. A scraper must not notice any of them."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import bcrypt
import pytest

from tests.conftest import wait_for
from tests.webtools import CA, WebExporter, basic

# A short header deadline keeps these tests fast; the default is 10 s.
FAST = {"STORAGENODE_EXPORTER_WEB_READ_HEADER_TIMEOUT": "1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CA(directory)
    cert, key = ca.issue("server", "IP:127.0.0.1")
    return ca, cert, key


def _tls_exporter(tmp_path, pki, env: dict | None = None) -> WebExporter:
    ca, cert, key = pki
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    return WebExporter(web, tls=ssl.create_default_context(cafile=str(ca.cert)), env=env)


@pytest.fixture
def tls_exporter(tmp_path, pki):
    proc = _tls_exporter(tmp_path, pki)
    yield proc
    proc.stop()


def _idle(port: int, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]


def _scrape_latencies(proc: WebExporter, n: int = 12) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        status, _, body = proc.request("/metrics", timeout=5)
        assert status == 200 and b"storagenode_log_lines_total" in body
        out.append(time.perf_counter() - start)
    return out


def test_idle_tls_sockets_do_not_block_scrapes(tls_exporter):
    """20 sockets that never send a ClientHello: every scrape still answers, quickly."""
    idle = _idle(tls_exporter.port, 20)
    try:
        latencies = _scrape_latencies(tls_exporter)
    finally:
        for s in idle:
            s.close()
    assert max(latencies) < 1.0, latencies


def _slowloris(port: int, stop: threading.Event, closed: list[float]) -> None:
    """Headers one byte at a time, forever; records when the server hangs up."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        while not stop.is_set():
            try:
                s.sendall(b"X")
            except OSError:
                break
            stop.wait(0.1)
        else:
            return
        closed.append(time.monotonic() - start)


def test_idle_and_slowloris_plain_clients_do_not_slow_scrapes(tmp_path):
    proc = WebExporter(None, env=FAST)
    stop = threading.Event()
    closed: list[float] = []
    lorises = [threading.Thread(target=_slowloris, args=(proc.port, stop, closed))
               for _ in range(5)]
    idle = _idle(proc.port, 20)
    try:
        for t in lorises:
            t.start()
        assert max(_scrape_latencies(proc)) < 1.0
        # the header deadline is total: one byte every 0.1 s does not keep a client alive
        wait_for(lambda: len(closed) == 5, timeout=5, what="slowloris clients cut off")
        assert max(closed) < 3.0, closed
    finally:
        stop.set()
        for t in lorises:
            t.join(5)
        for s in idle:
            s.close()
        proc.stop()


def _closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_connection_flood_is_bounded_and_timed_out(tmp_path):
    """200 idle connections: the thread count stays bounded, scrapes still answer, and the
    server hangs up on every idle socket after the header timeout."""
    proc = WebExporter(None, env=FAST)
    try:
        _scrape_latencies(proc, 1)
        time.sleep(0.5)  # the node's threads are up
        before = proc.threads()
        flood = _idle(proc.port, 200)
        time.sleep(0.3)
        during = proc.threads()
        latencies = _scrape_latencies(proc, 5)
        for s in flood:
            s.settimeout(4)
        assert all(_closed_by_server(s) for s in flood)
        for s in flood:
            s.close()
        assert during <= before + 70, (before, during)
        assert max(latencies) < 1.0, latencies
        wait_for(lambda: proc.threads() <= before + 5, timeout=5, what="threads released")
    finally:
        proc.stop()


def test_idle_tls_sockets_are_closed_after_the_deadline(tmp_path, pki):
    """Sockets that never finish the handshake are closed by the header deadline too."""
    proc = _tls_exporter(tmp_path, pki, env=FAST)
    try:
        idle = _idle(proc.port, 30)
        assert max(_scrape_latencies(proc, 5)) < 1.0
        for s in idle:
            s.settimeout(4)
        assert all(_closed_by_server(s) for s in idle)
        for s in idle:
            s.close()
    finally:
        proc.stop()


def test_healthz_answers_without_credentials(tmp_path):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    proc = WebExporter(web)
    try:
        status, _, body = proc.request("/healthz")
        assert (status, body) == (200, b"ok\n")
        assert proc.request("/metrics")[0] == 401
        assert proc.request("/")[0] == 401
        assert proc.request("/nope")[0] == 401  # nothing else is revealed without credentials
        assert proc.request("/metrics", auth=basic("prometheus", "s3cret"))[0] == 200
    finally:
        proc.stop()
