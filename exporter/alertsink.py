"""`python -m exporter.alertsink`: the demo stack's alert receiver (an Alertmanager webhook).

The demo's alerts need somewhere real to go: not example.org receivers that fail every
minute, and no account to set up. docker-compose.yml runs this from the exporter's own image
as `demo-receiver`; prometheus/alertmanager-demo.yml sends every notification here. It logs
one line per alert (status, name, node, severity, summary: all escaped, they come from the
wire), keeps the last notifications in memory and shows them at GET /alerts (JSON), so the
demo can be seen to alert end to end. Standard library only; not a production receiver.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from exporter.config import ConfigError, parse_listen_address
from logstream.logsetup import setup as setup_logging
from logstream.protocol import printable

log = logging.getLogger("exporter.alertsink")

MAX_BODY = 1 << 20  # Alertmanager's notifications are a few KiB
KEEP = 200


class Sink:
    """The notifications received, newest last."""

    def __init__(self, keep: int = KEEP) -> None:
        self.notifications: collections.deque[dict] = collections.deque(maxlen=keep)
        self.lock = threading.Lock()

    def receive(self, payload: dict) -> None:
        alerts = payload.get("alerts")
        if not isinstance(alerts, list):
            raise ValueError("no alerts list")
        for alert in alerts:
            labels = alert.get("labels") if isinstance(alert, dict) else None
            labels = labels if isinstance(labels, dict) else {}
            annotations = alert.get("annotations") if isinstance(alert, dict) else None
            annotations = annotations if isinstance(annotations, dict) else {}
            log.info("alert %s: %s node=%s severity=%s: %s",
                     printable(alert.get("status", "?") if isinstance(alert, dict) else "?"),
                     printable(labels.get("alertname", "?")), printable(labels.get("node", "")),
                     printable(labels.get("severity", "")),
                     printable(annotations.get("summary", "")))
        with self.lock:
            self.notifications.append({"received": time.time(), **payload})

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.notifications)


def make_handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, b"ok\n")
            elif self.path in ("/", "/alerts"):
                self._reply(200, json.dumps(sink.snapshot(), indent=1).encode(),
                            "application/json")
            else:
                self._reply(404, b"Not Found\n")

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or -1)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._reply(413 if length > MAX_BODY else 411, b"bad length\n")
                return
            try:
                payload = json.loads(self.rfile.read(length))
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
                sink.receive(payload)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                log.warning("not an Alertmanager notification from %s: %s",
                            self.client_address[0], printable(str(exc)))
                self._reply(400, b"expected an Alertmanager webhook notification\n")
                return
            self._reply(200, b"ok\n")

        def log_message(self, format, *args) -> None:
            pass

    return Handler


def serve(listen: str, sink: Sink) -> ThreadingHTTPServer:
    host, port = parse_listen_address(listen, "--listen")

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        return Server((host, port), make_handler(sink))
    except OSError as exc:
        raise ConfigError(f"--listen {listen}: {exc.strerror}") from exc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m exporter.alertsink", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:9095", metavar="HOST:PORT",
                   help="where Alertmanager posts (default 127.0.0.1:9095)")
    p.add_argument("--check", action="store_true",
                   help="health check: GET /healthz of the sink on --listen, exit 0 or 1")
    args = p.parse_args(argv)
    if args.check:
        from exporter.healthcheck import check, healthz_url

        return 0 if check(healthz_url(args.listen, None), 4.0) else 1
    setup_logging("info")
    try:
        server = serve(args.listen, Sink())
    except ConfigError as exc:
        print(f"alertsink: error: {exc}", file=sys.stderr)
        return 2
    # PID 1 in a container: SIGTERM has no default action there, so `docker stop` needs this.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("receiving Alertmanager webhooks on http://%s/ (received: GET /alerts)", args.listen)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
