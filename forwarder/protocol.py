"""The wire protocol between the forwarder and the exporter (documented in docs/forwarder.md).

Every message is one frame: a 4-byte big-endian length, then that many bytes of a UTF-8 JSON
object with a `type` key. JSON keeps the protocol readable and needs nothing beyond the
standard library; at storagenode rates (hundreds of lines a second) its cost is negligible.
The length prefix lets both sides reject a peer that is not speaking the protocol (an HTTP
request reads as a 1 GB frame) before buffering anything.

Authentication is a mutual HMAC-SHA256 challenge-response over two random nonces, so the
token never crosses the wire and neither side can be impersonated by someone who only
replays what they saw.
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
from typing import Any

VERSION = 1
DEFAULT_PORT = 9185
#: Largest frame either side accepts: a tailer batch is at most 256 KiB of reads plus one
#: line of up to 1 MiB, and JSON escaping can at worst grow text ~6x.
MAX_FRAME = 16 << 20
#: Frames before authentication are tiny; a bigger one is a peer speaking something else.
MAX_HANDSHAKE_FRAME = 64 << 10
NONCE_BYTES = 32
TOKEN_ENV = "STORAGENODE_FORWARDER_TOKEN"

_HEADER = struct.Struct(">I")
_CLIENT_LABEL = b"storagenode-log-forwarder v1 client"
_SERVER_LABEL = b"storagenode-log-forwarder v1 server"


class ProtocolError(Exception):
    """The peer sent something that is not this protocol (or closed mid-frame)."""


class PeerClosed(ProtocolError):
    """The peer closed the connection."""


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


def read_token_file(path: str) -> bytes:
    """The shared token: the file's content without surrounding whitespace (OSError/ValueError)."""
    with open(path, "rb") as fh:
        token = fh.read().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


# ---- framing --------------------------------------------------------------------------------


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(len(body)) + body


class FrameReader:
    """Reassembles frames from a socket; holds at most one partial frame in memory."""

    def __init__(self, sock: socket.socket, max_frame: int = MAX_HANDSHAKE_FRAME) -> None:
        self.sock = sock
        self.max_frame = max_frame
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
        body = bytes(buf[_HEADER.size:end])
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
        """One message within `timeout` seconds (handshake steps), else ProtocolError."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no message within {timeout:g}s")
            message = self.read(left)
            if message is not None:
                return message


def expect(message: dict[str, Any], kind: str) -> dict[str, Any]:
    """`message` if it has type `kind`; an `error` message or another type raises."""
    if message["type"] == "error":
        raise ProtocolError(f"peer says: {message.get('message', 'error')}")
    if message["type"] != kind:
        raise ProtocolError(f"expected a {kind!r} message, got {message['type']!r}")
    return message
