"""The HTTP side: status page, /metrics and /healthz, served so no client can stall it.

The server is the stdlib's (wsgiref, one thread per connection) with the limits it lacks:
- the TLS handshake runs in the connection's thread, not in the accepting one, so a socket
  that never sends a ClientHello delays nobody;
- a total deadline for the handshake, request line and headers (`READ_HEADER_TIMEOUT`, like
  Go's ReadHeaderTimeout): idle and slowloris clients are cut off, whatever their pace;
- a bound on connections (`MAX_CONNECTIONS`): beyond it the oldest connection that has not
  sent its request yet is closed to make room, so a flood of idle sockets neither grows the
  thread count nor locks a scraper out (a scrape sends its request within milliseconds).
A watchdog thread enforces the deadlines by shutting the sockets down. Both limits can be
set through the environment (seconds, count) for tests or unusual setups.

`--web.config.file` (TLS, basic auth, headers, rate limit) is exporter/webconfig.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

from exporter.config import ConfigError, parse_listen_address
from exporter.webconfig import BasicAuth, WebConfig, load_web_config
from logstream.listen import is_loopback

__all__ = ["WebConfig", "load_web_config", "make_app", "serve"]

log = logging.getLogger("exporter.http")

READ_HEADER_TIMEOUT_ENV = "STORAGENODE_EXPORTER_WEB_READ_HEADER_TIMEOUT"
MAX_CONNECTIONS_ENV = "STORAGENODE_EXPORTER_WEB_MAX_CONNECTIONS"
READ_HEADER_TIMEOUT = 10.0  # handshake + request line + headers, in total
WRITE_TIMEOUT = 60.0  # from the end of the headers to the end of the response
MAX_CONNECTIONS = 64
REPORT_EVERY = 60.0  # at most one log line a minute about cut-off clients

_TEXT = ("Content-Type", "text/plain; charset=utf-8")


def make_app(registry: CollectorRegistry, status=None, web: WebConfig | None = None, *,
             metrics_path: str = "/metrics", log_collector=None):
    """WSGI app: `/` status page, `/api/status` (the same as JSON), the metrics, `/healthz`.

    `status` is an exporter.status.Status (None: a page without nodes). `/healthz` answers to
    anyone (it says "ok" and nothing else), so a container health check works with auth on;
    everything else needs the basic-auth credentials when configured.
    """
    from exporter import statuspage

    metrics = _metrics_app(registry, log_collector)
    auth = BasicAuth(web.users) if web and web.users else None
    limit = web.rate_limit if web else None
    extra = list(web.headers) if web else []

    def document() -> dict:
        if status is not None:
            return status.document()
        from exporter.status import empty_document

        return empty_document(metrics_path)

    def routes(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [_TEXT])
            return [b"ok\n"]
        if limit is not None and not limit.allow():
            start_response("429 Too Many Requests", [_TEXT])
            return [b"Too Many Requests\n"]
        if auth is not None and not auth.check(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [
                ("WWW-Authenticate", 'Basic realm="storagenode-exporter"'), _TEXT])
            return [b"Unauthorized\n"]
        if path == metrics_path:
            return metrics(environ, start_response)
        if path in ("/", ""):
            page = statuspage.render(document())
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Cache-Control", "no-store")])
            return [page]
        if path == "/api/status":
            body = json.dumps(document(), indent=1).encode() + b"\n"
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Cache-Control", "no-store")])
            return [body]
        start_response("404 Not Found", [_TEXT])
        return [b"Not Found\n"]

    if not extra:
        return routes

    def app(environ, start_response):
        def with_headers(status, headers, exc_info=None):
            return start_response(status, headers + extra, exc_info)

        return routes(environ, with_headers)

    return app


@dataclass
class _Conn:
    deadline: float
    pending: bool = True  # still in the handshake or the request headers
    cut: bool = False  # shut down by the watchdog or to make room


class _Connections:
    """The open connections, their deadlines, and the watchdog that enforces them."""

    def __init__(self, limit: int, header_timeout: float) -> None:
        self.limit = limit
        self.header_timeout = header_timeout
        self._conns: dict[socket.socket, _Conn] = {}
        self._cond = threading.Condition()
        self._counts: dict[str, int] = {}
        self._reported = float("-inf")
        threading.Thread(target=self._watch, name="http-watchdog", daemon=True).start()

    def admit(self, sock: socket.socket) -> bool:
        """Register a new connection; False (close it) only when all slots are serving."""
        with self._cond:
            live = [(c.deadline, s) for s, c in self._conns.items() if not c.cut]
            if len(live) >= self.limit:
                pending = [(d, s) for d, s in live if self._conns[s].pending]
                if not pending or len(self._conns) >= 2 * self.limit:
                    self._note("refused (every connection busy)")
                    return False
                self._cut(min(pending, key=lambda item: item[0])[1],
                          f"closed to make room (more than {self.limit} connections)")
            self._conns[sock] = _Conn(time.monotonic() + self.header_timeout)
            self._cond.notify()
            return True

    def serving(self, sock: socket.socket) -> None:
        """The request headers are in: the response gets its own deadline."""
        with self._cond:
            conn = self._conns.get(sock)
            if conn is not None:
                conn.pending = False
                conn.deadline = time.monotonic() + WRITE_TIMEOUT

    def release(self, sock: socket.socket) -> None:
        """Forget the connection; called before it is closed, so a cut never hits a reused fd."""
        with self._cond:
            self._conns.pop(sock, None)

    def note(self, what: str) -> None:
        with self._cond:
            self._note(what)
            self._cond.notify()

    def _note(self, what: str) -> None:
        self._counts[what] = self._counts.get(what, 0) + 1

    def _cut(self, sock: socket.socket, why: str) -> None:
        self._conns[sock].cut = True
        self._note(why)
        # the base method: SSLSocket.shutdown would drop its TLS state under the worker
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _watch(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for sock, conn in list(self._conns.items()):
                    if not conn.cut and conn.deadline <= now:
                        self._cut(sock, f"no complete request within {self.header_timeout:g} s"
                                  if conn.pending else
                                  f"response not taken within {WRITE_TIMEOUT:g} s")
                if self._counts and now - self._reported >= REPORT_EVERY:
                    log.warning("HTTP clients cut off%s: %s",
                                "" if self._reported < 0 else f" in the last {REPORT_EVERY:g} s",
                                ", ".join(f"{n} {what}" for what, n in self._counts.items()))
                    self._counts.clear()
                    self._reported = now
                waits = [c.deadline - now for c in self._conns.values() if not c.cut]
                if self._counts:
                    waits.append(self._reported + REPORT_EVERY - now)
                self._cond.wait(max(0.01, min(waits)) if waits else None)


class _ServerHandler(ServerHandler):
    def log_exception(self, exc_info) -> None:
        """One line instead of a traceback on stderr (the client gets a 500)."""
        log.error("HTTP %r failed: %s: %s", self.environ.get("PATH_INFO", "?")[:200],
                  exc_info[0].__name__, exc_info[1])


class _Handler(WSGIRequestHandler):
    """One request per connection (HTTP/1.0), with the header deadline ended at the headers."""

    def log_message(self, format, *args):
        pass

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        self.server.connections.serving(self.request)
        self.request.settimeout(WRITE_TIMEOUT)
        handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
                                 multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class _Server(WSGIServer):
    """wsgiref's server, a thread per admitted connection, TLS per connection."""

    def reconfigure(self, app, web: WebConfig | None) -> None:
        """A reloaded web config: new connections get its TLS context and the new app
        (users, headers); connections under way finish with the old ones."""
        self.tls, self.web = (web.tls if web else None), web
        self.set_app(app)

    request_queue_size = 128
    daemon_threads = True

    def __init__(self, address, tls: ssl.SSLContext | None, web: WebConfig | None,
                 connections: _Connections) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.tls, self.web, self.connections = tls, web, connections
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address) -> None:
        request.settimeout(self.connections.header_timeout)
        if self.tls is not None:
            try:  # no I/O here: the handshake happens in the connection's thread
                request = self.tls.wrap_socket(request, server_side=True,
                                               do_handshake_on_connect=False)
            except OSError:
                request.close()
                return
        if not self.connections.admit(request):
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve, args=(request, client_address),
                         name="http-conn", daemon=True).start()

    def _serve(self, sock: socket.socket, client_address) -> None:
        try:
            if isinstance(sock, ssl.SSLSocket):
                try:
                    sock.do_handshake()
                except ssl.SSLError as exc:
                    self.connections.note(f"TLS handshake failed ({exc.reason or 'error'})")
                    return
                if not self.web.peer_allowed(sock):
                    self.connections.note("client certificate without an allowed SAN")
                    return
            self.finish_request(sock, client_address)
        except OSError as exc:  # resets, timeouts, sockets the watchdog shut down
            log.debug("HTTP connection from %s: %s", client_address[0], exc)
        except Exception as exc:  # one line, never a traceback per client
            log.error("HTTP connection from %s: %s: %s", client_address[0],
                      type(exc).__name__, exc)
        finally:
            self.connections.release(sock)
            self.shutdown_request(sock)


def _metrics_app(registry: CollectorRegistry, log_collector):
    """prometheus_client's /metrics app, with the fast path of exporter/exposition.py for
    text-format GETs when the LogCollector is given (OpenMetrics-only clients, name[]
    filters and other methods keep prometheus_client's own handling)."""
    from prometheus_client.exposition import gzip_accepted

    from exporter import exposition

    full = make_wsgi_app(registry)
    if log_collector is None:
        return full
    gz = exposition.Gzip()

    def metrics(environ, start_response):
        if (environ.get("REQUEST_METHOD") != "GET" or "name[]" in environ.get("QUERY_STRING", "")
                or not exposition.wants_text(environ.get("HTTP_ACCEPT"))):
            return full(environ, start_response)
        zipped = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING"))
        output, headers = exposition.body(log_collector, registry, gz if zipped else None)
        start_response("200 OK", headers)
        return [output]

    return metrics


def _env_limit(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"${name}: expected a positive {kind.__name__}, got {raw!r}")
    return value


def serve(app, listen_address: str, web: WebConfig | None = None, *,
          max_connections: int | None = None, read_header_timeout: float | None = None):
    """Start the HTTP server in a daemon thread; returns (server, thread). The limits
    default to the environment, then to MAX_CONNECTIONS / READ_HEADER_TIMEOUT."""
    host, port = parse_listen_address(listen_address)
    connections = _Connections(
        max_connections or int(_env_limit(MAX_CONNECTIONS_ENV, MAX_CONNECTIONS, int)),
        read_header_timeout or _env_limit(READ_HEADER_TIMEOUT_ENV, READ_HEADER_TIMEOUT, float),
    )
    try:
        httpd = _Server((host, port), web.tls if web else None, web, connections)
    except OSError as exc:
        raise ConfigError(f"--web.listen-address {listen_address}: {exc.strerror}") from exc
    httpd.set_app(app)
    if not is_loopback(host) and not (web and web.authenticated):
        log.warning(
            "listening on %s without authentication, as asked; set --web.config.file for "
            "TLS and basic auth", listen_address,
        )
    thread = threading.Thread(target=httpd.serve_forever, name="http", daemon=True)
    thread.start()
    return httpd, thread
