"""Attacks on the real forwarder process (and the real exporter where its side matters):
idle and dripping unauthenticated sockets, log injection from the wire, and an on-path
attacker that modifies, injects or replays frames after the handshake."""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import ssl
import struct
import threading
import time

import pytest

from exporter.sources.forwarder import ForwarderSource
from logstream.protocol import FrameReader, encode
from tests import test_forwarder as _base
from tests.conftest import total, wait_for
from tests.test_forwarder import TOKEN, append, source_up, upload_line

token_file = _base.token_file  # the same fixtures as tests/test_forwarder.py
forwarders = _base.forwarders

FORGED = "FORGED-LINE"
#: one log line of ours starts like this; anything else is a forged or broken line
LOG_LINE = re.compile(r"^ts=\S+ level=\w+ source=\S+ msg=\"")
HOSTILE = f'boom\nts=2026-01-01T00:00:00.000Z level=error source=forwarder msg="{FORGED}"' \
          '\r\x1b[2K\x00\x7f\u2028\u0085' + "A" * 5000


def _assert_clean(text: str) -> None:
    """Every line is one of ours, none forged, none huge."""
    for row in text.splitlines():
        assert LOG_LINE.match(row), f"forged or broken log line: {row[:200]!r}"
        assert not row.startswith("ts=2026-01-01"), row
        assert len(row) < 2000, f"a {len(row)}-character log line"
        assert not any(c in row for c in "\r\x1b\x00\x7f\u2028\u0085"), row[:200]


class IdleFlood:
    """`count` sockets that connect and never speak; the ones the server closes are opened
    again (at most `rate` a second), as the attack in the issue did."""

    def __init__(self, port: int, count: int, source: str = "127.0.0.1", rate: float = 500):
        self.port, self.count, self.source, self.rate = port, count, source, rate
        self.socks: list[socket.socket] = []
        self.opened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> None:
        sock = socket.socket()
        sock.bind((self.source, 0))
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", self.port))
        self.socks.append(sock)
        self.opened += 1

    def _run(self) -> None:
        while not self.stop.is_set():
            while len(self.socks) < self.count and not self.stop.is_set():
                self._open()
                time.sleep(1 / self.rate)
            ready, _, _ = select.select(self.socks, [], [], 0.05)
            for sock in ready:
                try:
                    if sock.recv(65536):
                        continue  # the hello: ignore it, stay idle
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    pass
                self.socks.remove(sock)
                sock.close()

    def __enter__(self) -> IdleFlood:
        self.thread.start()
        wait_for(lambda: self.opened >= self.count, timeout=10, what="the idle sockets")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def _read_lines(src: ForwarderSource, n: int, timeout: float) -> list[str]:
    """Lines from src until n arrived or `timeout` passed (bounded either way)."""
    got: list[str] = []
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        for batch in src.batches(stop):
            got.extend(batch.lines)
            if len(got) >= n:
                break
    finally:
        timer.cancel()
        stop.set()
    return got


# ---- item 11: lockout --------------------------------------------------------------------------


def test_idle_sockets_from_another_host_do_not_lock_out_a_restarted_exporter(
    tmp_path, token_file, forwarders, exporter_process
):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    with IdleFlood(fwd.port, 200, source="127.0.0.2") as flood:
        began = time.monotonic()
        proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{fwd.port}",
                                "--forwarder-token-file", str(token_file))
        wait_for(lambda: source_up(proc) == 1, timeout=8, what="the exporter to get in")
        append(log, [upload_line(i) for i in range(50)])
        wait_for(lambda: total(proc.samples(), "storagenode_log_lines_total") == 50, timeout=5,
                 what="the lines through the flood")
        took = time.monotonic() - began
        time.sleep(max(0.0, 12 - took))  # keep the attack going past a summary period
        assert flood.opened > 250  # the forwarder kept closing idle sockets
    assert took < 8
    text = fwd.text()
    _assert_clean(text)
    assert len(text.splitlines()) < 50, text[-3000:]
    assert re.search(r"refused \d+ connections? from 1 peers? in the last 10 s", text), text


def test_idle_sockets_from_the_same_host_do_not_lock_out_the_source(tmp_path, token_file,
                                                                     forwarders):
    log = tmp_path / "node.log"
    append(log, [upload_line(i) for i in range(100)])
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    with IdleFlood(fwd.port, 200, rate=200):
        time.sleep(1.0)
        began = time.monotonic()
        src = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, from_start=True,
                              backoff_initial=0.2, backoff_max=1.0)
        got = _read_lines(src, 100, timeout=8)
        took = time.monotonic() - began
    assert len(got) == 100
    assert took < 5
    text = fwd.text()
    _assert_clean(text)
    assert len(text.splitlines()) < 50


def _drip(sock: socket.socket, data: bytes, began: float) -> float | None:
    """Send `data` one byte every 0.3 s (each recv on the other side is quick, the whole is
    not); when the peer closes or answers with an error, the seconds since `began`."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            ready, _, _ = select.select([sock], [], [], 0.3)
            if ready and (not (answer := sock.recv(100)) or b"error" in answer):
                return time.monotonic() - began
        except OSError:
            return time.monotonic() - began
        if time.monotonic() - began > 12:
            return None
    return None


def test_a_slow_drip_handshake_is_cut_at_the_deadline(tmp_path, token_file, forwarders):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    frame = encode({"type": "auth", "version": 2, "nonce": "ab" * 32, "mac": "00" * 32})
    with socket.create_connection(("127.0.0.1", fwd.port), timeout=15) as sock:
        began = time.monotonic()
        assert FrameReader(sock).read_until(5)["type"] == "hello"
        took = _drip(sock, frame[:-1], began)
    assert took is not None, "still connected after 12 s of drip"
    assert 4.0 <= took <= 6.5, took
    wait_for(lambda: "handshake not finished within 5s" in fwd.text(), timeout=5,
             what="the refusal line")
    _assert_clean(fwd.text())


def test_a_slow_drip_tls_handshake_is_cut_at_the_deadline(tmp_path, token_file, forwarders):
    certs = _base._make_certs(tmp_path)
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file),
                      "--tls-cert", str(certs["server"]), "--tls-key", str(certs["server_key"])])
    # a real ClientHello, from a TLS client that is never given an answer
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    tls = ctx.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="x")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(("127.0.0.1", fwd.port), timeout=15) as sock:
        took = _drip(sock, hello, time.monotonic())
    assert took is not None, "still connected after 12 s of drip"
    assert 4.0 <= took <= 6.5, took
    wait_for(lambda: "refused" in fwd.text(), timeout=5, what="the refusal line")
    _assert_clean(fwd.text())


# ---- item 12: log injection --------------------------------------------------------------------


def test_an_unauthenticated_error_frame_cannot_forge_a_forwarder_log_line(
    tmp_path, token_file, forwarders
):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    for message in ({"type": "error", "message": HOSTILE},
                    {"type": HOSTILE},
                    {"type": "auth", "version": HOSTILE, "nonce": "ab" * 32, "mac": "00"}):
        with socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as sock:
            reader = FrameReader(sock)
            assert reader.read_until(5)["type"] == "hello"
            sock.sendall(encode(message))
            with pytest.raises(Exception):  # noqa: B017 (an error frame, then closed)
                for _ in range(3):
                    reader.read_until(5)
    wait_for(lambda: fwd.text().count("refused") >= 3, timeout=5, what="three refusals")
    text = fwd.text()
    _assert_clean(text)
    assert "boom" in text and "AAAA...(" in text  # escaped and cut, still readable


def test_a_hostile_forwarder_cannot_forge_an_exporter_log_line(tmp_path, exporter_process):
    """A fake forwarder answers every connection with hostile strings in each field the
    exporter logs: the version, the ready position, and error messages."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()
    answers = [
        [{"type": "hello", "version": HOSTILE, "nonce": "ab" * 32, "auth": "none"}],
        [{"type": "hello", "version": 2, "nonce": "ab" * 32, "auth": "none"},
         {"type": "error", "message": HOSTILE}],
        [{"type": "hello", "version": 2, "nonce": "ab" * 32, "auth": "none"},
         {"type": "welcome", "mac": "", "logs": ["n1"]},
         {"type": "ready", "log": "n1", "kind": "plain", "window": 1 << 20, "heartbeat": 5,
          "position": {"path": HOSTILE, "offset": HOSTILE, "dev": 1, "ino": 1,
                       "fingerprint": ""}},
         {"type": "error", "message": HOSTILE}],
    ]

    def serve() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                for message in answers[n % len(answers)]:
                    conn.sendall(encode(message))
                    time.sleep(0.05)
                time.sleep(0.1)
            n += 1

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{port}")
        wait_for(lambda: proc.logged().count("boom") >= 3, timeout=15,
                 what="the exporter to log the three answers")
        text = proc.stop()
    finally:
        stop.set()
        server.join(5)
        listener.close()
    _assert_clean(text)


def test_printable_escapes_and_bounds():
    from logstream.protocol import printable

    assert printable("a\nb\r\x1b\x00\u2028é") == "a\\nb\\r\\x1b\\x00\\u2028é"
    assert printable("ok") == "ok"
    assert printable(12) == "12"
    long = printable("x" * 1000, limit=50)
    assert long.startswith("x" * 50) and "950 more" in long and len(long) < 80


# ---- item 13: frames authenticated after the handshake -----------------------------------------

_HEADER = struct.Struct(">I")


class Proxy:
    """A TCP proxy between the exporter and the forwarder that, on the first connection only,
    tampers with the stream after the handshake the way an on-path attacker without the token
    can: it rewrites a `lines` frame, injects one, replays one, or injects a frame towards
    the forwarder. Sealed frames end in a 32-byte tag, which it keeps (it cannot make one)."""

    def __init__(self, upstream: int, mode: str) -> None:
        self.upstream, self.mode = upstream, mode
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.tampered = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            first = self.connections == 1
            server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            threading.Thread(target=self._pipe, args=(server, client, first, True),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, server, first, False),
                             daemon=True).start()

    @staticmethod
    def _split(body: bytes) -> tuple[dict, bytes]:
        try:
            return json.loads(body), b""
        except ValueError:
            return json.loads(body[:-32]), body[-32:]

    @staticmethod
    def _join(message: dict, tag: bytes) -> bytes:
        body = json.dumps(message, separators=(",", ":")).encode() + tag
        return _HEADER.pack(len(body)) + body

    def _pipe(self, src: socket.socket, dst: socket.socket, first: bool, down: bool) -> None:
        buf = b""
        try:
            while not self.stop.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if not first or self.tampered.is_set():
                    dst.sendall(buf + data)
                    buf = b""
                    continue
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + _HEADER.unpack_from(buf)[0]:
                    end = 4 + _HEADER.unpack_from(buf)[0]
                    frame, buf = buf[:end], buf[end:]
                    dst.sendall(self._tamper(frame, down))
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _tamper(self, frame: bytes, down: bool) -> bytes:
        if self.tampered.is_set():
            return frame
        message, tag = self._split(frame[4:])
        if self.mode == "upstream" and not down and message["type"] == "ack":
            self.tampered.set()  # a forged ping ahead of the real ack
            return self._join({"type": "ping", "time": 1.0}, tag) + frame
        if self.mode == "upstream" or not down or message["type"] != "lines" \
                or not message["lines"]:
            return frame
        self.tampered.set()
        forged = upload_line(999_999).rstrip("\n")
        if self.mode == "modify":
            message["lines"][0] = forged
            return self._join(message, tag)
        if self.mode == "inject":
            extra = dict(message, lines=[forged], seq=message["seq"])
            extra.pop("times", None)
            extra["time"] = 1.0
            return self._join(extra, tag) + frame
        if self.mode == "replay":
            return frame + frame
        return frame


@pytest.mark.parametrize("mode", ["modify", "inject", "replay", "upstream"])
def test_an_on_path_attacker_cannot_change_the_counted_lines(
    tmp_path, token_file, forwarders, exporter_process, mode
):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    proxy = Proxy(fwd.port, mode)
    try:
        proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{proxy.port}",
                                "--forwarder-token-file", str(token_file))
        wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
        lines = [upload_line(i) for i in range(1, 41)]
        for i in range(0, 40, 10):
            append(log, lines[i:i + 10])
            time.sleep(0.15)
        wait_for(lambda: proxy.tampered.is_set(), timeout=5, what="the attack")
        wait_for(lambda: total(proc.samples(), "storagenode_log_lines_total") == 40, timeout=15,
                 what="every line, once")
        time.sleep(0.5)
        samples = proc.samples()
    finally:
        proxy.close()
    assert total(samples, "storagenode_log_lines_total") == 40
    assert total(samples, "storagenode_transfers_total") == 40
    assert total(samples, "storagenode_transfer_size_bytes_sum") == sum(range(1, 41))
    assert samples['storagenode_log_source_reconnects_total{node="n1"}'] >= 1
    assert proxy.connections >= 2
    if mode == "upstream":
        wait_for(lambda: "failed authentication" in fwd.text(), timeout=5,
                 what="the forwarder to reject the forged frame")
    else:
        assert "failed authentication" in proc.logged()
    _assert_clean(fwd.text())


def test_an_old_client_gets_a_clear_refusal(tmp_path, token_file, forwarders):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    with socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as sock:
        reader = FrameReader(sock)
        assert reader.read_until(5)["version"] == 2
        sock.sendall(encode({"type": "auth", "version": 1, "nonce": "ab" * 32, "mac": "00"}))
        answer = reader.read_until(5)
    assert answer["type"] == "error"
    assert "protocol version 1 not supported" in answer["message"]
    assert "upgrade" in answer["message"]


def test_a_source_refuses_an_old_forwarder_clearly():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(encode({"type": "hello", "version": 1, "nonce": "ab" * 32,
                                 "auth": "hmac-sha256"}))
            conn.recv(100)

    threading.Thread(target=serve, daemon=True).start()
    src = ForwarderSource("127.0.0.1", port, "n1", token=TOKEN)
    with pytest.raises(Exception, match=r"protocol version 1.*upgrade"):
        src._connect()
    listener.close()
