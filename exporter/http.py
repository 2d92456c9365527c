"""The HTTP side: landing page, /metrics, /healthz, and exporter-toolkit web config.

`--web.config.file` takes the file format of the Prometheus exporter-toolkit
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md):
`tls_server_config` (cert_file, key_file, client_ca_file, client_auth_type, min_version) and
`basic_auth_users` (user: bcrypt hash), so one file serves node_exporter and this exporter.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import socket
import ssl
import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from exporter import __version__
from exporter.config import ConfigError, is_loopback, load_yaml, parse_listen_address

log = logging.getLogger("exporter.http")

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass
class WebConfig:
    tls: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash

    @property
    def authenticated(self) -> bool:
        return bool(self.users) or (
            self.tls is not None and self.tls.verify_mode == ssl.CERT_REQUIRED
        )


def load_web_config(path: str) -> WebConfig:
    """Parse an exporter-toolkit web config file; ConfigError names the key and file."""
    data = load_yaml(path, "web config file")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    known = {"tls_server_config", "basic_auth_users", "http_server_config"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}: {key}: unknown key (known: {', '.join(sorted(known))})")
    web = WebConfig()
    tls = data.get("tls_server_config")
    if tls:
        web.tls = _tls_context(path, tls)
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: basic_auth_users: expected a mapping of user: bcrypt hash")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith("$2"):
            raise ConfigError(f"{path}: basic_auth_users.{user}: expected a bcrypt hash")
        web.users[str(user)] = hashed.encode()
    return web


def _tls_context(path: str, tls: dict) -> ssl.SSLContext:
    known = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version",
             "max_version", "cipher_suites", "curve_preferences",
             "prefer_server_cipher_suites", "client_allowed_sans"}
    for key in tls:
        if key not in known:
            raise ConfigError(f"{path}: tls_server_config.{key}: unknown key")
    for key in ("cert_file", "key_file"):
        if not tls.get(key):
            raise ConfigError(f"{path}: tls_server_config.{key}: missing")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(tls["cert_file"], tls["key_file"])
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{path}: tls_server_config.cert_file/key_file: {exc}") from exc
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in _CLIENT_AUTH:
        raise ConfigError(f"{path}: tls_server_config.client_auth_type: unknown value {auth!r}")
    ctx.verify_mode = _CLIENT_AUTH[auth]
    if tls.get("client_ca_file"):
        try:
            ctx.load_verify_locations(tls["client_ca_file"])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{path}: tls_server_config.client_ca_file: {exc}") from exc
    elif "Verify" in auth:
        raise ConfigError(f"{path}: tls_server_config.client_ca_file: needed for {auth}")
    for key, attr in (("min_version", "minimum_version"), ("max_version", "maximum_version")):
        if key in tls:
            if tls[key] not in _TLS_VERSIONS:
                raise ConfigError(f"{path}: tls_server_config.{key}: unknown value {tls[key]!r}")
            setattr(ctx, attr, _TLS_VERSIONS[tls[key]])
    return ctx


class _BasicAuth:
    """Checks Authorization headers; bcrypt is slow, so verified credentials are cached."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(hashed + b"\0" + password.encode()).digest()
        with self._lock:
            if key in self._ok:
                return True
        import bcrypt

        if bcrypt.checkpw(password.encode(), hashed):
            with self._lock:
                self._ok.add(key)
            return True
        return False


LANDING = """<!DOCTYPE html>
<html><head><title>storagenode-exporter</title></head>
<body>
<h1>storagenode-exporter {version}</h1>
<p>Prometheus exporter for Storj storagenodes: log and node API metrics.</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="healthz">Health</a></li></ul>
<h2>Nodes</h2>
<ul>{nodes}</ul>
</body></html>
"""


def make_app(registry: CollectorRegistry, nodes: list[str], web: WebConfig | None = None):
    """WSGI app: `/` landing page, `/metrics`, `/healthz`; basic auth when configured."""
    metrics = make_wsgi_app(registry)
    auth = _BasicAuth(web.users) if web and web.users else None
    page = LANDING.format(
        version=__version__,
        nodes="".join(f"<li>{html.escape(n)}</li>" for n in nodes) or "<li>(none)</li>",
    ).encode()

    def app(environ, start_response):
        if auth is not None and not auth.check(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [
                ("WWW-Authenticate", 'Basic realm="storagenode-exporter"'),
                ("Content-Type", "text/plain; charset=utf-8"),
            ])
            return [b"Unauthorized\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        if path in ("/", ""):
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [page]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def serve(app, listen_address: str, web: WebConfig | None = None):
    """Start the HTTP server in a daemon thread; returns (server, thread)."""
    host, port = parse_listen_address(listen_address)

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        httpd = make_server(host, port, app, Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise ConfigError(f"--web.listen-address {listen_address}: {exc.strerror}") from exc
    if web is not None and web.tls is not None:
        httpd.socket = web.tls.wrap_socket(httpd.socket, server_side=True)
    if not is_loopback(host) and not (web and web.authenticated):
        log.warning(
            "listening on %s without authentication, as asked; set --web.config.file for "
            "TLS and basic auth", listen_address,
        )
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    return httpd, thread
