"""--web.config.file as an operator and an attacker meet it: every mistake is one line naming
the file and the key, every key is honoured (mTLS SANs, TLS versions, ciphers, curves, headers,
rate limit) and basic auth gives nothing away by its timing."""

from __future__ import annotations

import socket
import ssl
import statistics
import subprocess
import sys
import time

import bcrypt
import pytest

from tests.conftest import ROOT
from tests.webtools import CA, LOG, WebExporter, basic


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CA(directory)
    server = ca.issue("server", "IP:127.0.0.1")
    scraper = ca.issue("scraper", "DNS:prometheus.example,IP:::1")
    other = ca.issue("other", "DNS:intruder.example")
    return {"ca": ca, "server": server, "scraper": scraper, "other": other}


def _tls_block(pki, extra: str = "") -> str:
    cert, key = pki["server"]
    return f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n{extra}"


def _run_with(web_text: str, tmp_path) -> subprocess.CompletedProcess:
    web = tmp_path / "web.yml"
    web.write_text(web_text)
    return subprocess.run(
        [sys.executable, "-m", "exporter", "--node", f"n1:{LOG}", "--web.config.file", str(web),
         "--web.listen-address", "127.0.0.1:0"],
        capture_output=True, text=True, cwd=ROOT, timeout=20,
    )


BAD = [
    ("tls_server_config: yes\n", "tls_server_config: expected a mapping"),
    ("tls_server_config: [a]\n", "tls_server_config: expected a mapping"),
    ("basic_auth_users: yes\n", "basic_auth_users: expected a mapping"),
    ("basic_auth_users:\n  admin: '$2b$10$abcdefghijklmnop'\n", "basic_auth_users.admin:"),
    ("basic_auth_users:\n  admin: 12\n", "basic_auth_users.admin:"),
    ("basic_auth_users:\n  'a:b': '$2b$04$" + "a" * 53 + "'\n", "basic_auth_users.a:b:"),
    ("http_server_config:\n  http2: 'no'\n", "http_server_config.http2: expected true or"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin"),
    ("http_server_config:\n  headers:\n    Server: x\n", "http_server_config.headers.Server:"),
    ("http_server_config:\n  h2: true\n", "http_server_config.h2: unknown key"),
    ("rate_limit:\n  interval: 1\n  burst: 2\n", "rate_limit.interval: expected a duration"),
    ("rate_limit:\n  interval: 1s\n  burst: 'x'\n", "rate_limit.burst: expected a whole"),
    ("tls_config: {}\n", "tls_config: unknown key"),
]
BAD_TLS = [
    ("  min_version: 12\n", "tls_server_config.min_version: expected a string"),
    ("  min_version: TLS14\n", "tls_server_config.min_version: unknown value"),
    ("  min_version: TLS13\n  max_version: TLS12\n", "tls_server_config.min_version: above"),
    ("  prefer_server_cipher_suites: 'yes'\n",
     "tls_server_config.prefer_server_cipher_suites: expected true or false"),
    ("  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
     "tls_server_config.cipher_suites[0]: unknown or insecure"),
    ("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "tls_server_config.cipher_suites[0]: "),
    ("  cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
     "tls_server_config.cipher_suites: expected a list"),
    ("  curve_preferences: [CurveP999]\n", "tls_server_config.curve_preferences[0]: unknown"),
    ("  curve_preferences: [X25519, CurveP256]\n", "tls_server_config.curve_preferences:"),
    ("  client_allowed_sans: [prometheus.example]\n", "tls_server_config.client_allowed_sans:"),
    ("  client_auth_type: RequireAnyClientCert\n", "tls_server_config.client_auth_type: "),
    ("  client_auth_type: Sometimes\n", "tls_server_config.client_auth_type: unknown value"),
    ("  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file: "),
    ("  client_ca_file: {ca}\n", "tls_server_config.client_auth_type: client CAs"),
    ("  client_ca_file: /nonexistent/ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
     "tls_server_config.client_ca_file: cannot read"),
    ("  client_auth_type: true\n", "tls_server_config.client_auth_type: expected a string"),
    ("  key: inline\n", "tls_server_config.key: give key_file or key"),
    ("  cert_fil: x\n", "tls_server_config.cert_fil: unknown key"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_web_config_gets_one_line(tmp_path, text, expected):
    _assert_one_line(_run_with(text, tmp_path), tmp_path, expected)


@pytest.mark.parametrize(("extra", "expected"), BAD_TLS)
def test_bad_tls_server_config_gets_one_line(tmp_path, pki, extra, expected):
    extra = extra.replace("{ca}", str(pki["ca"].cert))
    _assert_one_line(_run_with(_tls_block(pki, extra), tmp_path), tmp_path, expected)


def test_missing_cert_file_is_named(tmp_path):
    result = _run_with("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n",
                       tmp_path)
    _assert_one_line(result, tmp_path, "tls_server_config.cert_file: cannot read")
    assert str(tmp_path / "nope.pem") in result.stderr  # relative to the web config file


def _assert_one_line(result, tmp_path, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(tmp_path / "web.yml") in lines[0] and expected in lines[0], lines[0]


def test_forwarder_skip_verify_must_be_a_boolean(tmp_path):
    """`tls_insecure_skip_verify: 'no'` (a string) used to turn verification off."""
    config = tmp_path / "exporter.yml"
    config.write_text("nodes:\n  - name: a\n    log: tcp://127.0.0.1:1\n    forwarder:\n"
                      "      tls_insecure_skip_verify: 'no'\n")
    result = subprocess.run([sys.executable, "-m", "exporter", "--config", str(config),
                             "--web.listen-address", "127.0.0.1:0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0]
    assert "nodes[0].forwarder.tls_insecure_skip_verify: expected true or false" in lines[0]


def _client(pki, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if cert:
        ctx.load_cert_chain(*pki[cert])
    return ctx


def _fetch_status(proc: WebExporter, ctx: ssl.SSLContext) -> int | None:
    try:
        return proc.request("/metrics", context=ctx, timeout=5)[0]
    except OSError:
        return None


def test_mtls_with_allowed_sans(tmp_path, pki):
    ca = pki["ca"].cert
    web = tmp_path / "web.yml"
    web.write_text(_tls_block(pki, f"  client_auth_type: RequireAndVerifyClientCert\n"
                                   f"  client_ca_file: {ca}\n"
                                   f"  client_allowed_sans: ['0:0::1', other.example]\n"))
    proc = WebExporter(web, tls=_client(pki, "scraper"))
    try:
        assert _fetch_status(proc, _client(pki, "scraper")) == 200  # IP SAN ::1, normalised
        assert _fetch_status(proc, _client(pki, "other")) is None  # valid cert, wrong SAN
        assert _fetch_status(proc, _client(pki, None)) is None  # no certificate
        stranger = CA(tmp_path, "stranger")
        ctx = _client(pki, None)
        ctx.load_cert_chain(*stranger.issue("x", "IP:::1"))
        assert _fetch_status(proc, ctx) is None  # right SAN, unknown CA
        assert proc.request("/healthz")[0] == 200
    finally:
        log = proc.stop()
    assert "Traceback" not in log


def test_tls_versions_ciphers_curves_and_headers(tmp_path, pki):
    web = tmp_path / "web.yml"
    web.write_text(_tls_block(pki, "  min_version: TLS12\n  max_version: TLS12\n"
                                   "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"
                                   "  curve_preferences: [CurveP384]\n")
                   + "http_server_config:\n  http2: true\n  headers:\n"
                     "    X-Frame-Options: deny\n    Content-Security-Policy: ''\n"
                     "    Strict-Transport-Security: max-age=31536000\n")
    proc = WebExporter(web, tls=_client(pki, None))
    try:
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as raw, \
                _client(pki, None).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
        only13 = _client(pki, None)
        only13.minimum_version = ssl.TLSVersion.TLSv1_3
        assert _fetch_status(proc, only13) is None
        other_cipher = _client(pki, None)
        other_cipher.maximum_version = ssl.TLSVersion.TLSv1_2
        other_cipher.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        assert _fetch_status(proc, other_cipher) is None
        # the client must offer P-256 too, for the server's P-256 certificate (TLS 1.2)
        assert _s_client(proc.port, "P-384:P-256")
        assert not _s_client(proc.port, "X25519:P-256")
        status, headers, _ = proc.request("/metrics")
        assert status == 200 and headers["X-Frame-Options"] == "deny"
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Content-Security-Policy" not in headers  # blank: unset
        assert proc.request("/nope")[1]["X-Frame-Options"] == "deny"
    finally:
        proc.stop()


def _s_client(port: int, groups: str) -> bool:
    """Does a handshake offering only `groups` succeed? (Python's client cannot choose.)"""
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-groups", groups,
         "-tls1_2", "-brief"], input="", capture_output=True, text=True, timeout=10)
    return "CONNECTION ESTABLISHED" in result.stderr


def test_inline_cert_and_key(tmp_path, pki):
    cert, key = pki["server"]
    indent = "\n    ".join
    web = tmp_path / "web.yml"
    web.write_text("tls_server_config:\n"
                   f"  cert: |\n    {indent(cert.read_text().splitlines())}\n"
                   f"  key: |\n    {indent(key.read_text().splitlines())}\n")
    proc = WebExporter(web, tls=_client(pki, None))
    try:
        assert proc.request("/healthz")[0] == 200
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def auth_exporter(tmp_path_factory):
    """Basic auth with a cost-8 hash (about 15 ms): slow enough to time, fast to test."""
    web = tmp_path_factory.mktemp("auth") / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=8)).decode()
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    proc = WebExporter(web)
    yield proc
    log = proc.stop()
    assert "Traceback" not in log


def test_long_password_is_401_not_500(auth_exporter):
    assert auth_exporter.request("/metrics", auth=basic("prometheus", "x" * 100))[0] == 401
    assert auth_exporter.request("/metrics", auth=basic("prometheus", "s3cret"))[0] == 200
    assert auth_exporter.request("/metrics", auth="Basic !!notbase64")[0] == 401
    assert auth_exporter.request("/metrics", auth=basic("prometheus", "a\0b"))[0] == 401


def test_unknown_user_takes_as_long_as_a_known_one(auth_exporter):
    def median(user: str) -> float:
        times = []
        for i in range(9):
            start = time.perf_counter()
            assert auth_exporter.request("/metrics", auth=basic(user, f"wrong{i}"))[0] == 401
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = median("prometheus"), median("nobody")
    assert 1 / 3 < unknown / known < 3, (known, unknown)


def test_rate_limit(tmp_path):
    web = tmp_path / "web.yml"
    web.write_text("rate_limit:\n  interval: 1m\n  burst: 2\n")
    proc = WebExporter(web)
    try:
        statuses = [proc.request("/metrics")[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert proc.request("/healthz")[0] == 200  # never limited
    finally:
        proc.stop()


def test_exporter_toolkit_spellings_load(tmp_path):
    """Files written for node_exporter load unchanged: numbers as header values, `interval: 0`
    for no rate limit, blank headers, empty sections."""
    from exporter.webconfig import load_web_config

    web = tmp_path / "web.yml"
    web.write_text("http_server_config:\n  headers:\n    X-XSS-Protection: 1\n"
                   "    X-Content-Type-Options: ''\nrate_limit:\n  interval: 0\n  burst: 0\n"
                   "basic_auth_users:\ntls_server_config:\n")
    loaded = load_web_config(str(web))
    assert loaded.headers == [("X-XSS-Protection", "1")]
    assert loaded.rate_limit is None and loaded.users == {} and loaded.tls is None
