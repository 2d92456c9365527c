"""The direct /metrics writer and its per-node cache (issue 15, exporter/exposition.py)."""

from __future__ import annotations

import gzip
import urllib.request
import zlib

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from exporter.collector import LogCollector
from exporter.exposition import Gzip
from exporter.report import build_states
from tests.conftest import FIXTURES, total, wait_for

LOGS = sorted(p.name for p in (FIXTURES / "logs").glob("*.log"))
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.mark.parametrize("name", LOGS)
def test_text_writer_is_byte_identical_to_prometheus_client(name):
    """The cached text of the log families equals generate_latest of the same collector."""
    path = str(FIXTURES / "logs" / name)
    runners = build_states([("n1", path), ("n2", path)], show_progress=False)
    collector = LogCollector(runners)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    want = generate_latest(registry).decode()
    assert collector.text() == want
    assert collector.text() == want  # from the cache


def get(url: str, accept: str | None) -> tuple[str, str]:
    headers = {"Accept-Encoding": "gzip"}
    if accept:
        headers["Accept"] = accept
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        body = r.read()
        if r.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body.decode(), r.headers["Content-Type"]


def samples(families) -> dict:
    out = {}
    for family in families:
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_cached_block_follows_new_lines(exporter_process, tmp_path):
    """Feed a line, scrape, feed another, scrape: the second scrape shows it (no stale block)."""
    log = tmp_path / "node.log"
    line = (FIXTURES / "logs" / "v1.146.log").read_text().splitlines()[0] + "\n"
    log.write_text(line)
    proc = exporter_process("--node", f"n1:{log}", "--from-start")
    url = proc.url + "/metrics"

    def lines_total() -> float:
        text, _ = get(url, PROMETHEUS_ACCEPT)
        return sum(s.value for f in text_families(text) for s in f.samples
                   if s.name == "storagenode_log_lines_total")

    wait_for(lambda: lines_total() == 1, what="the first line")
    assert lines_total() == 1  # scraped again: the cached block
    with log.open("a") as f:
        f.write(line)
    wait_for(lambda: lines_total() == 2, timeout=10, what="the second line")
    assert total(proc.samples(), "storagenode_log_lines_total") == 2


def test_text_and_openmetrics_scrapes_agree(exporter_process):
    """Prometheus' Accept gets the fast text path, an OpenMetrics-only client gets OpenMetrics
    from prometheus_client; both parse and carry the same log samples."""
    proc = exporter_process("--node", f"n1:{FIXTURES / 'logs' / 'v1.146.log'}", "--from-start")
    url = proc.url + "/metrics"
    size = (FIXTURES / "logs" / "v1.146.log").stat().st_size
    wait_for(lambda: total(proc.samples(), "storagenode_log_source_bytes_read_total") == size,
             what="the whole fixture read")
    text, kind = get(url, PROMETHEUS_ACCEPT)
    assert kind.startswith("text/plain; version=0.0.4")
    om, om_kind = get(url, "application/openmetrics-text;version=1.0.0")
    assert om_kind.startswith("application/openmetrics-text")
    log_text = {k: v for k, v in samples(text_families(text)).items()
                if k[0].startswith("storagenode_") and "build" not in k[0]}
    log_om = {k: v for k, v in samples(om_families(om)).items()
              if k[0].startswith("storagenode_") and "build" not in k[0]}
    assert log_text and log_text == log_om
    assert text.count("# TYPE storagenode_log_lines_total counter") == 1
    assert text.count("# TYPE process_resident_memory_bytes gauge") == 1


def test_gzip_with_a_reused_log_part_is_one_valid_member():
    """The cached deflated log part plus a fresh tail decompress to log + rest, as one gzip
    member (zlib, as curl and Go's reader without multistream read it), and a changed log
    part is deflated again."""
    gz = Gzip()
    log, rest = "storagenode_x_total 1.0\n" * 5000, b"process_cpu_seconds_total 1.5\n"
    for _ in range(2):
        one = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert one.decompress(gz.compress(log, rest)) == log.encode() + rest
        assert one.eof and not one.unused_data
    other = log + "y 2.0\n"
    assert gzip.decompress(gz.compress(other, rest)) == other.encode() + rest


def test_no_log_nodes_still_gives_the_family_headers():
    """An API-only exporter: the text path writes what generate_latest writes (headers only)."""
    collector = LogCollector([])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    assert collector.text() == generate_latest(registry).decode()
