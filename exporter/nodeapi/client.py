"""One GET against the dashboard API with a total deadline, a size cap and a one-line reason.

`requests` (and http.client under it) applies a timeout to each socket operation, so a node
that drips one byte every half second, in the headers or the body, held a poll for hours.
Here every recv and send is given only what is left of one deadline for the whole request
(connect, TLS handshake, headers, body), so a request ends by `timeout` whatever the peer
does. The one step no deadline reaches is the DNS lookup of a host name (getaddrinfo blocks);
the poller turns `storagenode_up` to 0 while any poll overruns (poller.py).

The body is read into a buffer capped at MAX_BODY: a larger Content-Length is refused before
reading, an unannounced one as soon as the cap is passed. json.loads holds the GIL for its
whole run (a scrape thread waits for it), so the cap and MAX_CONTAINERS also bound that stall:
2 MiB of the costliest JSON (`[],` repeated) took 0.3 s, 50,000 containers take ~25 ms.
JSON with NaN/Infinity or nesting deep enough to exhaust the recursion limit is refused as
malformed; numbers that overflow to inf or are absurd are refused by parse.py.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import unquote, urlsplit

# No answer grows with the node's age: the largest, /api/sno/satellite/{id} and
# /api/sno/satellites, hold one month of daily rollups and 30 days of audit windows
# (reference storagenode-logs-and-api.md §4.2-4.3), about 7 kB from the simulated node and
# some 20 kB from a real one at a month's end. 2 MiB is 100 times that.
MAX_BODY = 2 * 1024 * 1024
MAX_CONTAINERS = 50_000  # arrays + objects; a real answer has a few hundred
CHUNK = 65536

# Bounded values of the `reason` label of storagenode_api_failures_total.
REASONS = ("timeout", "connection", "http_status", "too_large", "malformed")


class ApiError(Exception):
    """A failed request; the message is short enough for one log line, `reason` in REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def printable(text: str, limit: int = 200) -> str:
    """Text from the wire made safe for one log line: control characters escaped, cut short."""
    text = text[:limit]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.at = time.monotonic() + timeout

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


class _DeadlineIO(io.RawIOBase):
    """The socket as http.client reads it: every recv waits at most until the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buf)


class _DeadlineSocket:
    """What http.client needs of a socket (sendall, makefile, close), under one deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineIO(self._sock, self._deadline))

    def close(self) -> None:
        """http.client closes its socket while the response is still read from it (a plain
        socket waits for its makefile readers); get_json closes the real one at the end."""


class _Connection(http.client.HTTPConnection):
    """HTTP or HTTPS connection whose connect, handshake and I/O share one deadline."""

    def __init__(self, host: str, port: int, deadline: _Deadline,
                 context: ssl.SSLContext | None) -> None:
        super().__init__(host, port)
        self._deadline = deadline
        self._context = context
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self._deadline.left())
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock.settimeout(self._deadline.left())  # CPython: total for the handshake
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.raw = sock
        self.sock = _DeadlineSocket(sock, self._deadline)  # type: ignore[assignment]


def _tls_context() -> ssl.SSLContext:
    """The CA bundle requests used (certifi) when installed, else the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


_TLS = _tls_context()


def get_json(url: str, timeout: float, headers: dict[str, str] | None = None,
             max_body: int = MAX_BODY) -> Any:
    """GET `url` and decode JSON, or raise ApiError, within `timeout` seconds in all."""
    deadline = _Deadline(timeout)
    parts = urlsplit(url)
    https = parts.scheme == "https"
    send = {"Accept": "application/json", "Connection": "close", **(headers or {})}
    if parts.username is not None:  # a reverse proxy with basic auth in front of the API
        cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        send["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _Connection(parts.hostname or "", parts.port or (443 if https else 80), deadline,
                       _TLS if https else None)
    stage = "connecting"
    body = bytearray()
    try:
        conn.request("GET", path, headers=send)
        stage = "waiting for the answer"
        resp = conn.getresponse()
        stage = "answer still arriving"
        length = resp.getheader("Content-Length", "")
        if length.strip().isdigit() and int(length) > max_body:
            raise ApiError("too_large", f"answer larger than {max_body} bytes "
                           f"(Content-Length {int(length)}), not read")
        while chunk := resp.read(CHUNK):
            body += chunk
            if len(body) > max_body:
                raise ApiError("too_large", f"answer larger than {max_body} bytes, "
                               "stopped reading")
        if resp.length:  # http.client returns b"" at an early EOF within Content-Length
            raise http.client.IncompleteRead(b"", resp.length)
    except TimeoutError as exc:  # socket.timeout is TimeoutError
        got = f", {len(body)} bytes in" if body else ""
        raise ApiError("timeout", f"timed out after {timeout:g}s ({stage}{got})") from exc
    except http.client.IncompleteRead as exc:
        raise ApiError("connection", f"answer cut off after {len(body) + len(exc.partial)} "
                       "bytes") from exc
    except (OSError, http.client.HTTPException) as exc:
        what = "cannot connect" if stage == "connecting" else f"failed {stage}"
        raise ApiError("connection", f"{what}: {printable(str(exc) or type(exc).__name__)}"
                       ) from exc
    finally:
        conn.close()
        if conn.raw is not None:
            conn.raw.close()
    if resp.status != 200:
        raise ApiError("http_status", _error_text(resp.status, bytes(body)))
    ctype = resp.getheader("Content-Type", "")
    if "html" in ctype.lower() or body.lstrip()[:1] == b"<":
        shown = printable(ctype, 80) or "no content type"
        raise ApiError("malformed", f"answered HTML, not JSON ({shown}); "
                       "is this the dashboard address (port 14002)?")
    media = ctype.split(";")[0].strip().lower()
    if media and not (media.endswith("/json") or media.endswith("+json")):
        raise ApiError("malformed", f"answered {printable(media, 80)}, not application/json")
    return decode_json(bytes(body))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the node sends")


def decode_json(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, bounded nesting and number of arrays and objects."""
    containers = body.count(b"[") + body.count(b"{")  # ~1 ms per MiB; strings count too
    if containers > MAX_CONTAINERS:
        raise ApiError("malformed", f"{containers} JSON arrays/objects in {len(body)} bytes, "
                       f"more than {MAX_CONTAINERS}; not parsed")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ApiError("malformed", f"invalid JSON ({len(body)} bytes): nested too deeply"
                       ) from exc
    except ValueError as exc:
        raise ApiError("malformed", f"invalid JSON ({len(body)} bytes): "
                       f"{printable(str(exc), 120)}") from exc


def _error_text(status: int, body: bytes) -> str:
    """The node answers errors as {"error": "..."}; anything else is summarised."""
    try:
        text = decode_json(body).get("error", "")
    except (ApiError, AttributeError):
        text = ""
    text = printable(" ".join(str(text).split()))  # one log line, whatever the node sent
    return f"HTTP {status}" + (f": {text}" if text else "")
