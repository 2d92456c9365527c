"""The command line as a user meets it: errors that name the problem, HTTP endpoints, auth."""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import bcrypt
import pytest

from exporter.state import NATIVE_SCAN
from tests.conftest import FIXTURES, ROOT, ExporterProcess, free_port, total, wait_for


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("nodes:\n  - name: a\n    lgo: /x\n", "nodes[0].lgo: unknown key"),
        ("nodes:\n  - log: /x\n", "nodes[0].name: missing"),
        ("web:\n  listen_adress: x\n", "web.listen_adress: unknown key"),
        ("geoip:\n  precision: 9\n", "geoip.precision: expected 1 to 4"),
        ("nodes:\n  - name: a\n    api: ftp://x\n", "nodes[0].api: expected an http"),
        ("nodes: [\n", "not valid YAML"),
        ("nodes:\n  - name: a\n  - name: a\n", "nodes[1].name: node 'a' is configured twice"),
    ],
)
def test_bad_config_gets_one_clear_error(tmp_path, yaml_text, expected):
    config = tmp_path / "exporter.yml"
    config.write_text(yaml_text)
    result = run("--config", str(config), "--web.listen-address", "127.0.0.1:0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0] and expected in lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--node", "nocolon"], "--node nocolon: expected NAME:SOURCE"),
        (["--api", "a:http://x"], "expected NAME=URL"),
        (["--node", "a:/x", "--web.listen-address", "nonsense"], "--web.listen-address"),
        ([], "no nodes configured"),
        (["--node", "a:/x", "--web.config.file", "/nonexistent.yml"], "/nonexistent.yml"),
    ],
)
def test_bad_flags_get_one_clear_error(args, expected):
    result = run(*args)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_flag_is_named():
    result = run("--nodes", "a:/x")
    assert result.returncode == 2 and "--nodes" in result.stderr


def test_config_file_equivalent_to_flags(tmp_path, exporter_process):
    log = FIXTURES / "logs" / "v1.142.log"
    config = tmp_path / "exporter.yml"
    config.write_text(f"nodes:\n  - name: n1\n    log: {log}\n    from_start: true\n")
    proc = exporter_process("--config", str(config))
    wait_for(lambda: total(proc.samples(), "storagenode_log_lines_total") == 13, what="lines")


def test_landing_page_health_and_404(exporter_process):
    proc = exporter_process("--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}")
    page = proc.get("/")
    assert '<a href="metrics">' in page and "n1" in page
    assert proc.get("/healthz") == "ok\n"
    with pytest.raises(urllib.error.HTTPError) as err:
        proc.get("/nope")
    assert err.value.code == 404
    metrics = proc.get("/metrics")
    hotpath = "c" if NATIVE_SCAN is not None else "python"
    assert re.search(rf'storagenode_exporter_build_info{{hotpath="{hotpath}",'
                     r'revision="([0-9a-f]{40}|unknown)",version=', metrics)
    assert "process_cpu_seconds_total" in metrics


def test_report_table(tmp_path):
    result = run("report", "--node", f"n1:{FIXTURES / 'logs' / 'v1.146.log'}")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("GET "))
    assert row.split()[1:4] == ["2", "2", "0"]  # 2 success, 2 canceled (one a lost race)
    assert "lines: 19 parsed, 0 unparsed" in result.stdout


def test_report_reads_gzip(tmp_path):
    import gzip

    src = (FIXTURES / "logs" / "v1.142.log").read_bytes()
    gz = tmp_path / "node.log.gz"
    gz.write_bytes(gzip.compress(src))
    plain = run("report", "--node", f"n1:{FIXTURES / 'logs' / 'v1.142.log'}",
                "--format", "prometheus")
    packed = run("report", "--node", f"n1:{gz}", "--format", "prometheus")
    strip = [line for line in packed.stdout.splitlines() if "bytes_read" not in line]
    assert strip == [line for line in plain.stdout.splitlines() if "bytes_read" not in line]


def test_report_missing_file():
    result = run("report", "--node", "n1:/does/not/exist.log")
    assert result.returncode == 2 and "/does/not/exist.log" in result.stderr


def _self_signed(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return key, cert


def test_web_config_tls_and_basic_auth(tmp_path):
    key, cert = _self_signed(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}",
         "--web.config.file", str(web), "--web.listen-address", f"127.0.0.1:{port}"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    ctx = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}/metrics"

    def fetch(password: str | None):
        request = urllib.request.Request(url)
        if password is not None:
            token = base64.b64encode(f"prometheus:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, context=ctx, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    try:
        wait_for(lambda: fetch(None) is not None, what="TLS server")
        assert fetch(None) == 401
        assert fetch("wrong") == 401
        assert fetch("s3cret") == 200
        with pytest.raises(OSError):  # plain HTTP is not served
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    finally:
        proc.terminate()
        proc.wait(10)


def test_warns_when_listening_beyond_loopback_without_auth(tmp_path):
    proc = ExporterProcess(["--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}"])
    proc.stop()  # loopback: no warning
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}",
         "--web.listen-address", f"0.0.0.0:{port}"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        wait_for(lambda: _get_ok(f"http://127.0.0.1:{port}/healthz"), what="server")
    finally:
        p.terminate()
        err = p.communicate(timeout=10)[1]
    assert err.count("without authentication") == 1


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def test_state_file_from_environment(tmp_path):
    """The Docker image turns the state file on through the environment."""
    state = tmp_path / "state.json"
    proc = ExporterProcess(["--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}", "--from-start"],
                           env={"STORAGENODE_EXPORTER_STATE_FILE": str(state)})
    wait_for(lambda: total(proc.samples(), "storagenode_log_lines_total") == 6, what="lines")
    proc.stop()
    assert state.exists() and '"n1"' in state.read_text()


def test_version_like_node_exporter():
    result = run("--version")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(r"storagenode-exporter, version \S+ \(revision: ([0-9a-f]{40}|unknown)\)",
                        first), first
    hotpath = "c" if NATIVE_SCAN is not None else "python"
    assert any(re.fullmatch(rf"\s+hot path:\s+{hotpath}", line) for line in rest), rest
    assert any("python version:" in line and sys.version.split()[0] in line for line in rest)


@pytest.mark.parametrize("flag", ["--nod", "--node.", "--web.listen", "--from"])
def test_no_prefix_abbreviations(flag):
    result = run(flag, "a:/x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert flag in lines[0] and "see 'storagenode-exporter --help'" in lines[0]


def test_bad_flag_value_one_line_with_hint():
    result = run("--node", "a:/x", "--web.max-connections", "0")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "--web.max-connections" in lines[0] and "--help" in lines[0]
    demo = run("demo", "--api.prot", "1")
    assert demo.returncode == 2 and "storagenode-exporter demo --help" in demo.stderr


def test_log_format_json_and_telemetry_path(exporter_process):
    proc = exporter_process("--node", f"n1:{FIXTURES / 'logs' / 'v1.80.log'}",
                            "--log.format", "json", "--web.telemetry-path", "/prom",
                            "--web.max-connections", "8", "--web.read-header-timeout", "3")
    assert "storagenode_log_lines_total" in proc.get("/prom")
    with pytest.raises(urllib.error.HTTPError) as err:
        proc.get("/metrics")
    assert err.value.code == 404
    assert 'href="prom"' in proc.get("/")
    lines = [json.loads(line) for line in proc.stop().splitlines()]
    assert lines and all({"ts", "level", "source", "msg"} <= set(d) for d in lines)
    assert any(d["msg"].startswith("listening on 127.0.0.1:") for d in lines)


def test_bad_telemetry_path_refused():
    result = run("--node", "a:/x", "--web.telemetry-path", "/healthz")
    assert result.returncode == 2 and "--web.telemetry-path" in result.stderr
