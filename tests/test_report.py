"""`storagenode-exporter report` as an operator reads it (issue 16): successrate.sh's split,
80 columns, colour only on a terminal, and every number equal to `--format prometheus`.

Every test runs the real `report` process; the one in-process test feeds counts no fixture
can reach (billions) to the formatter.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import reporttable
from tests.conftest import FIXTURES, ROOT

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SATS = ("12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S",  # us1
        "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs",  # eu1
        "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE")  # saltlake
#: (action, error) of the failures in the generated log: more reasons than fit on one line
FAILURES = (
    *[("GET_AUDIT", "file does not exist")] * 2,
    *[("GET_AUDIT", "context deadline exceeded")] * 2,
    ("GET_AUDIT", "read: input/output error"),
    ("GET", "write tcp 1.2.3.4:28967->5.6.7.8:1: write: connection reset by peer"),
    ("GET", "manager closed: unexpected EOF"),
    ("GET", "tls: bad certificate"),
    ("GET", "untrusted: invalid order limit signature"),
    ("GET_REPAIR", "file does not exist"),
    ("GET_REPAIR", "context deadline exceeded"),
    ("GET_REPAIR", "order expired"),
    ("PUT", "hashes don't match"),
    ("PUT", "no space left on device"),
    ("PUT", "database is locked"),
    ("PUT_REPAIR", "use of closed network connection"),
)


def piece(i: int) -> str:
    return base64.b32encode(hashlib.sha256(str(i).encode()).digest()).decode().rstrip("=")


def line(i: int, message: str, action: str, extra: str = "", level: str = "INFO") -> str:
    size = '"Size": 2293760' if action.startswith("PUT") else '"Offset": 0, "Size": 7936'
    return (f'2025-12-21T15:{i // 60 % 60:02d}:{i % 60:02d}Z\t{level}\tpiecestore\t{message}\t'
            f'{{"Process": "storagenode", "Piece ID": "{piece(i)}", "Satellite ID": '
            f'"{SATS[i % 3]}", "Action": "{action}", {size}, "Remote Address": "1.2.3.4:5"'
            f'{extra}}}')


def generated_log(path: Path) -> Path:
    """v1.142-shaped lines: 150 GETs (130 ok, 20 canceled), audits failing critically and
    recoverably, uploads rejected, and failures of 15 different (action, reason) pairs."""
    out, i = [], 0
    for n in range(150):
        i += 1
        out.append(line(i, "downloaded" if n < 130 else "download canceled", "GET"))
    for _ in range(7):
        i += 1
        out.append(line(i, "downloaded", "GET_AUDIT"))
    for _ in range(40):
        i += 1
        out.append(line(i, "uploaded", "PUT"))
    for _ in range(3):
        out.append('2025-12-21T15:44:00Z\tINFO\tpiecestore\tupload rejected, too many requests'
                   '\t{"Process": "storagenode", "live requests": 41, "requestLimit": 40}')
    for action, error in FAILURES:
        i += 1
        verb = "upload failed" if action.startswith("PUT") else "download failed"
        out.append(line(i, verb, action, f', "error": "{error}", "errorVerbose": "{error}"',
                        level="ERROR"))
    path.write_text("\n".join(out) + "\n")
    return path


def report(*args: str, env: dict | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "exporter", "report", "--no-progress", *args],
                            capture_output=True, text=True, cwd=ROOT, timeout=30,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout


def plain_env() -> dict:
    return {"NO_COLOR": "", "FORCE_COLOR": ""}


def exposition(log: Path) -> dict[tuple, float]:
    """(metric name, sorted label items without node) -> value."""
    text = report("--node", f"n:{log}", "--format", "prometheus", env=plain_env())
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "node"))
            out[(s.name, labels)] = s.value
    return out


def summed(samples: dict, name: str, **want: str) -> int:
    return int(sum(v for (n, labels), v in samples.items()
                   if n == name and want.items() <= dict(labels).items()))


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.3f}%" if whole else "-"


def fixture_logs() -> list[Path]:
    return sorted((FIXTURES / "logs").glob("*.log"))


@pytest.mark.parametrize("log", fixture_logs(), ids=lambda p: p.name)
def test_every_fixture_fits_80_columns_without_colour_when_piped(log):
    text = report("--node", f"n:{log}", env=plain_env())
    assert "\x1b" not in text
    assert max(len(x) for x in text.splitlines()) <= 80, text


def test_generated_log_fits_80_columns(tmp_path):
    text = report("--node", f"a-node-with-a-long-name:{generated_log(tmp_path / 'n.log')}",
                  env=plain_env())
    assert max(len(x) for x in text.splitlines()) <= 80, text


def test_critical_and_recoverable_audits_apart(tmp_path):
    text = report("--node", f"n:{generated_log(tmp_path / 'n.log')}", env=plain_env())
    audits = " ".join(x.strip() for x in text.split("  audits:")[1].split("  audits by")[0]
                      .splitlines())
    # 12 audits: 7 ok, 2 `file does not exist`, 3 recoverable (2 timeouts, 1 I/O error)
    assert audits == ("2 critical (16.667%, file does not exist), 3 recoverable (25.000%), "
                      "0 canceled (0.000%), 7 success (58.333%)")
    row = next(x for x in text.splitlines() if x.startswith("  GET_AUDIT "))
    assert row.split() == ["GET_AUDIT", "7", "0", "5", "58.333%", "0.000%", "41.667%"]
    assert "uploads: 43 accepted, 3 rejected (too many requests), acceptance 93.478%" in text


def test_long_reason_list_wraps_under_its_first_item(tmp_path):
    text = report("--node", f"n:{generated_log(tmp_path / 'n.log')}", env=plain_env())
    lines = text.splitlines()
    first = next(i for i, x in enumerate(lines) if x.startswith("  top failure reasons: "))
    block = [lines[first]]
    for x in lines[first + 1:]:
        if not x.startswith(" " * 23) or x[23] == " ":
            break
        block.append(x)
    assert len(block) >= 3, text  # 10 reasons do not fit on one or two lines
    assert all(len(x) <= 80 for x in block)
    items = ", ".join(x[23:].rstrip(",") for x in block).split(", ")
    assert len(items) == reporttable.TOP_FAILURES
    # every item whole: action, reason label, count, nothing broken across lines
    assert all(re.fullmatch(r"[A-Z_]+ [a-z_]+ [\d,]+", item) for item in items), items
    assert all(x.endswith(",") for x in block[:-1]) and not block[-1].endswith(",")


def test_colour_only_on_a_terminal_or_forced(tmp_path):
    log = generated_log(tmp_path / "n.log")
    forced = report("--node", f"n:{log}", env={"NO_COLOR": "", "FORCE_COLOR": "1"})
    assert "\x1b[31m2 critical" in forced and "\x1b[33m3 recoverable" in forced
    # GET: 130 of 154 = 84 %: yellow (below 95 %, not below the alert's 80 %); the audits
    # red (a critical failure); PUT not judged: 43 transfers, the alert wants 100
    assert "\x1b[33m   84.416%\x1b[0m" in forced and "\x1b[31m   58.333%\x1b[0m" in forced
    assert re.search(r"^  PUT +40 +0 +3   93.023%    0.000%", forced, re.M)
    assert max(len(ANSI.sub("", x)) for x in forced.splitlines()) <= 80
    assert ANSI.sub("", forced) == report("--node", f"n:{log}", env=plain_env())
    assert "\x1b" not in report("--node", f"n:{log}", env={"NO_COLOR": "1", "FORCE_COLOR": "1"})
    # a real terminal: colour unless NO_COLOR
    assert "\x1b[31m" in on_terminal(log, {"NO_COLOR": "", "FORCE_COLOR": ""})
    assert "\x1b" not in on_terminal(log, {"NO_COLOR": "1", "FORCE_COLOR": ""})


def on_terminal(log: Path, env: dict) -> str:
    """`report` with its stdout on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "report", "--no-progress", "--node", f"n:{log}"],
        stdout=follower, stderr=subprocess.DEVNULL, cwd=ROOT,
        env={**os.environ, "TERM": "xterm", **env})
    os.close(follower)
    chunks = []
    try:
        while select.select([leader], [], [], 20)[0]:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        assert proc.wait(timeout=20) == 0
    return b"".join(chunks).decode()


@pytest.mark.parametrize("name", ["generated", *(p.name for p in fixture_logs())])
def test_every_number_equals_the_exposition(tmp_path, name):
    log = generated_log(tmp_path / "n.log") if name == "generated" else FIXTURES / "logs" / name
    samples = exposition(log)
    text = report("--node", f"n:{log}", env=plain_env())
    joined = re.sub(r"\n {10,}", " ", text)  # continuation lines back onto their line
    transfers = "storagenode_transfers_total"
    rows = re.findall(r"^  ([A-Za-z_]+) +([\d,]+) +([\d,]+) +([\d,]+) +(\S+) +(\S+) +(\S+)$",
                      text, re.M)
    assert [r[0] for r in rows][:5] == ["GET", "GET_AUDIT", "GET_REPAIR", "PUT", "PUT_REPAIR"]
    for action, *shown in rows:
        ok, canceled, failed = (summed(samples, transfers, action=action, result=r)
                                for r in ("success", "canceled", "failed"))
        whole = ok + canceled + failed
        assert shown == [f"{ok:,}", f"{canceled:,}", f"{failed:,}", pct(ok, whole),
                         pct(canceled, whole), pct(failed, whole)], action
    errors = "storagenode_transfer_errors_total"
    failed = summed(samples, transfers, action="GET_AUDIT", result="failed")
    critical = summed(samples, errors, action="GET_AUDIT", reason="file_not_found")
    ok = summed(samples, transfers, action="GET_AUDIT", result="success")
    canceled = summed(samples, transfers, action="GET_AUDIT", result="canceled")
    whole = ok + canceled + failed
    if whole:
        assert (f"audits: {critical:,} critical ({pct(critical, whole)}, file does not exist), "
                f"{failed - critical:,} recoverable ({pct(failed - critical, whole)}), "
                f"{canceled:,} canceled ({pct(canceled, whole)}), "
                f"{ok:,} success ({pct(ok, whole)})") in joined
    rejected = summed(samples, "storagenode_events_total", event="upload_rejected")
    accepted = sum(summed(samples, transfers, action="PUT", result=r)
                   for r in ("success", "canceled", "failed"))
    assert (f"uploads: {accepted:,} accepted, {rejected:,} rejected (too many requests), "
            f"acceptance {pct(accepted, accepted + rejected)}") in joined
    for label, metric, top in (
            ("top failure reasons", errors, reporttable.TOP_FAILURES),
            ("top cancel reasons", "storagenode_transfer_cancel_reasons_total",
             reporttable.TOP_CANCELS)):
        values = sorted(((-v, dict(lb)["action"], dict(lb)["reason"])
                         for (n, lb), v in samples.items() if n == metric and v), )[:top]
        m = re.search(rf"{label}: (.*)", joined)
        expected = ", ".join(f"{a} {r} {int(-v):,}" for v, a, r in values)
        assert (m.group(1) if m else "") == expected, label
    for sat in ("us1", "eu1", "saltlake"):
        good = summed(samples, transfers, action="GET_AUDIT", result="success", satellite=sat)
        bad = summed(samples, transfers, action="GET_AUDIT", satellite=sat) - good
        if good or bad:
            assert f"{sat} {good:,} ok {bad:,} not ok" in joined
    parsed = summed(samples, "storagenode_log_lines_total")
    unparsed = summed(samples, "storagenode_log_unparsed_lines_total")
    assert f"lines: {parsed:,} parsed, {unparsed:,} unparsed" in text


def test_billions_still_fit_80_columns():
    """Counts no fixture reaches: separators go before a row would pass 80 columns."""
    for big in (999_999_999, 12_345_678_901, 99_999_999_999):
        snap = {"transfers": {("us1", a, r): big for a in ("GET", "PUT")
                              for r in ("success", "canceled", "failed")},
                "errors": {("GET", "timeout"): big}, "cancel_reasons": {("GET", "canceled"): big},
                "events": {"upload_rejected": big}, "lines": {"info": big * 6},
                "unparsed": big}
        text = reporttable.render([("n", snap)], colour=False)
        assert max(len(x) for x in text.splitlines()) <= 80, text
        assert f"{big:,}" in text or str(big) in text


@pytest.mark.parametrize("args", [["--format", "table"], ["--format", "prometheus"],
                                  ["--format", "prometheus", "--geoip-db",
                                   str(ROOT / "exporter" / "data" / "demo-geoip.mmdb")]])
def test_the_report_imports_no_prometheus_client(args):
    """The default table is what operators run by hand, --format prometheus what textfile cron
    jobs and the benchmark run: all start without prometheus_client (~50 ms, a third of the
    start-up), with --geoip-db too; the exposition is the text writers' (exporter/nodetext.py,
    exporter/geo/collector.py). Nor do they load
    what only the server needs: ctypes (inotify, logstream/notify.py) and socket (the
    signal waiter, exporter/signals.py)."""
    log = FIXTURES / "logs" / "v1.146.log"
    probe = ("import sys; from exporter import cli; rc = cli.main(sys.argv[1:]); "
             "print(*sorted({'prometheus_client', 'ctypes', 'socket'} & "
             "set(sys.modules)), 'loaded', file=sys.stderr); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", probe, "report", "--node", f"n:{log}", *args,
                          "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)
    loaded = out.stderr.strip().splitlines()[-1].split()
    # the GeoIP locator parses addresses with socket.inet_pton
    assert loaded == (["socket", "loaded"] if "--geoip-db" in args else ["loaded"]), out.stderr


class _Nothing:
    """An extra collector with no families: exposition() goes through generate_latest."""

    def collect(self) -> list:
        return []


def test_the_exposition_without_prometheus_client_is_generate_latest():
    """The text writer's report (no extra collectors) is byte for byte the registry's."""
    from exporter.report import build_states, exposition

    logs = fixture_logs()
    nodes = [(log.stem, str(log)) for log in logs] + [("both", str(logs[0])),
                                                      ("both", str(logs[-1]))]
    runners = build_states(nodes, show_progress=False)
    text = exposition(runners)
    assert text == exposition(runners, [_Nothing()])
    assert text.count(b'node="both"') > 0


def test_the_geo_exposition_without_prometheus_client_is_generate_latest():
    """`report --geoip-db`: the geo families' text is byte for byte the registry's too
    (label order, `_total`, escapes, floats)."""
    from exporter.geo import GeoCollector, GeoLocator, GeoRecorder
    from exporter.report import build_states, exposition

    locator = GeoLocator(str(ROOT / "exporter" / "data" / "demo-geoip.mmdb"))
    recorders: dict = {}

    def geo(name):
        return recorders.setdefault(name, GeoRecorder(locator, node=name))

    weird = ('we"ird\\', str(FIXTURES / "logs" / "v1.146.log"))
    nodes = [(log.stem, str(log)) for log in fixture_logs()] + [weird]
    runners = build_states(nodes, show_progress=False, geo=geo)
    collector = GeoCollector(recorders)
    text = exposition(runners, [collector])
    assert text == exposition(runners, [collector, _Nothing()])
    assert text.count(b"storagenode_geo_transfers{") > 10
    assert b'node="we\\"ird\\\\"' in text and b"storagenode_geo_overflow_transfers_total{" in text
