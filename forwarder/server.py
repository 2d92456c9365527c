"""The forwarder's TCP server: one thread per client, two while streaming.

A connection goes hello -> auth -> welcome -> subscribe -> ready, then the forwarder streams
`lines` frames. The streaming thread reads the log only while the client has acknowledged
all but `window` bytes, so memory stays bounded whatever the backlog: one tailer batch plus
the socket buffers. A second thread reads the client's acks and pings and sends pings when
the log is quiet; either side drops a peer it has not heard from for `dead_after` seconds.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from forwarder import __version__
from forwarder.protocol import (
    MAX_HANDSHAKE_FRAME,
    VERSION,
    FrameReader,
    PeerClosed,
    ProtocolError,
    client_proof,
    encode,
    expect,
    new_nonce,
    proof_ok,
    server_proof,
)
from forwarder.tail import LogSpec, LogTail, plan

log = logging.getLogger("forwarder")


@dataclass
class Settings:
    logs: dict[str, LogSpec]
    token: bytes | None
    tls: ssl.SSLContext | None = None
    heartbeat: float = 5.0
    dead_after: float = 20.0
    handshake_timeout: float = 10.0
    window: int = 1 << 20
    poll_interval: float = 0.05
    max_line_bytes: int = 1 << 20
    max_clients: int = 16


class _Closed(Exception):
    """This connection is over (the reason is already known)."""


class Connection:
    def __init__(self, server: ForwarderServer, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.settings = server.settings
        self.sock = sock
        self.peer = peer
        self.stop = threading.Event()
        self.send_lock = threading.Lock()
        self.acked = threading.Condition()
        self.unacked: collections.deque[tuple[int, int]] = collections.deque()
        self.unacked_bytes = 0
        self.last_received = time.monotonic()
        self.last_sent = time.monotonic()
        self.reason = ""
        self.lines_sent = 0
        self.bytes_sent = 0

    # ---- sending -------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> int:
        data = encode(message)
        with self.send_lock:
            self.sock.sendall(data)
            self.last_sent = time.monotonic()
        return len(data)

    def fail(self, reason: str) -> None:
        """Tell the client why (best effort) and end the connection."""
        self.reason = reason
        with contextlib.suppress(OSError):
            self.send({"type": "error", "message": reason})
        raise _Closed(reason)

    # ---- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        spec = None
        connected = False
        try:
            self.sock.settimeout(self.settings.handshake_timeout)
            if self.settings.tls is not None:
                self.sock = self.settings.tls.wrap_socket(self.sock, server_side=True)
            reader = FrameReader(self.sock, MAX_HANDSHAKE_FRAME)
            self._authenticate(reader)
            spec, start = self._subscribe(reader)
            connected = True
            log.info("client %s connected: log %s (%s), %s", self.peer, spec.name, spec.path,
                     start.note)
            self.sock.settimeout(self.settings.dead_after)
            watcher = threading.Thread(target=self._watch, args=(reader,),
                                       name=f"client-{self.peer}-in", daemon=True)
            watcher.start()
            self._stream(spec, start)
        except _Closed:
            pass
        except ssl.SSLError as exc:
            self.reason = f"TLS failed: {exc.reason or exc}"
        except PeerClosed as exc:
            self.reason = self.reason or str(exc)
        except ProtocolError as exc:
            self.reason = self.reason or f"not speaking the forwarder protocol: {exc}"
        except TimeoutError:
            self.reason = self.reason or "timed out"
        except OSError as exc:
            self.reason = self.reason or (exc.strerror or str(exc))
        finally:
            self.stop.set()
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server.forget(self)
        if connected:
            log.info("client %s disconnected: %s (log %s, %d lines, %d bytes sent)", self.peer,
                     self.reason or "closed", spec.name if spec else "?", self.lines_sent,
                     self.bytes_sent)
        else:
            log.warning("client %s refused: %s", self.peer, self.reason or "closed")

    def _authenticate(self, reader: FrameReader) -> None:
        token = self.settings.token
        nonce = new_nonce()
        self.send({"type": "hello", "version": VERSION, "nonce": nonce,
                   "auth": "hmac-sha256" if token else "none",
                   "server": f"storagenode-log-forwarder/{__version__}"})
        auth = expect(reader.read_until(self.settings.handshake_timeout), "auth")
        if auth.get("version") != VERSION:
            self.fail(f"protocol version {auth.get('version')!r} not supported "
                      f"(this forwarder speaks {VERSION})")
        client_nonce = auth.get("nonce")
        if not isinstance(client_nonce, str) or not 16 <= len(client_nonce) <= 128:
            self.fail("authentication failed: bad nonce")
        proof = None
        if token is not None:
            if not proof_ok(client_proof(token, nonce, client_nonce), auth.get("mac")):
                self.fail("authentication failed: wrong token")
            proof = server_proof(token, nonce, client_nonce)
        self.send({"type": "welcome", "mac": proof, "logs": sorted(self.settings.logs)})

    def _subscribe(self, reader: FrameReader):
        sub = expect(reader.read_until(self.settings.handshake_timeout), "subscribe")
        name = sub.get("log")
        spec = self.settings.logs.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self.settings.logs))
            self.fail(f"no log named {name!r} here (known: {known})")
        start = plan(spec, sub.get("position"), bool(sub.get("from_start")))
        self.send({"type": "ready", "log": spec.name, "kind": spec.kind,
                   "position": start.start, "window": self.settings.window,
                   "heartbeat": self.settings.heartbeat})
        return spec, start

    def _stream(self, spec: LogSpec, start) -> None:
        settings = self.settings
        tail = LogTail(spec, start, poll_interval=settings.poll_interval,
                       max_line_bytes=settings.max_line_bytes)
        for seq, batch in enumerate(tail.batches(self.stop), start=1):
            if not self._wait_window():
                break
            message: dict[str, Any] = {"type": "lines", "seq": seq, "lines": batch.lines,
                                       "position": batch.position}
            if isinstance(batch.read_time, list):
                message["times"] = batch.read_time
            else:
                message["time"] = batch.read_time
            size = self.send(message)
            with self.acked:
                self.unacked.append((seq, size))
                self.unacked_bytes += size
            self.lines_sent += len(batch.lines)
            self.bytes_sent += size
        if not self.reason:
            self.reason = "stopped"

    def _wait_window(self) -> bool:
        """Block while the client has more than `window` bytes unacknowledged."""
        with self.acked:
            while self.unacked_bytes > self.settings.window and not self.stop.is_set():
                self.acked.wait(0.5)
        return not self.stop.is_set()

    def _watch(self, reader: FrameReader) -> None:
        """Client messages (acks, pings), heartbeats out, and the dead-peer timer."""
        settings = self.settings
        tick = min(0.5, settings.heartbeat / 2)
        try:
            while not self.stop.is_set():
                message = reader.read(tick)
                now = time.monotonic()
                if message is not None:
                    self.last_received = now
                    kind = message["type"]
                    if kind == "ack":
                        self._acked(message.get("seq"))
                    elif kind == "error":
                        self.reason = f"client says: {message.get('message', 'error')}"
                        break
                    elif kind != "ping":
                        raise ProtocolError(f"unexpected {kind!r} message")
                if now - self.last_received > settings.dead_after:
                    self.reason = f"no heartbeat for {settings.dead_after:g}s"
                    break
                if now - self.last_sent >= settings.heartbeat and self.send_lock.acquire(False):
                    try:
                        self.sock.sendall(encode({"type": "ping", "time": time.time()}))
                        self.last_sent = now
                    finally:
                        self.send_lock.release()
        except PeerClosed:
            self.reason = self.reason or "closed by the client"
        except ProtocolError as exc:
            self.reason = self.reason or f"protocol error: {exc}"
        except (OSError, ValueError) as exc:
            self.reason = self.reason or (getattr(exc, "strerror", None) or str(exc))
        finally:
            self.stop.set()
            with self.acked:
                self.acked.notify_all()
            with contextlib.suppress(OSError):  # wake a sender blocked on a full buffer
                self.sock.shutdown(socket.SHUT_RDWR)

    def _acked(self, seq: Any) -> None:
        if not isinstance(seq, int):
            raise ProtocolError("ack without an integer seq")
        with self.acked:
            while self.unacked and self.unacked[0][0] <= seq:
                self.unacked_bytes -= self.unacked.popleft()[1]
            self.acked.notify_all()


class ForwarderServer:
    """Accepts clients on one listening socket until `shutdown()`."""

    def __init__(self, settings: Settings, listener: socket.socket) -> None:
        self.settings = settings
        self.listener = listener
        self.clients: set[Connection] = set()
        self.lock = threading.Lock()
        self.closing = threading.Event()

    def serve_forever(self) -> None:
        self.listener.settimeout(0.5)
        while not self.closing.is_set():
            try:
                sock, addr = self.listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self.closing.is_set():
                    break
                log.error("accept failed: %s", exc)
                time.sleep(0.5)
                continue
            peer = f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            conn = Connection(self, sock, peer)
            with self.lock:
                full = len(self.clients) >= self.settings.max_clients
                if not full:
                    self.clients.add(conn)
            if full:
                log.warning("client %s refused: already %d clients", peer,
                            self.settings.max_clients)
                sock.close()
                continue
            threading.Thread(target=conn.run, name=f"client-{peer}", daemon=True).start()

    def forget(self, conn: Connection) -> None:
        with self.lock:
            self.clients.discard(conn)

    def shutdown(self) -> None:
        self.closing.set()
        with self.lock:
            clients = list(self.clients)
        for conn in clients:
            conn.reason = "forwarder shutting down"
            conn.stop.set()
        with contextlib.suppress(OSError):
            self.listener.close()
