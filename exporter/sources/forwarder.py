"""A node's log streamed by storagenode-log-forwarder (`--node NAME:tcp://HOST:PORT`).

The source is the TCP client of logstream/protocol.py. Each batch carries the forwarder's file
position after its last line; on every (re)connection the source sends the position of the
last batch it handed out, so the forwarder continues exactly there, across its own restarts,
network cuts, exporter restarts (the checkpoint holds the same position) and rotations that
happened meanwhile. Lines carry the forwarder's read times, so durations are as precise as
local tailing. Connection failures are retried with capped exponential backoff; they never
raise out of `batches()`. With a token, every frame after the handshake is authenticated
(logstream/protocol.py FrameMac): a changed, injected or replayed frame drops the connection
before any of its lines is handed out, and the reconnection resumes at the last good batch.
Everything the forwarder sends that reaches a log line goes through `printable`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from exporter.config import Config, ConfigError, NodeConfig
from logstream.protocol import (
    MAX_FRAME,
    MAX_HANDSHAKE_FRAME,
    TOKEN_ENV,
    VERSION,
    FrameMac,
    FrameReader,
    ProtocolError,
    client_proof,
    encode,
    expect,
    new_nonce,
    printable,
    proof_ok,
    read_token_file,
    server_proof,
    session_keys,
)
from logstream.source import Batch, Source

log = logging.getLogger("exporter.source.forwarder")

_TLS_KEYS = ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name",
             "tls_insecure_skip_verify")


_Send = Callable[[dict[str, Any]], None]


class _Refused(Exception):
    """The forwarder or this side refused the session (auth, unknown log, version)."""


class ForwarderSource(Source):
    def __init__(
        self,
        host: str,
        port: int,
        log_name: str,
        *,
        token: bytes | None = None,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
        resume: dict[str, Any] | None = None,
        from_start: bool = False,
        heartbeat: float = 5.0,
        dead_after: float = 20.0,
        connect_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__()
        self.host, self.port, self.log_name = host, port, log_name
        self.token = token
        self.tls = tls
        self.server_name = server_name or host
        self.from_start = from_start
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.address = where
        self.description = f"forwarder {'tls' if tls else 'tcp'}://{where} (log {log_name})"
        self._position: dict[str, Any] | None = None
        if resume is not None:
            if isinstance(resume, dict) and resume.get("log") == log_name and isinstance(
                resume.get("file"), dict
            ):
                self._position = resume
            else:
                log.warning("%s: saved position %s is not for this log; starting fresh",
                            self.description, printable(resume))

    # ---- configuration -------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, node: NodeConfig, config: Config, resume: dict | None
    ) -> ForwarderSource:
        """Build from `--node NAME:tcp://HOST:PORT` plus the node's `forwarder:` settings."""
        spec = node.log or ""
        host, _, port = spec[len("tcp://"):].rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit():
            raise ConfigError(f"node {node.name}: expected tcp://HOST:PORT, got {spec!r}")
        options = node.forwarder or {}
        return cls(
            host, int(port), node.name,
            token=_load_token(node, config),
            tls=_tls_context(node.name, options),
            server_name=options.get("tls_server_name"),
            resume=resume,
            from_start=node.from_start,
        )

    def position(self) -> dict[str, Any] | None:
        """Resume point after the last batch handed out: {"log": NAME, "file": {...}}."""
        return self._position

    # ---- reading -------------------------------------------------------------------------

    def batches(self, stop: threading.Event) -> Iterator[Batch]:
        delay = self.backoff_initial
        sessions = 0
        failure = ""
        while not stop.is_set():
            try:
                sock, reader, ready, send = self._connect()
            except (OSError, ProtocolError, _Refused) as exc:
                self.stats.up = False
                reason = _describe(exc)
                if reason != failure:  # one message per outage (and per new reason)
                    level = logging.ERROR if isinstance(exc, _Refused) else logging.WARNING
                    log.log(level, "%s: cannot connect: %s; retrying with backoff up to %gs",
                            self.description, reason, self.backoff_max)
                    failure = reason
                stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            if sessions:
                self.stats.reconnects += 1
            sessions += 1
            failure = ""
            self.stats.up = True
            start = ready.get("position")
            log.info("%s: connected%s", self.description,
                     f", reading from offset {printable(start['offset'])} of "
                     f"{printable(start.get('path'))}"
                     if isinstance(start, dict) and "offset" in start else "")
            began = time.monotonic()
            reason = "stopped"
            try:
                yield from self._stream(send, reader, ready, stop)
            except (OSError, ProtocolError) as exc:
                reason = _describe(exc)
            finally:
                self.stats.up = False
                sock.close()
            if stop.is_set():
                return
            log.warning("%s: connection lost: %s; reconnecting", self.description, reason)
            if time.monotonic() - began > 10 * self.backoff_initial:
                delay = self.backoff_initial  # it had been working: start backoff over
            stop.wait(delay)
            delay = min(delay * 2, self.backoff_max)

    def _connect(self) -> tuple[socket.socket, FrameReader, dict[str, Any], _Send]:
        deadline = time.monotonic() + self.connect_timeout  # for the whole handshake
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
            reader = FrameReader(sock, MAX_HANDSHAKE_FRAME)
            ready, send = self._handshake(sock, reader, deadline)
            reader.max_frame = MAX_FRAME
            sock.settimeout(self.dead_after)
            return sock, reader, ready, send
        except BaseException:
            sock.close()
            raise

    def _handshake(
        self, sock: socket.socket, reader: FrameReader, deadline: float
    ) -> tuple[dict[str, Any], _Send]:
        hello = expect(reader.read_before(deadline), "hello")
        version = hello.get("version")
        if version != VERSION:
            older = isinstance(version, int) and version < VERSION
            raise _Refused(f"forwarder speaks protocol version {printable(version)}, this "
                           f"exporter {VERSION}; upgrade the "
                           f"{'forwarder' if older else 'exporter'}")
        server_nonce, nonce = str(hello.get("nonce", "")), new_nonce()
        wants_auth = hello.get("auth") != "none"
        if wants_auth and self.token is None:
            raise _Refused("the forwarder requires a token; give --forwarder-token-file or "
                           "the node's forwarder.token_file")
        if not wants_auth and self.token is not None:
            raise _Refused("the forwarder runs without a token, so it cannot prove it is "
                           "yours; give it the same --token-file")
        mac = client_proof(self.token, server_nonce, nonce) if self.token else ""
        sock.sendall(encode({"type": "auth", "version": VERSION, "nonce": nonce, "mac": mac}))
        welcome = reader.read_before(deadline)
        if welcome["type"] == "error":
            raise _Refused(f"forwarder says: {printable(welcome.get('message', 'refused'))}")
        expect(welcome, "welcome")
        up: FrameMac | None = None
        if self.token is not None:
            if not proof_ok(server_proof(self.token, server_nonce, nonce), welcome.get("mac")):
                raise _Refused("the forwarder failed to prove it knows the token")
            down_key, up_key = session_keys(self.token, server_nonce, nonce)
            reader.mac, up = FrameMac(down_key), FrameMac(up_key)

        def send(message: dict[str, Any]) -> None:  # only this thread sends: wire order
            sock.sendall(encode(message, up))

        position = self._position["file"] if self._position else None
        send({"type": "subscribe", "log": self.log_name, "position": position,
              "from_start": self.from_start})
        ready = reader.read_before(deadline)
        if ready["type"] == "error":
            raise _Refused(f"forwarder says: {printable(ready.get('message', 'refused'))}")
        return expect(ready, "ready"), send

    def _stream(
        self, send: _Send, reader: FrameReader, ready: dict[str, Any],
        stop: threading.Event,
    ) -> Iterator[Batch]:
        stats = self.stats
        seen = reader.bytes_received
        stats.bytes_read += seen
        start = ready.get("position")
        if isinstance(start, dict):
            position = {"log": self.log_name, "file": start}
            if position != self._position:  # record where reading starts, before any line
                self._position = position
                yield Batch([], [], position)
        # follow the forwarder's heartbeat: ping at least as often as it expects, and wait
        # for its pings at least as long as it may stay quiet
        theirs = ready.get("heartbeat")
        theirs = float(theirs) if isinstance(theirs, int | float) and theirs > 0 else None
        heartbeat = min(self.heartbeat, theirs) if theirs else self.heartbeat
        dead_after = max(self.dead_after, 4 * theirs) if theirs else self.dead_after
        tick = min(0.5, heartbeat / 2)
        last_received = last_sent = time.monotonic()
        while not stop.is_set():
            message = reader.read(tick)
            stats.bytes_read += reader.bytes_received - seen
            seen = reader.bytes_received
            now = time.monotonic()
            if message is None:
                if now - last_received > dead_after:
                    raise ProtocolError(f"no data or heartbeat for {dead_after:g}s")
                if now - last_sent >= heartbeat:
                    send({"type": "ping", "time": time.time()})
                    last_sent = now
                continue
            last_received = now
            kind = message["type"]
            if kind == "lines":
                batch = self._batch(message)
                if batch.position is not None:
                    self._position = batch.position
                yield batch
                send({"type": "ack", "seq": message["seq"]})
                last_received = last_sent = time.monotonic()  # time spent applying is ours
            elif kind == "error":
                raise ProtocolError(f"forwarder says: {printable(message.get('message'))}")
            elif kind != "ping":
                log.debug("%s: ignoring a '%s' message", self.description, printable(kind))

    def _batch(self, message: dict[str, Any]) -> Batch:
        lines, times, seq = message.get("lines"), message.get("times"), message.get("seq")
        if not isinstance(lines, list) or not isinstance(seq, int):
            raise ProtocolError("a lines message without lines or seq")
        if times is None:
            read_time = message.get("time")
            if not isinstance(read_time, int | float):
                raise ProtocolError("a lines message without read times")
        elif isinstance(times, list) and len(times) == len(lines):
            read_time = times
        else:
            raise ProtocolError("a lines message whose times do not match its lines")
        file_pos = message.get("position")
        position = {"log": self.log_name, "file": file_pos} if isinstance(file_pos, dict) else None
        return Batch(lines, read_time, position)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc)


def _load_token(node: NodeConfig, config: Config) -> bytes | None:
    """The node's token file, else the shared one, else $STORAGENODE_FORWARDER_TOKEN."""
    options = node.forwarder or {}
    if options.get("token_file"):
        path, where = options["token_file"], f"node {node.name}: forwarder.token_file"
    elif config.forwarder_token_file:
        path, where = config.forwarder_token_file, "--forwarder-token-file (forwarder.token_file)"
    else:
        value = os.environ.get(TOKEN_ENV, "").strip()
        return value.encode() if value else None
    try:
        return read_token_file(path)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _tls_context(name: str, options: dict[str, Any]) -> ssl.SSLContext | None:
    """A client TLS context when any tls_* key is set for the node, else None (plain TCP)."""
    if not any(options.get(key) for key in _TLS_KEYS):
        return None
    where = f"node {name}: forwarder"
    ca = options.get("tls_ca_file")
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{where}.tls_ca_file: cannot load {ca}: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.get("tls_insecure_skip_verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        log.warning("%s: TLS certificate verification is off (tls_insecure_skip_verify)", where)
    cert, key = options.get("tls_cert_file"), options.get("tls_key_file")
    if bool(cert) != bool(key):
        raise ConfigError(f"{where}: tls_cert_file and tls_key_file go together")
    if cert:
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{where}.tls_cert_file/tls_key_file: cannot load {cert}, "
                              f"{key}: {exc}") from exc
    return ctx
