"""The wire protocol between the forwarder and the exporter (documented in docs/forwarder.md).

Every message is one frame: a 4-byte big-endian length, then that many bytes of a UTF-8 JSON
object with a `type` key. JSON keeps the protocol readable and needs nothing beyond the
standard library; at storagenode rates (hundreds of lines a second) its cost is negligible.
The length prefix lets both sides reject a peer that is not speaking the protocol (an HTTP
request reads as a 1 GB frame) before buffering anything.

Authentication is a mutual HMAC-SHA256 challenge-response over two random nonces, so the
token never crosses the wire and neither side can be impersonated by someone who only
replays what they saw. With a token, every frame after the handshake also carries an
HMAC-SHA256 tag under a per-session, per-direction key derived from the token and both
nonces, over an implicit frame counter and the frame's bytes: an on-path attacker cannot
change, inject, drop, reorder or replay a frame without the next tag failing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import socket
import ssl
import struct
import time
from typing import Any

#: 2: every frame after the handshake is authenticated (FrameMac). A v1 peer is refused
#: with a line that says which side to upgrade.
VERSION = 2
DEFAULT_PORT = 9185
#: Largest frame either side accepts: a tailer batch is at most 256 KiB of reads plus one
#: line of up to 1 MiB, and JSON escaping can at worst grow text ~6x.
MAX_FRAME = 16 << 20
#: Frames before authentication are tiny; a bigger one is a peer speaking something else.
MAX_HANDSHAKE_FRAME = 64 << 10
NONCE_BYTES = 32
TOKEN_ENV = "STORAGENODE_FORWARDER_TOKEN"

TAG_BYTES = 32
#: Longest text taken from the wire that goes into one of our log lines.
LOG_TEXT_LIMIT = 200

_HEADER = struct.Struct(">I")
_SEQ = struct.Struct(">Q")
_CLIENT_LABEL = b"storagenode-log-forwarder v1 client"
_SERVER_LABEL = b"storagenode-log-forwarder v1 server"
_SESSION_LABEL = b"storagenode-log-forwarder v2 session"
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class ProtocolError(Exception):
    """The peer sent something that is not this protocol (or closed mid-frame)."""


class PeerClosed(ProtocolError):
    """The peer closed the connection."""


class HandshakeTimeout(ProtocolError):
    """The handshake did not finish before its deadline."""


class FrameAuthError(ProtocolError):
    """A frame's tag is wrong: changed, injected, dropped, reordered or replayed on the way."""


# ---- text from the wire in our log lines ----------------------------------------------------


def _escape(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: Any, limit: int = LOG_TEXT_LIMIT) -> str:
    """`value` (a peer's string, or anything from a frame) safe for one log line: control and
    other non-printable characters escaped (no newline can forge a line, no terminal escape
    reaches an operator's screen), and at most `limit` characters of it kept."""
    text = value if isinstance(value, str) else repr(value)
    more = len(text) - limit
    if more > 0:
        text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    return text + f"...({more} more characters)" if more > 0 else text


# ---- authentication ------------------------------------------------------------------------


def new_nonce() -> str:
    return os.urandom(NONCE_BYTES).hex()


def _mac(token: bytes, label: bytes, server_nonce: str, client_nonce: str) -> str:
    msg = label + b"|" + server_nonce.encode() + b"|" + client_nonce.encode()
    return hmac.new(token, msg, hashlib.sha256).hexdigest()


def client_proof(token: bytes, server_nonce: str, client_nonce: str) -> str:
    return _mac(token, _CLIENT_LABEL, server_nonce, client_nonce)


def server_proof(token: bytes, server_nonce: str, client_nonce: str) -> str:
    return _mac(token, _SERVER_LABEL, server_nonce, client_nonce)


def proof_ok(expected: str, given: Any) -> bool:
    """Constant-time comparison that also survives a non-string from a hostile peer."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def session_keys(token: bytes, server_nonce: str, client_nonce: str) -> tuple[bytes, bytes]:
    """(forwarder-to-exporter key, exporter-to-forwarder key) for one session: an HKDF-style
    extract (HMAC of the token over both nonces) and expand (one label per direction), so a
    frame cannot be reflected back to its sender or carried into another session."""
    secret = _mac(token, _SESSION_LABEL, server_nonce, client_nonce).encode()
    down = hmac.new(secret, b"forwarder->exporter", hashlib.sha256).digest()
    up = hmac.new(secret, b"exporter->forwarder", hashlib.sha256).digest()
    return down, up


class FrameMac:
    """One direction of a session: tag = HMAC-SHA256(key, counter || frame body), with the
    counter the number of frames before this one. The counter is implicit (both sides keep
    it), so a replayed, dropped or reordered frame fails like a changed one. One HMAC per
    frame; a frame is a batch of lines, so this costs well under a microsecond a line."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.count = 0

    def tag(self, body: bytes) -> bytes:
        h = self._keyed.copy()
        h.update(_SEQ.pack(self.count))
        h.update(body)
        self.count += 1
        return h.digest()


def read_token_file(path: str) -> bytes:
    """The shared token: the file's content without surrounding whitespace (OSError/ValueError)."""
    with open(path, "rb") as fh:
        token = fh.read().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


# ---- framing --------------------------------------------------------------------------------


def encode(message: dict[str, Any], mac: FrameMac | None = None) -> bytes:
    """One frame; with `mac`, sealed (its tag appended) and the sender's counter advanced,
    so call it in the order the frames go on the wire."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if mac is None:
        return _HEADER.pack(len(body)) + body
    tag = mac.tag(body)
    return _HEADER.pack(len(body) + TAG_BYTES) + body + tag


class FrameReader:
    """Reassembles frames from a socket; holds at most one partial frame in memory. Once
    `mac` is set (after the handshake), every frame must carry the peer's next tag."""

    def __init__(self, sock: socket.socket, max_frame: int = MAX_HANDSHAKE_FRAME) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self.mac: FrameMac | None = None
        self._buf = bytearray()
        self.bytes_received = 0

    def _next_frame(self) -> dict[str, Any] | None:
        buf = self._buf
        if len(buf) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(buf)
        if size > self.max_frame:
            raise ProtocolError(f"frame of {size} bytes is over the limit of {self.max_frame}")
        end = _HEADER.size + size
        if len(buf) < end:
            return None
        mac = self.mac
        if mac is None:
            body = bytes(buf[_HEADER.size:end])
        else:
            if size < TAG_BYTES:
                raise FrameAuthError("frame failed authentication (too short for a tag)")
            body = bytes(buf[_HEADER.size:end - TAG_BYTES])
            if not hmac.compare_digest(mac.tag(body), bytes(buf[end - TAG_BYTES:end])):
                raise FrameAuthError("frame failed authentication: changed, injected, "
                                     "replayed or out of order on the way")
        del buf[:end]
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"frame is not JSON: {exc}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("frame is not a JSON object with a 'type'")
        return message

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message, or None if none arrived within `timeout` seconds.

        Raises PeerClosed at end of stream, ProtocolError for garbage, OSError from the socket.
        """
        message = self._next_frame()
        if message is not None:
            return message
        pending = getattr(self.sock, "pending", None)
        if not (pending and pending()) and timeout is not None:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
        try:
            data = self.sock.recv(256 * 1024)
        except ssl.SSLWantReadError:  # a TLS record is not complete yet
            return None
        if not data:
            raise PeerClosed("connection closed by peer" if not self._buf
                             else "connection closed in the middle of a frame")
        self.bytes_received += len(data)
        self._buf += data
        return self._next_frame()

    def read_until(self, timeout: float) -> dict[str, Any]:
        """One message within `timeout` seconds, else HandshakeTimeout."""
        return self.read_before(time.monotonic() + timeout)

    def read_before(self, deadline: float) -> dict[str, Any]:
        """One message before the monotonic `deadline` (the whole handshake shares one, so a
        peer that drips bytes cannot stretch it), else HandshakeTimeout."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HandshakeTimeout("handshake not finished in time")
            self.sock.settimeout(left)  # a TLS record read blocks until it is whole
            message = self.read(left)
            if message is not None:
                return message


def expect(message: dict[str, Any], kind: str) -> dict[str, Any]:
    """`message` if it has type `kind`; an `error` message or another type raises."""
    if message["type"] == "error":
        raise ProtocolError(f"peer says: {printable(message.get('message', 'error'))}")
    if message["type"] != kind:
        raise ProtocolError(f"expected a {kind!r} message, got '{printable(message['type'])}'")
    return message
