"""The real forwarder process and the real exporter over loopback TCP: exact counts across
forwarder kills, network cuts, rotations while disconnected, bad clients, TLS, and exact
resume of ForwarderSource in-process."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from exporter.sources.forwarder import ForwarderSource
from logstream.protocol import (
    MAX_FRAME,
    VERSION,
    FrameReader,
    PeerClosed,
    ProtocolError,
    encode,
)
from tests.conftest import ROOT, free_port, terminate, total, wait_for

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
TOKEN = b"4f1c0a6e9b7d2c3e8a5f6b1d0c9e7a2b"


def upload_line(i: int) -> str:
    return (
        f'2026-08-20T10:15:03Z\tINFO\tpiecestore\tuploaded\t{{"process": "storagenode", '
        f'"piece_id": "P{i:051d}", "satellite_id": "{US1}", "action": "PUT", '
        f'"remote_address": "198.51.100.1:{1000 + i % 1000}", "size": {i}}}\n'
    )


def docker_line(i: int) -> str:
    entry = {"log": upload_line(i), "stream": "stderr",
             "time": f"2026-08-20T10:15:{i % 60:02d}.{i:09d}Z"}
    return json.dumps(entry) + "\n"


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(lines)


class ForwarderProcess:
    """`python -m forwarder` as an operator starts it; its log goes to a file we can read."""

    def __init__(self, tmp: Path, args: list[str], port: int | None = None,
                 host: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.host = host
        self.args = args
        self.tmp = tmp
        self.runs = 0
        self.start()

    def start(self) -> None:
        self.runs += 1
        self.logfile = self.tmp / f"forwarder-{self.port}-{self.runs}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "--listen", f"{self.host}:{self.port}",
             *self.args],
            stdout=subprocess.DEVNULL, stderr=open(self.logfile, "w"), cwd=ROOT,  # noqa: SIM115
        )
        wait_for(lambda: self._ready(), timeout=10, what=f"forwarder on {self.port}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"forwarder exited {self.proc.returncode}: {self.text()}")
        return "listening on" in self.text()

    def text(self) -> str:
        return self.logfile.read_text()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def stop(self) -> str:
        terminate(self.proc)
        return self.text()


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(TOKEN + b"\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def forwarders(tmp_path):
    started: list[ForwarderProcess] = []

    def start(args: list[str], port: int | None = None) -> ForwarderProcess:
        fwd = ForwarderProcess(tmp_path, args, port)
        started.append(fwd)
        return fwd

    yield start
    for fwd in started:
        fwd.stop()


def counts(proc) -> tuple[float, float]:
    samples = proc.samples()
    return (total(samples, "storagenode_log_lines_total"),
            total(samples, "storagenode_transfers_total"))


def source_up(proc) -> float | None:
    return proc.samples().get('storagenode_log_source_up{node="n1"}')


def wait_counts(proc, n: int, timeout: float = 20) -> None:
    wait_for(lambda: counts(proc) == (n, n), timeout=timeout, what=f"{n} lines and transfers")
    time.sleep(0.5)  # and nothing more arrives (no duplicates)
    assert counts(proc) == (n, n)


def writer(path: Path, first: int, count: int, delay: float = 0.003) -> threading.Thread:
    def run():
        for i in range(first, first + count):
            append(path, [upload_line(i)])
            time.sleep(delay)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# ---- end to end: exporter process <- forwarder process ---------------------------------------


def test_exact_counts_when_the_forwarder_is_killed_mid_stream(
    tmp_path, token_file, forwarders, exporter_process
):
    log = tmp_path / "node.log"
    append(log, [upload_line(i) for i in range(30)])  # before anyone connects: not counted
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{fwd.port}",
                            "--forwarder-token-file", str(token_file))
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
    busy = writer(log, 1000, 400)
    time.sleep(0.5)
    fwd.kill()  # mid-stream: the writer keeps writing
    wait_for(lambda: source_up(proc) == 0, what="source_up to follow the lost connection")
    time.sleep(0.3)
    fwd.start()
    busy.join()
    wait_counts(proc, 400)
    samples = proc.samples()
    assert samples['storagenode_log_source_up{node="n1"}'] == 1
    assert samples['storagenode_log_source_reconnects_total{node="n1"}'] == 1
    assert samples['storagenode_log_source_bytes_read_total{node="n1"}'] > 400 * 200
    assert samples['storagenode_log_unparsed_lines_total{node="n1"}'] == 0
    first_run = (tmp_path / f"forwarder-{fwd.port}-1.log").read_text()
    assert first_run.count("connected: log n1") == 1
    text = fwd.stop()
    assert text.count("connected: log n1") == 1
    assert text.count("disconnected:") == 1  # the SIGTERM, logged once


def test_exact_counts_when_the_exporter_is_killed_and_restarted_with_its_state_file(
    tmp_path, token_file, forwarders, exporter_process
):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    args = ["--node", f"n1:tcp://127.0.0.1:{fwd.port}", "--forwarder-token-file",
            str(token_file), "--state-file", str(tmp_path / "state.json")]
    proc = exporter_process(*args)
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
    busy = writer(log, 0, 500)
    wait_for(lambda: counts(proc)[0] >= 100, what="the first lines")
    proc.proc.kill()  # kill -9: no goodbye, no final save; lines keep coming
    proc.proc.wait(5)
    time.sleep(0.3)
    proc = exporter_process(*args)
    busy.join()
    wait_counts(proc, 500)
    assert fwd.text().count("connected: log n1") == 2


def _rotate(log: Path, how: str) -> None:
    if how == "copytruncate":
        shutil.copyfile(log, log.with_name(log.name + ".1"))
        os.truncate(log, 0)
    else:
        os.rename(log, log.with_name(log.name + ".1"))


@pytest.mark.parametrize(
    ("kind", "how"),
    [("plain", "rename"), ("plain", "copytruncate"), ("plain", "rename-twice"),
     ("docker", "rename")],
)
def test_rotation_while_disconnected_loses_nothing(
    tmp_path, token_file, forwarders, exporter_process, kind, how
):
    log = tmp_path / ("abc-json.log" if kind == "docker" else "node.log")
    fmt = docker_line if kind == "docker" else upload_line
    log.touch()
    spec = f"docker:{log}" if kind == "docker" else str(log)
    fwd = forwarders(["--log", f"n1={spec}", "--token-file", str(token_file)])
    proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{fwd.port}",
                            "--forwarder-token-file", str(token_file))
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
    append(log, [fmt(i) for i in range(20)])
    wait_counts(proc, 20)
    fwd.kill()
    append(log, [fmt(i) for i in range(100, 110)])  # written while disconnected, then rotated
    if how == "rename-twice":
        _rotate(log, "rename")
        append(log, [fmt(i) for i in range(200, 205)])
        time.sleep(0.02)
        os.rename(log.with_name(log.name + ".1"), log.with_name(log.name + ".2"))
        _rotate(log, "rename")
        expected = 20 + 10 + 5 + 7
    else:
        _rotate(log, how)
        expected = 20 + 10 + 7
    append(log, [fmt(i) for i in range(300, 307)])  # the new file
    fwd.start()
    wait_counts(proc, expected)
    assert "rotated while disconnected" in fwd.text()


def test_wrong_token_and_foreign_clients_are_refused_without_disturbing_a_good_one(
    tmp_path, token_file, forwarders, exporter_process
):
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    proc = exporter_process("--node", f"n1:tcp://127.0.0.1:{fwd.port}",
                            "--forwarder-token-file", str(token_file))
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect")
    busy = writer(log, 0, 300)

    # 1. speaks the protocol, wrong token: told why, then dropped
    with socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as sock:
        reader = FrameReader(sock)
        hello = reader.read_until(5)
        assert hello["type"] == "hello" and hello["auth"] == "hmac-sha256"
        assert len(hello["nonce"]) == 64
        sock.sendall(encode({"type": "auth", "version": VERSION, "nonce": "ab" * 32,
                             "mac": "00" * 32}))
        answer = reader.read_until(5)
        assert answer == {"type": "error", "message": "authentication failed: wrong token"}
        with pytest.raises(PeerClosed):
            reader.read_until(5)
    # 2. an HTTP client: the first 4 bytes read as a 1 GB frame; dropped at once
    with socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = FrameReader(sock)
        assert reader.read_until(5)["type"] == "hello"
        with pytest.raises(PeerClosed):
            reader.read_until(5)
    # 3. the real exporter code with a wrong token gets nothing
    wrong = ForwarderSource("127.0.0.1", fwd.port, "n1", token=b"not the token",
                            backoff_initial=5)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    assert list(wrong.batches(stop)) == []
    assert wrong.stats.up is False and wrong.stats.bytes_read == 0
    busy.join()
    wait_counts(proc, 300)
    samples = proc.samples()
    assert samples['storagenode_log_source_reconnects_total{node="n1"}'] == 0
    text = fwd.text()
    assert text.count("refused: authentication failed: wrong token") == 2
    assert text.count("refused: not speaking the forwarder protocol") == 1
    assert text.count("connected: log n1") == 1


def test_no_token_on_a_public_address_is_refused(tmp_path, token_file):
    log = tmp_path / "node.log"
    log.touch()
    port = free_port()
    run = subprocess.run(
        [sys.executable, "-m", "forwarder", "--log", f"n1={log}", "--listen", f"0.0.0.0:{port}"],
        capture_output=True, text=True, timeout=20, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "STORAGENODE_FORWARDER_TOKEN"},
    )
    assert run.returncode == 2
    assert "refusing to serve logs on a non-loopback address without authentication" in run.stderr
    both = subprocess.run(
        [sys.executable, "-m", "forwarder", "--log", f"n1={log}", "--listen", f"0.0.0.0:{port}",
         "--token-file", str(token_file), "--insecure-no-auth"],
        capture_output=True, text=True, timeout=20, cwd=ROOT,
    )
    assert both.returncode == 2 and "choose one" in both.stderr


def test_insecure_no_auth_is_an_explicit_choice(tmp_path):
    log = tmp_path / "node.log"
    log.touch()
    fwd = ForwarderProcess(tmp_path, ["--log", f"n1={log}", "--insecure-no-auth"],
                           host="0.0.0.0")
    try:
        assert "without authentication, as asked" in fwd.text()
        src = ForwarderSource("127.0.0.1", fwd.port, "n1", from_start=True)
        append(log, [upload_line(i) for i in range(3)])
        got = _collect(src, 3)
        assert [line + "\n" for line in got] == [upload_line(i) for i in range(3)]
        # an exporter that has a token does not talk to a forwarder that cannot prove itself
        strict = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, backoff_initial=5)
        stop = threading.Event()
        threading.Timer(0.8, stop.set).start()
        assert list(strict.batches(stop)) == []
    finally:
        fwd.stop()


# ---- TLS --------------------------------------------------------------------------------------


def _make_certs(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    paths = {k: tmp / f"{k}.pem" for k in ("ca", "ca_key", "server", "server_key", "client",
                                           "client_key")}
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        return _make_certs_openssl(tmp, paths)
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_key(ca_key, paths["ca_key"])
    for who, usage in (("server", ExtendedKeyUsageOID.SERVER_AUTH),
                       ("client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(name(f"test {who}")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
        )
        if who == "server":
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
            ]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[who].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, paths[f"{who}_key"])
    return paths


def _make_certs_openssl(tmp: Path, paths: dict[str, Path]) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor openssl is installed")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(paths["ca_key"]), "-out", str(paths["ca"]), "-days", "1",
        "-subj", "/CN=test CA")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                "extendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        extfile = tmp / f"{who}.ext"
        extfile.write_text(ext + "\n")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(paths[f"{who}_key"]), "-out", str(tmp / f"{who}.csr"),
            "-subj", f"/CN=test {who}")
        run("x509", "-req", "-in", str(tmp / f"{who}.csr"), "-CA", str(paths["ca"]),
            "-CAkey", str(paths["ca_key"]), "-CAcreateserial", "-days", "1",
            "-extfile", str(extfile), "-out", str(paths[who]))
    return paths


def test_tls_with_client_certificates(tmp_path, token_file, forwarders, exporter_process):
    certs = _make_certs(tmp_path)
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file),
                      "--tls-cert", str(certs["server"]), "--tls-key", str(certs["server_key"]),
                      "--tls-client-ca", str(certs["ca"])])
    config = tmp_path / "exporter.yml"
    config.write_text(json.dumps({"nodes": [{
        "name": "n1", "log": f"tcp://127.0.0.1:{fwd.port}",
        "forwarder": {"token_file": str(token_file), "tls_ca_file": str(certs["ca"]),
                      "tls_cert_file": str(certs["client"]),
                      "tls_key_file": str(certs["client_key"])},
    }]}))  # JSON is YAML
    proc = exporter_process("--config", str(config))
    wait_for(lambda: source_up(proc) == 1, what="the exporter to connect over TLS")
    writer(log, 0, 120, delay=0.001).join()
    wait_counts(proc, 120)

    # without a client certificate the TLS handshake is refused
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    with pytest.raises((ssl.SSLError, ConnectionError, PeerClosed, ProtocolError)), \
            socket.create_connection(("127.0.0.1", fwd.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        reader = FrameReader(sock)  # TLS 1.3: the refusal arrives with the first read
        reader.read_until(5)
        reader.read_until(5)
    # plain TCP against the TLS port: no session
    plain = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, connect_timeout=2,
                            backoff_initial=5)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    assert list(plain.batches(stop)) == []
    # a server certificate the client does not trust: the exporter side refuses
    untrusted = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN,
                                tls=ssl.create_default_context(), backoff_initial=5)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    assert list(untrusted.batches(stop)) == []
    assert counts(proc) == (120, 120)
    assert "TLS" in fwd.text()


# ---- ForwarderSource in-process against the real forwarder ------------------------------------


def _collect(src: ForwarderSource, n: int, timeout: float = 15.0, got=None, positions=None):
    """Run src.batches() until n lines arrived; returns the lines (and fills `positions`)."""
    got = [] if got is None else got
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    for batch in src.batches(stop):
        got.extend(batch.lines)
        if positions is not None:
            positions.append((len(got), batch.position, batch.read_time))
        if len(got) >= n or time.monotonic() > deadline:
            stop.set()
    return got


def test_source_resumes_exactly_across_kills_cuts_and_restarts(tmp_path, token_file, forwarders):
    log = tmp_path / "node.log"
    expected = [f"line {i:05d} " + "x" * (i % 97) for i in range(3000)]
    append(log, [line + "\n" for line in expected[:1000]])
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file),
                      "--heartbeat", "0.25"])
    got: list[str] = []
    positions: list = []
    started = time.time()

    # 1. from the start; the "exporter" stops after 400 lines (a restart: a new source object)
    src = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, from_start=True)
    _collect(src, 400, got=got, positions=positions)
    resume = src.position()
    assert resume == positions[-1][1] and resume["log"] == "n1"
    assert resume["file"]["offset"] == sum(len(line) + 1 for line in got)

    # 2. resumed by a new source; lines keep coming while the forwarder is killed and
    # restarted, then while it is frozen (a network cut: the peer goes silent)
    second_half = threading.Event()

    def write_rest():
        for i in range(1000, 3000, 10):
            if i == 2000:
                second_half.wait(20)
            append(log, [line + "\n" for line in expected[i:i + 10]])
            time.sleep(0.01)

    busy = threading.Thread(target=write_rest)
    busy.start()
    src = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, resume=resume,
                          heartbeat=0.25, dead_after=1.0, connect_timeout=1.0,
                          backoff_initial=0.1, backoff_max=0.5)
    stop = threading.Event()
    events: list[str] = []

    def chaos():
        try:
            wait_for(lambda: len(got) > 1200, what="lines after the resume")
            fwd.kill()
            events.append("killed")
            time.sleep(0.3)
            fwd.start()
            wait_for(lambda: len(got) == 2000 and src.stats.up, what="the first half")
            fwd.proc.send_signal(signal.SIGSTOP)
            events.append("frozen")
            second_half.set()
            wait_for(lambda: not src.stats.up, timeout=5, what="the silent peer to be dropped")
            events.append("dropped")
        finally:
            second_half.set()
            fwd.proc.send_signal(signal.SIGCONT)

    helper = threading.Thread(target=chaos)
    helper.start()
    deadline = time.monotonic() + 40
    for batch in src.batches(stop):
        got.extend(batch.lines)
        positions.append((len(got), batch.position, batch.read_time))
        if len(got) >= 3000 or time.monotonic() > deadline:
            stop.set()
    helper.join()
    busy.join()
    assert events == ["killed", "frozen", "dropped"]
    assert len(got) == 3000
    assert got == expected  # no duplicates, no gaps, in order
    assert src.stats.reconnects == 2
    assert src.position()["file"]["offset"] == log.stat().st_size
    for _, _, read_time in positions:  # read times are the forwarder's clock, per line or batch
        for t in read_time if isinstance(read_time, list) else [read_time]:
            assert started <= t <= time.time()


def test_backlog_streams_with_bounded_memory(tmp_path, token_file, forwarders):
    log = tmp_path / "node.log"
    line = "y" * 299
    with open(log, "w") as fh:
        for _ in range(8):
            fh.write((line + "\n") * 12_500)  # 8 x 3.75 MB = 30 MB backlog
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file)])
    src = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN, from_start=True)
    stop = threading.Event()
    n = 0
    biggest = 0
    for batch in src.batches(stop):
        n += len(batch.lines)
        biggest = max(biggest, len(batch.lines))
        if n < 20_000:
            time.sleep(0.002)  # a slow consumer at first: the forwarder must wait, not buffer
        if n >= 100_000:
            stop.set()
    assert n == 100_000
    assert biggest * 300 <= 256 * 1024 + 300
    status = Path(f"/proc/{fwd.proc.pid}/status").read_text()
    peak_kb = int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])
    assert peak_kb < 32_000, f"forwarder peak RSS {peak_kb} kB for a 30 MB backlog"
    assert src.stats.bytes_read > 30_000_000
    assert MAX_FRAME >= 16 << 20


def test_idle_connection_is_kept_alive_by_heartbeats(tmp_path, token_file, forwarders):
    """The forwarder drops clients silent for 4 heartbeats (here 1.2 s); the exporter follows
    the heartbeat the forwarder announces, so an idle stream stays up."""
    log = tmp_path / "node.log"
    log.touch()
    fwd = forwarders(["--log", f"n1={log}", "--token-file", str(token_file),
                      "--heartbeat", "0.3"])
    src = ForwarderSource("127.0.0.1", fwd.port, "n1", token=TOKEN)
    got: list[str] = []
    stop = threading.Event()

    def late_lines():
        time.sleep(3.0)  # idle for 10 heartbeats
        append(log, [upload_line(i) for i in range(5)])

    threading.Thread(target=late_lines).start()
    deadline = time.monotonic() + 10
    for batch in src.batches(stop):
        got.extend(batch.lines)
        if len(got) >= 5 or time.monotonic() > deadline:
            stop.set()
    assert [line + "\n" for line in got] == [upload_line(i) for i in range(5)]
    assert src.stats.reconnects == 0
    assert fwd.text().count("connected: log n1") == 1
    assert "no heartbeat" not in fwd.text()


def test_unreadable_token_file_is_a_config_error(tmp_path):
    missing = tmp_path / "no-such.token"
    run = subprocess.run(
        [sys.executable, "-m", "exporter", "--node", "n1:tcp://127.0.0.1:9",
         "--forwarder-token-file", str(missing), "--web.listen-address",
         f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=20, cwd=ROOT,
    )
    assert run.returncode == 2
    assert "--forwarder-token-file" in run.stderr and str(missing) in run.stderr
