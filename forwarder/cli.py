"""`storagenode-log-forwarder`: serve a node's log to the exporter over TCP.

Secrets never come from argv (other users can read it in `ps`): the token is read from
`--token-file` or the STORAGENODE_FORWARDER_TOKEN environment variable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import ssl
import sys
import time

from forwarder import __version__
from forwarder.server import ForwarderServer, Settings
from forwarder.tail import LogSpec
from logstream.listen import is_loopback
from logstream.logsetup import setup as setup_logging
from logstream.protocol import DEFAULT_PORT, TOKEN_ENV, read_token_file

log = logging.getLogger("forwarder")

DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"


class UsageError(Exception):
    """A wrong flag or file; the message says which."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="storagenode-log-forwarder",
        description="Stream a storagenode's log to storagenode-exporter (`--node "
        "NAME:tcp://HOST:PORT` there): authenticated, optionally TLS, resumable without loss.",
    )
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--log", action="append", default=[], metavar="NAME=PATH", required=True,
                   help="a log to serve under NAME (the exporter's node name): a file path or "
                   "docker:PATH for a Docker json-file log; repeatable")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port defaults to "
                   f"{DEFAULT_PORT}, ':PORT' means all interfaces)")
    p.add_argument("--token-file", metavar="FILE",
                   help=f"file holding the shared token (or set ${TOKEN_ENV})")
    p.add_argument("--insecure-no-auth", action="store_true",
                   help="allow a non-loopback listen address without a token")
    p.add_argument("--tls-cert", metavar="FILE", help="TLS certificate (PEM, with chain)")
    p.add_argument("--tls-key", metavar="FILE", help="TLS private key (PEM)")
    p.add_argument("--tls-client-ca", metavar="FILE",
                   help="require client certificates signed by this CA (PEM)")
    p.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS",
                   help="ping an idle client this often; drop it after 4 silent periods "
                   "(default 5)")
    p.add_argument("--poll-interval", type=float, default=0.05, metavar="SECONDS",
                   help="how often to look for new lines (default 0.05)")
    p.add_argument("--max-clients", type=int, default=16,
                   help="concurrent authenticated clients (default 16)")
    p.add_argument("--max-handshakes", type=int, default=8, metavar="N",
                   help="connections not yet authenticated; when full, a new one takes the "
                   "place of the oldest (default 8)")
    p.add_argument("--handshake-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="time from connect to authenticated and subscribed, TLS included "
                   "(default 5)")
    p.add_argument("--log.level", dest="log_level", default="info",
                   choices=["debug", "info", "warn", "error"])
    return p


def parse_log(value: str) -> LogSpec:
    name, sep, path = value.partition("=")
    if not sep or not path:
        raise UsageError(f"--log {value}: expected NAME=PATH or NAME=docker:PATH")
    if not all(c.isalnum() or c in "-_." for c in name) or not name:
        raise UsageError(f"--log {value}: NAME must be letters, digits, '-', '_' or '.'")
    docker = path.startswith("docker:")
    if docker:
        path = path[len("docker:"):]
        if not path:
            raise UsageError(f"--log {value}: expected docker:PATH")
    return LogSpec(name, os.path.abspath(path), docker)


def parse_listen(value: str) -> tuple[str, int]:
    """`ADDR:PORT`, `ADDR`, `:PORT` or `[v6]:PORT` -> (host, port)."""
    if value.startswith("[") and "]" in value:
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(DEFAULT_PORT)
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    elif ":" in value:  # a bare IPv6 address
        host, port = value, str(DEFAULT_PORT)
    else:
        host, port = value, str(DEFAULT_PORT)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {value}: expected ADDR:PORT")
    return host or "0.0.0.0", int(port)


def load_token(args: argparse.Namespace) -> bytes | None:
    if args.token_file:
        try:
            return read_token_file(args.token_file)
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise UsageError(f"--token-file: {exc}") from exc
    value = os.environ.get(TOKEN_ENV, "").strip()
    return value.encode() if value else None


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.tls_cert or args.tls_key or args.tls_client_ca):
        return None
    if not (args.tls_cert and args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert/--tls-key: cannot load: {exc}") from exc
    if args.tls_client_ca:
        try:
            ctx.load_verify_locations(args.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--tls-client-ca {args.tls_client_ca}: cannot load: {exc}") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def build(args: argparse.Namespace) -> tuple[Settings, tuple[str, int]]:
    logs: dict[str, LogSpec] = {}
    for value in args.log:
        spec = parse_log(value)
        if spec.name in logs:
            raise UsageError(f"--log {value}: NAME {spec.name!r} given twice")
        logs[spec.name] = spec
    host, port = parse_listen(args.listen)
    token = load_token(args)
    if token is not None and args.insecure_no_auth:
        raise UsageError("--insecure-no-auth given together with a token; choose one")
    if token is None and not is_loopback(host) and not args.insecure_no_auth:
        raise UsageError(
            f"--listen {args.listen}: refusing to serve logs on a non-loopback address without "
            f"authentication; give --token-file (or ${TOKEN_ENV}), or --insecure-no-auth if "
            "the network is trusted"
        )
    if min(args.heartbeat, args.poll_interval, args.max_clients, args.max_handshakes,
           args.handshake_timeout) <= 0:
        raise UsageError("--heartbeat, --poll-interval, --max-clients, --max-handshakes and "
                         "--handshake-timeout must be positive")
    settings = Settings(
        logs=logs, token=token, tls=tls_context(args), heartbeat=args.heartbeat,
        dead_after=4 * args.heartbeat, poll_interval=args.poll_interval,
        max_clients=args.max_clients, max_pending=args.max_handshakes,
        handshake_timeout=args.handshake_timeout,
    )
    return settings, (host, port)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # a burst of connects waits here, not in SYN retries
    except OSError as exc:
        sock.close()
        raise UsageError(f"--listen {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        settings, (host, port) = build(args)
        listener = listen(host, port)
    except UsageError as exc:
        print(f"storagenode-log-forwarder: error: {exc}", file=sys.stderr)
        return 2
    server = ForwarderServer(settings, listener)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.closing.set())
    bound = listener.getsockname()
    auth = "token" if settings.token else "no authentication"
    if settings.token is None and not is_loopback(host):
        log.warning("listening on %s without authentication, as asked (--insecure-no-auth)",
                    host)
    log.info("listening on %s:%d (%s%s); logs: %s", host, bound[1], auth,
             ", TLS" if settings.tls else "",
             ", ".join(f"{s.name}={'docker:' if s.docker else ''}{s.path}"
                       for s in settings.logs.values()))
    server.serve_forever()
    log.info("shutting down")
    server.shutdown()
    deadline = time.monotonic() + 2.0
    while server.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
