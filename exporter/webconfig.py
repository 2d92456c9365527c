"""`--web.config.file`: the Prometheus exporter-toolkit web config, validated strictly.

The format (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md)
is shared with node_exporter, so one file serves both. Every key of it is either honoured or
refused with one line naming the file and the key: a setting that is silently ignored is a
security hole when it is `client_allowed_sans` or `min_version`. Types are strict (a boolean is
a YAML boolean, not the string 'no'), and relative paths are relative to the file, as in Go.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import os
import re
import secrets
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import bcrypt

from exporter.config import ConfigError, _check_keys, _typed, load_yaml

_TLS_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file",
             "client_auth_type", "client_allowed_sans", "min_version", "max_version",
             "cipher_suites", "prefer_server_cipher_suites", "curve_preferences"}
_UNVERIFIED_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's tls.CipherSuites() (the ones exporter-toolkit accepts) for TLS 1.0-1.2 -> OpenSSL names
_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                  "TLS_CHACHA20_POLY1305_SHA256")
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
           "X25519": "X25519"}
# exporter-toolkit's extraHTTPHeaders: the headers that may be set, and their allowed values
_HEADERS: dict[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT = re.compile(r"\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


@dataclass
class WebConfig:
    path: str = ""
    tls: ssl.SSLContext | None = None
    allowed_sans: frozenset[str] | None = None  # client_allowed_sans, normalised
    users: dict[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash
    headers: list[tuple[str, str]] = field(default_factory=list)
    rate_limit: RateLimit | None = None

    @property
    def authenticated(self) -> bool:
        return bool(self.users) or (
            self.tls is not None and self.tls.verify_mode == ssl.CERT_REQUIRED
        )

    def peer_allowed(self, sock: ssl.SSLSocket) -> bool:
        """client_allowed_sans: the verified client certificate names one of them."""
        if self.allowed_sans is None:
            return True
        cert = sock.getpeercert()
        return bool(cert) and not self.allowed_sans.isdisjoint(_sans(cert))


def _sans(cert: dict) -> set[str]:
    out = set()
    for kind, value in cert.get("subjectAltName", ()):
        if kind in ("DNS", "email", "URI"):
            out.add(value)
        elif kind == "IP Address":
            out.add(_normal_ip(value.strip()))
    return out


def _normal_ip(value: str) -> str:
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return value


def load_web_config(path: str) -> WebConfig:
    """Parse and check a web config file; ConfigError names the file and the key."""
    data = load_yaml(path, "web config file")
    top = _check_keys(path, data, {"tls_server_config", "http_server_config",
                                   "basic_auth_users", "rate_limit"})
    web = WebConfig(path=path)
    base = os.path.dirname(os.path.abspath(path))
    if top.get("tls_server_config") is not None:
        web.tls, web.allowed_sans = _tls(f"{path}: tls_server_config",
                                         top["tls_server_config"], base)
    if top.get("http_server_config") is not None:
        web.headers = _http(f"{path}: http_server_config", top["http_server_config"])
    if top.get("basic_auth_users") is not None:
        web.users = _users(f"{path}: basic_auth_users", top["basic_auth_users"])
    if top.get("rate_limit") is not None:
        web.rate_limit = _rate_limit(f"{path}: rate_limit", top["rate_limit"])
    return web


def _string(where: str, value: Any) -> str:
    return _typed(where, value, str, "a string")


def _strings(where: str, value: Any) -> list[str]:
    items = _typed(where, value, list, "a list of strings")
    return [_string(f"{where}[{i}]", item) for i, item in enumerate(items)]


def _file(where: str, value: Any, base: str) -> str:
    return os.path.join(base, _typed(where, value, str, "a file path"))


def _readable(where: str, value: Any, base: str) -> str:
    """A file path (relative to the web config) that can be opened; ssl errors omit the name."""
    path = _file(where, value, base)
    try:
        with open(path, "rb"):
            return path
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from exc


def _tls(where: str, raw: Any, base: str) -> tuple[ssl.SSLContext, frozenset[str] | None]:
    tls = _check_keys(where, raw, _TLS_KEYS)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_cert(where, tls, base, ctx)
    auth = _string(f"{where}.client_auth_type", tls.get("client_auth_type") or "NoClientCert")
    if auth in _UNVERIFIED_AUTH:
        raise ConfigError(f"{where}.client_auth_type: {auth} is not supported (Python's TLS "
                          "cannot accept a client certificate it does not verify); use "
                          "RequireAndVerifyClientCert with client_ca_file")
    if auth not in _CLIENT_AUTH:
        raise ConfigError(f"{where}.client_auth_type: unknown value {auth!r} (known: "
                          f"{', '.join(_CLIENT_AUTH)})")
    ctx.verify_mode = _CLIENT_AUTH[auth]
    has_ca = _load_client_ca(where, tls, base, ctx)
    if has_ca and auth == "NoClientCert":
        raise ConfigError(f"{where}.client_auth_type: client CAs are configured without a "
                          "client auth policy (set RequireAndVerifyClientCert)")
    if auth != "NoClientCert" and not has_ca:
        raise ConfigError(f"{where}.client_ca_file: needed for client_auth_type {auth}")
    sans = None
    if "client_allowed_sans" in tls:
        if auth == "NoClientCert":
            raise ConfigError(f"{where}.client_allowed_sans: needs client_auth_type "
                              "RequireAndVerifyClientCert (no client certificate is asked for)")
        names = _strings(f"{where}.client_allowed_sans", tls["client_allowed_sans"])
        sans = frozenset(_normal_ip(name) for name in names)
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = _string(f"{where}.{key}", tls.get(key, default))
        if name not in _TLS_VERSIONS:
            raise ConfigError(f"{where}.{key}: unknown value {name!r} (known: "
                              f"{', '.join(_TLS_VERSIONS)})")
        versions[key] = _TLS_VERSIONS[name]
    if versions["min_version"] > versions["max_version"]:
        raise ConfigError(f"{where}.min_version: above max_version")
    try:
        ctx.minimum_version = versions["min_version"]
        ctx.maximum_version = versions["max_version"]
    except (ValueError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.min_version: {exc}") from exc
    _ciphers(where, tls, ctx)
    return ctx, sans


def _load_cert(where: str, tls: dict, base: str, ctx: ssl.SSLContext) -> None:
    """cert_file/key_file, or the PEM text inline in cert/key."""
    for file_key, text_key in (("cert_file", "cert"), ("key_file", "key")):
        if tls.get(file_key) and tls.get(text_key):
            raise ConfigError(f"{where}.{text_key}: give {file_key} or {text_key}, not both")
        if not tls.get(file_key) and not tls.get(text_key):
            raise ConfigError(f"{where}.{file_key}: missing (or {text_key} inline)")
    inline = {k: _string(f"{where}.{k}", tls[k]) for k in ("cert", "key") if tls.get(k)}
    with tempfile.TemporaryDirectory(prefix="web-config-") as tmp:
        files = {}
        for name in ("cert", "key"):
            if name in inline:  # ssl loads certificates from files only
                files[name] = os.path.join(tmp, name)
                fd = os.open(files[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(inline[name])
            else:
                files[name] = _readable(f"{where}.{name}_file", tls[f"{name}_file"], base)
        try:
            ctx.load_cert_chain(files["cert"], files["key"])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{where}.cert_file/key_file: not a certificate and its "
                              f"key: {getattr(exc, 'reason', None) or exc}") from exc


def _load_client_ca(where: str, tls: dict, base: str, ctx: ssl.SSLContext) -> bool:
    if tls.get("client_ca_file") and tls.get("client_ca"):
        raise ConfigError(f"{where}.client_ca: give client_ca_file or client_ca, not both")
    try:
        if tls.get("client_ca_file"):
            ctx.load_verify_locations(_readable(f"{where}.client_ca_file",
                                                tls["client_ca_file"], base))
        elif tls.get("client_ca"):
            ctx.load_verify_locations(cadata=_string(f"{where}.client_ca", tls["client_ca"]))
        else:
            return False
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.client_ca_file: no CA certificate: "
                          f"{getattr(exc, 'reason', None) or exc}") from exc
    return True


def _ciphers(where: str, tls: dict, ctx: ssl.SSLContext) -> None:
    """cipher_suites (TLS 1.2 and older, as in Go), prefer_server_cipher_suites, curves."""
    if tls.get("cipher_suites") is not None:
        names = _strings(f"{where}.cipher_suites", tls["cipher_suites"])
        for i, name in enumerate(names):
            if name in _TLS13_CIPHERS:
                raise ConfigError(f"{where}.cipher_suites[{i}]: {name} is a TLS 1.3 suite, "
                                  "which cannot be configured (Go ignores it too)")
            if name not in _CIPHERS:
                raise ConfigError(f"{where}.cipher_suites[{i}]: unknown or insecure cipher "
                                  f"suite {name!r} (known: {', '.join(_CIPHERS)})")
        if names:
            try:
                ctx.set_ciphers(":".join(_CIPHERS[n] for n in names))
            except ssl.SSLError as exc:
                raise ConfigError(f"{where}.cipher_suites: not available here: {exc}") from exc
    prefer = _typed(f"{where}.prefer_server_cipher_suites",
                    tls.get("prefer_server_cipher_suites", True), bool, "true or false")
    if prefer:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.get("curve_preferences") is not None:
        curves = _strings(f"{where}.curve_preferences", tls["curve_preferences"])
        for i, name in enumerate(curves):
            if name not in _CURVES:
                raise ConfigError(f"{where}.curve_preferences[{i}]: unknown curve {name!r} "
                                  f"(known: {', '.join(_CURVES)})")
        if len(curves) > 1:
            raise ConfigError(f"{where}.curve_preferences: Python's ssl module can limit the "
                              f"key exchange to one curve only, got {len(curves)}")
        if curves:
            ctx.set_ecdh_curve(_CURVES[curves[0]])


def _http(where: str, raw: Any) -> list[tuple[str, str]]:
    """http2 (a boolean; HTTP/2 is never offered here) and the extra response headers."""
    http = _check_keys(where, raw, {"http2", "headers"})
    if "http2" in http:
        _typed(f"{where}.http2", http["http2"], bool, "true or false")
    out = []
    headers = http.get("headers") or {}
    _typed(f"{where}.headers", headers, dict, "a mapping of header: value")
    for name, value in headers.items():
        key = f"{where}.headers.{name}"
        if name not in _HEADERS:
            raise ConfigError(f"{key}: this header cannot be configured (known: "
                              f"{', '.join(_HEADERS)})")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # X-XSS-Protection: 1
        value = _string(key, value)
        if value and _HEADERS[name] and value not in _HEADERS[name]:
            raise ConfigError(f"{key}: expected one of {', '.join(_HEADERS[name])}, "
                              f"got {value!r}")
        if any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{key}: control characters in the value")
        if value:  # blank: unset, as in exporter-toolkit
            out.append((name, value))
    return out


def _users(where: str, raw: Any) -> dict[str, bytes]:
    users = _typed(where, raw, dict, "a mapping of user: bcrypt hash")
    out = {}
    for user, hashed in users.items():
        if not isinstance(user, str) or not user or ":" in user:
            raise ConfigError(f"{where}.{user}: a user name is a non-empty string without ':'")
        if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            raise ConfigError(f"{where}.{user}: expected a bcrypt hash ($2y$10$ and 53 "
                              "characters, e.g. from htpasswd -nBC 10 \"\"), got something else")
        if not 4 <= int(_BCRYPT.fullmatch(hashed).group(1)) <= 31:
            raise ConfigError(f"{where}.{user}: bcrypt cost must be 4 to 31")
        out[user] = hashed.encode()
    return out


@dataclass
class RateLimit:
    """rate_limit: a token bucket over every request but /healthz (429 when empty)."""

    interval: float
    burst: int
    _tokens: float = 0.0
    _last: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens, self._last = float(self.burst), time.monotonic()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) / self.interval)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def _rate_limit(where: str, raw: Any) -> RateLimit | None:
    limit = _check_keys(where, raw, {"interval", "burst"})
    interval = parse_duration(f"{where}.interval", limit.get("interval", "0s"))
    burst = _typed(f"{where}.burst", limit.get("burst", 0), int, "a whole number")
    if interval == 0:
        return None  # 0 disables the limiter, as in exporter-toolkit
    if burst < 1:
        raise ConfigError(f"{where}.burst: must be at least 1 (0 refuses every request)")
    return RateLimit(interval, burst)


def parse_duration(where: str, value: Any) -> float:
    """A Go duration string ('1s', '1m30s', '250ms') -> seconds."""
    if value == 0 and type(value) is int:  # a bare 0, as exporter-toolkit's examples have
        return 0.0
    text = _typed(where, value, str, "a duration such as 1s or 250ms")
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{where}: expected a duration such as 1s or 250ms, got {text!r}")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes in constant-ish time.

    An unknown user is checked against a dummy hash of the same cost, so both take as long
    (no user enumeration by timing). Successful checks are cached per (user, hash, password)
    as exporter-toolkit does, so scrapes stay fast; one bcrypt at a time (it is CPU-bound).
    """

    _CACHE_MAX = 256

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        cost = max(int(h[4:6]) for h in users.values())
        salt = bcrypt.gensalt(rounds=cost)
        self._dummy = salt + "".join(secrets.choice(_BCRYPT_ALPHABET)
                                     for _ in range(31)).encode()
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()
        self._bcrypt = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True)
        except (ValueError, binascii.Error):
            return False
        user_bytes, sep, password = raw.partition(b":")
        if not sep or len(password) > 72:  # bcrypt reads 72 bytes only: never a match
            return False
        user = user_bytes.decode("utf-8", "replace")
        hashed = self.users.get(user)
        known = hashed is not None
        hashed = hashed if known else self._dummy
        key = hashlib.sha256(b"\0".join((user_bytes, hashed, password))).digest()
        with self._lock:
            if key in self._ok:
                return True
        try:
            with self._bcrypt:
                good = bcrypt.checkpw(password, hashed)
        except ValueError:  # e.g. a NUL byte in the password
            return False
        if good and known:
            with self._lock:
                if len(self._ok) >= self._CACHE_MAX:
                    self._ok.clear()
                self._ok.add(key)
        return good and known

