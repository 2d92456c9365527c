"""The forwarder's TCP server: one thread per client, two while streaming.

A connection goes hello -> auth -> welcome -> subscribe -> ready, then the forwarder streams
`lines` frames. Until its proof is checked a connection is *pending*: pending ones have their
own small budget (`max_pending`) and one deadline for the whole handshake, so idle or dripping
sockets cannot take the places of real clients; only authenticated clients count towards
`max_clients`. Refusals are logged one by one while rare, then as one summary a period.

The streaming thread reads the log only while the client has acknowledged all but `window`
bytes, so memory stays bounded whatever the backlog: one tailer batch plus the socket buffers.
A second thread reads the client's acks and pings and sends pings when the log is quiet;
either side drops a peer it has not heard from for `dead_after` seconds.
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
from forwarder.tail import LogSpec, LogTail, plan
from logstream.protocol import (
    MAX_HANDSHAKE_FRAME,
    VERSION,
    FrameAuthError,
    FrameMac,
    FrameReader,
    HandshakeTimeout,
    PeerClosed,
    ProtocolError,
    client_proof,
    encode,
    expect,
    new_nonce,
    printable,
    proof_ok,
    server_proof,
    session_keys,
)

log = logging.getLogger("forwarder")


@dataclass
class Settings:
    logs: dict[str, LogSpec]
    token: bytes | None
    tls: ssl.SSLContext | None = None
    heartbeat: float = 5.0
    dead_after: float = 20.0
    #: seconds from accept to `ready`, TLS included, however the peer spreads its bytes
    handshake_timeout: float = 5.0
    window: int = 1 << 20
    poll_interval: float = 0.05
    max_line_bytes: int = 1 << 20
    max_clients: int = 16
    #: connections still in their handshake; when full, a newcomer takes the place of the
    #: oldest one of the address that holds the most
    max_pending: int = 8
    #: refusals logged one by one per period; beyond, one summary line per period
    refusal_period: float = 10.0
    refusal_burst: int = 3


class RefusalLog:
    """Refused connections, logged at a bounded rate whatever an attacker does: the first
    `burst` of a period one line each, then one summary line when the period ends."""

    def __init__(self, period: float, burst: int) -> None:
        self.period, self.burst = period, burst
        self.lock = threading.Lock()
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.began = now
        self.logged = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.peers: set[str] = set()

    def refused(self, peer: str, host: str, kind: str, reason: str) -> None:
        with self.lock:
            self.kinds[kind] += 1
            self.peers.add(host)
            detail = self.logged < self.burst
            self.logged += detail
        if detail:
            log.warning("client %s refused: %s", peer, reason)

    def tick(self, now: float, final: bool = False) -> None:
        """Called by the accept loop: the summary of a period that had more than `burst`."""
        with self.lock:
            if not final and now - self.began < self.period:
                return
            n, peers, kinds, seconds = (sum(self.kinds.values()), len(self.peers), self.kinds,
                                        min(self.period, now - self.began))
            quiet = n <= self.logged
            self._reset(now)
        if not quiet:
            log.warning("refused %d connection%s from %d peer%s in the last %.0f s (%s)", n,
                        "s" * (n != 1), peers, "s" * (peers != 1), seconds,
                        ", ".join(f"{k}: {v}" for k, v in kinds.most_common()))


class _Closed(Exception):
    """This connection is over (the reason is already known)."""


class Connection:
    def __init__(self, server: ForwarderServer, sock: socket.socket, peer: str,
                 host: str) -> None:
        self.server = server
        self.settings = server.settings
        self.sock = sock
        self.sock_lock = threading.Lock()  # self.sock is swapped for the TLS socket
        self.peer, self.host = peer, host
        self.accepted = time.monotonic()
        self.deadline = self.accepted + self.settings.handshake_timeout
        self.kind = "closed"  # the refusal's category, for the summary line
        self.send_mac: FrameMac | None = None
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
        with self.send_lock:  # sealing advances the counter: in wire order
            data = encode(message, self.send_mac)
            self.sock.sendall(data)
            self.last_sent = time.monotonic()
        return len(data)

    def fail(self, reason: str, kind: str = "refused") -> None:
        """Tell the client why (best effort) and end the connection."""
        self.reason, self.kind = reason, kind
        with contextlib.suppress(OSError):
            self.send({"type": "error", "message": reason})
        raise _Closed(reason)

    def abort(self, reason: str, kind: str) -> None:
        """From another thread: end a pending handshake now (its deadline, or its slot is
        taken). Shuts the socket down under the TLS layer, which wakes the blocked reader."""
        with self.sock_lock:
            if not self.reason:
                self.reason, self.kind = reason, kind
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    # ---- lifecycle -----------------------------------------------------------------------

    def run(self) -> None:
        spec = None
        connected = False
        try:
            self.sock.settimeout(self.settings.handshake_timeout)
            if self.settings.tls is not None:
                with self.sock_lock:
                    self.sock = self.settings.tls.wrap_socket(
                        self.sock, server_side=True, do_handshake_on_connect=False)
                self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
                self.sock.do_handshake()  # one deadline for the whole TLS handshake
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
            self._ended(f"TLS failed: {exc.reason or exc}", "tls")
        except PeerClosed as exc:
            self._ended(str(exc), "closed")
        except (HandshakeTimeout, TimeoutError):
            self._ended("timed out" if connected else "handshake not finished within "
                        f"{self.settings.handshake_timeout:g}s", "handshake timeout")
        except FrameAuthError as exc:
            self._ended(str(exc), "bad frame")
        except ProtocolError as exc:
            self._ended(f"not speaking the forwarder protocol: {exc}", "protocol")
        except OSError as exc:
            self._ended(exc.strerror or str(exc), "closed")
        finally:
            self.stop.set()
            with self.sock_lock, contextlib.suppress(OSError):
                self.sock.close()
            self.server.forget(self)
        if connected:
            log.info("client %s disconnected: %s (log %s, %d lines, %d bytes sent)", self.peer,
                     self.reason or "closed", spec.name if spec else "?", self.lines_sent,
                     self.bytes_sent)
        else:
            self.server.refusals.refused(self.peer, self.host, self.kind,
                                         self.reason or "closed")

    def _ended(self, reason: str, kind: str) -> None:
        """Record why, unless abort() or fail() already said (their reason is the cause)."""
        if not self.reason:
            self.reason, self.kind = reason, kind

    def _authenticate(self, reader: FrameReader) -> None:
        token = self.settings.token
        nonce = new_nonce()
        self.send({"type": "hello", "version": VERSION, "nonce": nonce,
                   "auth": "hmac-sha256" if token else "none",
                   "server": f"storagenode-log-forwarder/{__version__}"})
        auth = expect(reader.read_before(self.deadline), "auth")
        version = auth.get("version")
        if version != VERSION:
            older = isinstance(version, int) and version < VERSION
            self.fail(f"protocol version {printable(version)} not supported (this forwarder "
                      f"speaks {VERSION}); upgrade the {'exporter' if older else 'forwarder'}",
                      "version")
        client_nonce = auth.get("nonce")
        if not isinstance(client_nonce, str) or not 16 <= len(client_nonce) <= 128:
            self.fail("authentication failed: bad nonce", "wrong token")
        proof = None
        if token is not None:
            if not proof_ok(client_proof(token, nonce, client_nonce), auth.get("mac")):
                self.fail("authentication failed: wrong token", "wrong token")
            proof = server_proof(token, nonce, client_nonce)
        refusal = self.server.admit(self)
        if refusal is not None:
            if self.reason:  # crowded out or expired a moment ago: already said why
                raise _Closed(self.reason)
            self.fail(refusal, "busy")
        self.send({"type": "welcome", "mac": proof, "logs": sorted(self.settings.logs)})
        if token is not None:  # from here on every frame is sealed, both ways
            down, up = session_keys(token, nonce, client_nonce)
            self.send_mac, reader.mac = FrameMac(down), FrameMac(up)

    def _subscribe(self, reader: FrameReader):
        sub = expect(reader.read_before(self.deadline), "subscribe")
        name = sub.get("log")
        spec = self.settings.logs.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted(self.settings.logs))
            self.fail(f"no log named '{printable(name)}' here (known: {known})")
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
                        self.reason = f"client says: {printable(message.get('message'))}"
                        break
                    elif kind != "ping":
                        raise ProtocolError(f"unexpected '{printable(kind)}' message")
                if now - self.last_received > settings.dead_after:
                    self.reason = f"no heartbeat for {settings.dead_after:g}s"
                    break
                if now - self.last_sent >= settings.heartbeat and self.send_lock.acquire(False):
                    try:
                        self.sock.sendall(encode({"type": "ping", "time": time.time()},
                                                 self.send_mac))
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
        self.pending: dict[Connection, None] = {}  # in their handshake, oldest first
        self.clients: set[Connection] = set()  # authenticated
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.refusals = RefusalLog(settings.refusal_period, settings.refusal_burst)

    def serve_forever(self) -> None:
        self.listener.settimeout(0.25)
        while not self.closing.is_set():
            now = time.monotonic()
            self._expire(now)
            self.refusals.tick(now)
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
            conn = Connection(self, sock, peer, addr[0])
            with self.lock:
                victim = self._victim() if len(self.pending) >= self.settings.max_pending \
                    else None
                self.pending[conn] = None
            if victim is not None:
                victim.abort(f"its handshake slot went to a newer connection (already "
                             f"{self.settings.max_pending} handshakes pending)", "crowded out")
            threading.Thread(target=conn.run, name=f"client-{peer}", daemon=True).start()
        self.refusals.tick(time.monotonic(), final=True)

    def _victim(self) -> Connection:
        """The pending connection that makes way (lock held): the oldest of the address
        holding the most pending slots, so one host flooding cannot crowd out another."""
        per_host = collections.Counter(c.host for c in self.pending)
        host = per_host.most_common(1)[0][0]
        victim = next(c for c in self.pending if c.host == host)
        del self.pending[victim]
        return victim

    def _expire(self, now: float) -> None:
        """Cut handshakes past their deadline, whatever they are blocked in."""
        with self.lock:  # held: a client admitted meanwhile is not cut
            for conn in [c for c in self.pending if now >= c.deadline]:
                conn.abort("handshake not finished within "
                           f"{self.settings.handshake_timeout:g}s", "handshake timeout")

    def admit(self, conn: Connection) -> str | None:
        """Authenticated: from the pending budget into the clients; else why not."""
        with self.lock:
            if conn not in self.pending:  # crowded out or expired a moment ago
                return "handshake cut"
            del self.pending[conn]
            if len(self.clients) >= self.settings.max_clients:
                return f"busy: already {self.settings.max_clients} clients"
            self.clients.add(conn)
            return None

    def forget(self, conn: Connection) -> None:
        with self.lock:
            self.pending.pop(conn, None)
            self.clients.discard(conn)

    def shutdown(self) -> None:
        self.closing.set()
        with self.lock:
            clients = list(self.clients)
            pending = list(self.pending)
        for conn in clients:
            conn.reason = "forwarder shutting down"
            conn.stop.set()
        for conn in pending:
            conn.abort("forwarder shutting down", "closed")
        with contextlib.suppress(OSError):
            self.listener.close()
