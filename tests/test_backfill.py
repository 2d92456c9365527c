"""`storagenode-exporter backfill`: blocks made by the real promtool, loaded by a real
Prometheus, queried over its HTTP API; the values at known times match the log."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port, wait_for
from tests.test_checkpoint import log_line

STEP = 60
LINES = 9000  # one line every 2 s: 5 hours, 3 to 4 two-hour blocks
# families that backfill leaves out on purpose (see exporter/backfill.py)
NOT_BACKFILLED = ("storagenode_log_source_", "storagenode_top_piece_downloads",
                  "storagenode_log_oversized_lines")


def _start() -> int:
    """Recent log times (Prometheus drops blocks older than its retention)."""
    return (int(time.time()) - 30 * 3600) // STEP * STEP + 8  # every 30th line on a step


def _write_rotated_set(tmp: Path, start: int) -> list[Path]:
    lines = [log_line(i, start + 2 * i) for i in range(LINES)]
    oldest, middle, current = tmp / "node.log.2.gz", tmp / "node.log.1", tmp / "node.log"
    with gzip.open(oldest, "wt", encoding="utf-8") as fh:
        fh.write("".join(lines[:3000]))
    middle.write_text("".join(lines[3000:6500]), encoding="utf-8")
    current.write_text("".join(lines[6500:]), encoding="utf-8")
    return [current, oldest, middle]  # out of order on purpose


def _backfill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", "backfill", "--no-progress", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def _count(start: int, until: float, kinds: tuple[int, ...]) -> int:
    """Lines of the given kinds (i % 10) logged at or before `until`."""
    return sum(1 for i in range(LINES) if i % 10 in kinds and start + 2 * i <= until)


def _key(name: str, labels: dict) -> tuple:
    return name, tuple(sorted((k, v) for k, v in labels.items() if k not in ("job", "__name__")))


class Prometheus:
    def __init__(self, tmp: Path, data: Path) -> None:
        config = tmp / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        self.port = free_port()
        self.log = open(tmp / "prometheus.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=30d"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, timeout=30, what="Prometheus to be ready")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr: str, at: float) -> list[dict]:
        qs = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        url = f"http://127.0.0.1:{self.port}/api/v1/query?{qs}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str, at: float) -> float:
        result = self.query(expr, at)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()


@pytest.fixture
def prometheus_bin():
    if shutil.which("promtool") is None or shutil.which("prometheus") is None:
        pytest.skip("promtool/prometheus not installed")


def test_blocks_loaded_by_prometheus_match_the_log(tmp_path, prometheus_bin):
    start = _start()
    files = _write_rotated_set(tmp_path, start)
    data = tmp_path / "data"
    done = _backfill(*[a for f in files for a in ("--node", f"n1:{f}")],
                     "--out", str(data), "--resolution", f"{STEP}s", "--label", "job=backfill")
    assert done.returncode == 0, done.stderr
    assert "9,000 lines" in done.stdout
    blocks = [p for p in data.iterdir() if (p / "meta.json").exists()]
    assert len(blocks) >= 3
    assert not (data / ".backfill-openmetrics").exists()

    last_line = start + 2 * (LINES - 1)
    last_sample = -(-last_line // STEP) * STEP
    prom = Prometheus(tmp_path, data)
    try:
        # sample times: the first step, one in the middle of a block, the last sample
        for sample in (start - start % STEP + STEP, start + 2 * 3600 + 53, last_sample):
            sample -= sample % STEP
            at = sample + 20  # an instant query returns the sample at `sample`
            put_ok = prom.value(
                'sum(storagenode_transfers_total{node="n1",job="backfill",action="PUT",'
                'result="success"})', at)
            assert put_ok == _count(start, sample, (1, 2, 3))
            assert prom.value('storagenode_log_unparsed_lines_total{node="n1"}', at) == _count(
                start, sample, (8,))
            assert prom.value('sum(storagenode_log_lines_total{node="n1"})', at) == _count(
                start, sample, (0, 1, 2, 3, 4, 5, 6, 7, 9))
            assert prom.value(
                'storagenode_transfer_duration_seconds_count{action="GET",result="success"}',
                at) == _count(start, sample - 10, (0,))  # a GET finishes 10 s after its start
            us1 = prom.value('storagenode_transfers_total{satellite="us1",action="GET_REPAIR",'
                             'result="failed"}', at)
            assert us1 == sum(1 for i in range(LINES)
                              if i % 10 == 6 and i % 4 == 0 and start + 2 * i <= sample)
        # one sample per step: an hour holds 60
        assert prom.value('count_over_time(storagenode_log_unparsed_lines_total[1h])',
                          start + 3 * 3600) == 3600 / STEP
        # every backfilled series at the end equals `report` over the whole log
        series = prom.query('{__name__=~"storagenode_.+", job="backfill"}', last_sample + 20)
        got = {_key(s["metric"]["__name__"], s["metric"]): float(s["value"][1]) for s in series}
    finally:
        prom.stop()
    report = subprocess.run(
        [sys.executable, "-m", "exporter", "report", "--format", "prometheus", "--no-progress",
         *[a for f in files[1:] + files[:1] for a in ("--node", f"n1:{f}")]],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    want = {
        _key(s.name, s.labels): s.value
        for family in text_string_to_metric_families(report)
        for s in family.samples
        if not s.name.startswith(NOT_BACKFILLED)
    }
    assert got == want


def test_until_cuts_the_history_before_the_live_exporter(tmp_path):
    start = _start()
    files = _write_rotated_set(tmp_path, start)
    until = start + 3 * 3600 + 30
    out = tmp_path / "om"
    done = _backfill(*[a for f in files for a in ("--node", f"n1:{f}")], "--out", str(out),
                     "--openmetrics-only", "--until", str(until), "--resolution", "5m")
    assert done.returncode == 0, done.stderr
    assert "stopped at --until" in done.stdout
    samples = []  # (timestamp, value) of the unparsed-lines counter, file after file
    texts = sorted(out.glob("*.om"))
    assert len(texts) >= 2
    for path in texts:
        text = path.read_text()
        assert text.endswith("# EOF\n")
        for line in text.splitlines():
            if line.startswith('storagenode_log_unparsed_lines_total{node="n1"} '):
                _, value, stamp = line.split(" ")
                samples.append((float(stamp), float(value)))
    times = [t for t, _ in samples]
    assert times == sorted(times)
    assert max(times) < until  # nothing at or after the live exporter's start
    assert max(times) == until - 0.001
    assert samples[-1][1] == _count(start, until - 1, (8,))
    assert all(t % 300 == 0 for t in times[:-1])


def test_missing_promtool_is_one_clear_error(tmp_path):
    log = tmp_path / "node.log"
    log.write_text(log_line(1))
    done = _backfill("--node", f"n1:{log}", "--out", str(tmp_path / "out"),
                     "--promtool", str(tmp_path / "no-such-promtool"))
    assert done.returncode == 2
    assert "not found" in done.stderr and "Traceback" not in done.stderr
