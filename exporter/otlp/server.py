"""The OTLP/HTTP log listener: POST /v1/logs (or /v1/logs/NODE), protobuf or JSON, gzip.

It runs on its own port with the server of exporter/http.py (TLS handshake per connection,
header deadline, connection bound) and the auth of a `--web.config.file`-style file.
Limits, each answered before the records are touched:
- the body as sent: `MAX_BODY` (413, refused from Content-Length before it is read);
- the body after gzip: `MAX_DECODED` (413: a gzip bomb stops at the cap, never inflated);
- records in one request: `MAX_RECORDS` (413), and one request decoded at a time, so the
  worst request (4 MiB of empty records) costs ~300 MB once, not once per connection.
A request is answered 200 only after its records are applied to the nodes' state (see
exporter/sources/otlp.py); records for a node that is not an OTLP node here are refused in
the response's `partial_success` (so the sender does not retry them) and counted.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import defaultdict

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from exporter.otlp.convert import LineMaker, attribute, logger_of
from exporter.sources.otlp import HUB, Hub
from exporter.webconfig import BasicAuth, WebConfig

log = logging.getLogger("exporter.otlp")

MAX_BODY = 4 << 20
MAX_DECODED = 4 << 20
MAX_RECORDS = 50_000
MAX_DRAIN = 64 << 20  # a refused body up to this size is read (and dropped) before the 413
#: how long a request waits for the nodes to apply its records before answering 503
APPLY_TIMEOUT = 10.0
PATH = "/v1/logs"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
RESULTS = ("ok", "partial", "too_large", "malformed", "unsupported", "unauthorized",
           "rate_limited", "not_found", "busy")

_TEXT = [("Content-Type", "text/plain; charset=utf-8")]


class TooLarge(Exception):
    pass


class Stats:
    """Counters for storagenode_otlp_* (read by OtlpCollector at scrape time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = dict.fromkeys(RESULTS, 0)
        self.records: dict[str, int] = defaultdict(int)  # node -> records applied
        self.rejected: dict[str, int] = defaultdict(int)  # reason -> records refused

    def count(self, result: str) -> None:
        with self.lock:
            self.requests[result] += 1


def drain(stream, length: int) -> None:
    """Read and drop a refused body, so the sender gets to read our 413 instead of a broken
    pipe (which it would retry); past MAX_DRAIN the connection is simply closed."""
    if length > MAX_DRAIN:
        return
    while length > 0:
        chunk = stream.read(min(length, 1 << 16))
        if not chunk:
            return
        length -= len(chunk)


def inflate(body: bytes, limit: int) -> bytes:
    """gunzip `body` to at most `limit` bytes: TooLarge past it, ValueError if damaged."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"gzip: {exc}") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise TooLarge(f"more than {limit} bytes after gzip")
    if not decoder.eof:
        raise ValueError("gzip: truncated")
    return out


def decode(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    if content_type == PROTOBUF:
        request.ParseFromString(body)
    else:
        json_format.Parse(body.decode("utf-8"), request, ignore_unknown_fields=True)
    return request


class OtlpApp:
    """The WSGI app of the listener."""

    def __init__(self, node_attribute: str, web: WebConfig | None, hub: Hub = HUB,
                 stats: Stats | None = None) -> None:
        self.node_attribute = node_attribute
        self.hub = hub
        self.stats = stats or Stats()
        self.auth = BasicAuth(web.users) if web and web.users else None
        self.limit = web.rate_limit if web else None
        self.extra = list(web.headers) if web else []
        self._decoding = threading.Lock()
        self._reported: set[str] = set()

    def __call__(self, environ, start_response):
        status, headers, body = self.handle(environ)
        start_response(status, headers + self.extra)
        return [body]

    def _fail(self, result: str, status: str, text: str, headers=()) -> tuple:
        self.stats.count(result)
        return status, [*_TEXT, *headers], text.encode() + b"\n"

    def handle(self, environ) -> tuple[str, list, bytes]:
        path = environ.get("PATH_INFO", "")
        node = None
        if path.startswith(PATH + "/"):
            node = path[len(PATH) + 1:]
        elif path != PATH:
            return self._fail("not_found", "404 Not Found", "not found: POST /v1/logs")
        if self.limit is not None and not self.limit.allow():
            return self._fail("rate_limited", "429 Too Many Requests", "too many requests",
                              [("Retry-After", "1")])
        if self.auth is not None and not self.auth.check(environ.get("HTTP_AUTHORIZATION")):
            return self._fail("unauthorized", "401 Unauthorized", "unauthorized",
                              [("WWW-Authenticate", 'Basic realm="storagenode-exporter"')])
        if environ.get("REQUEST_METHOD") != "POST":
            return self._fail("unsupported", "405 Method Not Allowed", "POST only",
                              [("Allow", "POST")])
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type not in (PROTOBUF, JSON):
            return self._fail("unsupported", "415 Unsupported Media Type",
                              f"expected {PROTOBUF} or {JSON}")
        encoding = environ.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            return self._fail("unsupported", "415 Unsupported Media Type",
                              "Content-Encoding: gzip or none")
        try:
            length = int(environ.get("CONTENT_LENGTH") or "-1")
        except ValueError:
            length = -1
        if length < 0:
            return self._fail("malformed", "411 Length Required", "Content-Length required")
        if length > MAX_BODY:
            drain(environ["wsgi.input"], length)
            return self._fail("too_large", "413 Content Too Large",
                              f"body over {MAX_BODY} bytes")
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            return self._fail("malformed", "400 Bad Request", "body shorter than Content-Length")
        with self._decoding:
            try:
                if encoding == "gzip":
                    body = inflate(body, MAX_DECODED)
                request = decode(body, content_type)
            except TooLarge as exc:
                return self._fail("too_large", "413 Content Too Large", str(exc))
            except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
                self._note("malformed", f"a request that is not OTLP logs "
                           f"({type(exc).__name__}: {str(exc)[:120]!r})")
                return self._fail("malformed", "400 Bad Request", "not an OTLP logs request")
            del body
            groups, total, rejected = self._lines(request, node)
            del request
        if total > MAX_RECORDS:
            return self._fail("too_large", "413 Content Too Large",
                              f"more than {MAX_RECORDS} log records")
        return self._deliver(groups, rejected, content_type)

    def _lines(self, request, path_node: str | None):
        """Records grouped by node as (lines, times); refused records by reason."""
        groups: dict[str, tuple[list[str], list[float]]] = {}
        rejected: dict[str, int] = defaultdict(int)
        names = self.hub.names()
        maker = LineMaker()
        total = 0
        for resource_logs in request.resource_logs:
            node = path_node
            if node is None:
                node = attribute(resource_logs.resource.attributes, self.node_attribute)
            count = sum(len(s.log_records) for s in resource_logs.scope_logs)
            total += count
            if total > MAX_RECORDS:
                return {}, total, {}
            if node not in names:
                rejected["no_node" if node is None else "unknown_node"] += count
                self._note(f"node:{node}", "records for a node that is not an OTLP node here "
                           f"({self.node_attribute}={str(node)[:64]!r}); refused")
                continue
            lines, times = groups.setdefault(node, ([], []))
            for scope_logs in resource_logs.scope_logs:
                logger = logger_of(scope_logs.scope.name)
                for record in scope_logs.log_records:
                    line, when = maker.line(record, logger)
                    lines.append(line)
                    times.append(when)
        return groups, total, rejected

    def _deliver(self, groups, rejected: dict[str, int], content_type: str) -> tuple:
        deliveries = []
        for node, (lines, times) in groups.items():
            delivery = self.hub.submit(node, lines, times)
            if delivery is None:
                return self._fail("busy", "503 Service Unavailable", f"node {node} is busy",
                                  [("Retry-After", "2")])
            deliveries.append((node, len(lines), delivery))
        for node, _, delivery in deliveries:
            if not delivery.done.wait(APPLY_TIMEOUT):
                # those already queued are applied later: a retry can count them twice
                return self._fail("busy", "503 Service Unavailable", f"node {node} is busy",
                                  [("Retry-After", "2")])
        refused = sum(rejected.values())
        with self.stats.lock:
            for node, count, _ in deliveries:
                self.stats.records[node] += count
            for reason, count in rejected.items():
                self.stats.rejected[reason] += count
            self.stats.requests["partial" if refused else "ok"] += 1
        response = ExportLogsServiceResponse()
        if refused:
            response.partial_success.rejected_log_records = refused
            response.partial_success.error_message = (
                f"{refused} record(s) name no node read over OTLP here")
        if content_type == PROTOBUF:
            body = response.SerializeToString()
        else:
            body = json_format.MessageToJson(response, indent=None).encode()
        return "200 OK", [("Content-Type", content_type)], body

    def _note(self, key: str, text: str) -> None:
        """One log line per kind of problem (a sender repeats its mistake every batch)."""
        if key in self._reported or len(self._reported) > 100:
            return
        self._reported.add(key)
        log.warning("OTLP listener: %s", text)
