"""The direct /metrics writer and its per-node cache (issue 15, exporter/exposition.py)."""

from __future__ import annotations

import gzip
import random
import urllib.request
import zlib

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families
from prometheus_client.utils import floatToGoString

from exporter.collector import LogCollector
from exporter.exposition import Gzip, Prerendered
from exporter.nodetext import go_float, number
from exporter.report import build_states
from exporter.runner import NodeRunner
from exporter.satellites import SATELLITES, encode_node_id
from exporter.simulate.loggen import LogGenerator
from exporter.state import NodeState
from logstream.source import Source
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


def test_gzip_reuses_prerendered_parts_in_one_valid_member():
    """Parts between the log text and the end (the node API's kept text among the registry's
    text) decompress, as one member, to everything joined, reused or deflated again."""
    gz = Gzip()
    log = "storagenode_x_total 1.0\n" * 3000
    api = Prerendered("storagenode_up{node=\"n1\"} 1.0\n" * 3000)
    for part in (api, api, Prerendered(api.text + "storagenode_up{node=\"n2\"} 0.0\n")):
        for rest in ([b"process_a 1.0\n", part, b"geo 2.0\n"], [part], [b"", part, b""]):
            one = zlib.decompressobj(16 + zlib.MAX_WBITS)
            want = log.encode() + b"".join(p.data if isinstance(p, Prerendered) else p
                                          for p in rest)
            assert one.decompress(gz.compress(log, rest)) == want
            assert one.eof and not one.unused_data
        assert gz._kept[id(part)][0] is part and len(gz._kept) == 1


def test_no_log_nodes_still_gives_the_family_headers():
    """An API-only exporter: the text path writes what generate_latest writes (headers only)."""
    collector = LogCollector([])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    assert collector.text() == generate_latest(registry).decode()


def _registry(collector: LogCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


@pytest.mark.parametrize("value", [
    0, 1, 7, 999_999, 1_000_000, 1_000_001, 1_234_567, 10**7, 123_456_789_012, 10**15 - 1,
    10**15, 10**15 + 1, 2**53 + 1, 10**16, 10**18, -1, -999_999, -10**7, -2**60,
    0.0, -0.0, 0.1, 1e-7, 2.5, 123456.7, 999999.9999999999, 1e6, 1.5e6, 3.25e15, 1e16, 1e20,
    -1.5, -1e7, 1e-300, 1.7976931348623157e308, True,
])
def test_number_is_floatToGoString(value):
    assert number(value) == floatToGoString(value)


def test_number_of_many_ints_and_floats_is_floatToGoString():
    rng = random.Random(15)
    for digits in range(1, 20):
        for _ in range(200):
            n = rng.randrange(10 ** (digits - 1), 10**digits)
            assert number(n) == floatToGoString(n), n
            f = n / rng.choice((1, 3, 7, 1000, 2**20))
            assert number(f) == floatToGoString(f), f


GO_FLOATS = [
    0, 1, -1, 7, 999_999, 1_000_000, 9_999_999, 10**7, 12_345_678, 10**15, 2**53 + 1, 10**22,
    -10**7, True, False, 0.0, -0.0, 0.1, 1e-7, 1e-300, 5e-324, 2.5, 123456.7, 1e6, 1e7,
    1.25e7, 99999999.5, 1e15, 1e16, 1e21, 1e22, 1e100, -1e7, -1.5e22, 1.7976931348623157e308,
    float("inf"), float("-inf"), float("nan"),
]


@pytest.mark.parametrize("value", GO_FLOATS, ids=repr)
def test_go_float_is_floatToGoString(value):
    assert go_float(value) == floatToGoString(value)


def test_go_float_of_many_ints_and_floats_is_floatToGoString():
    rng = random.Random(16)
    for digits in range(1, 25):
        for _ in range(200):
            n = rng.randrange(10 ** (digits - 1), 10**digits) * rng.choice((1, -1))
            assert go_float(n) == floatToGoString(n), n
            f = n / rng.choice((1, 3, 7, 1000, 2**20, 10**9))
            assert go_float(f) == floatToGoString(f), f
            e = rng.uniform(-1, 1) * 10.0 ** rng.randrange(-320, 308)
            assert go_float(e) == floatToGoString(e), e


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400])
def test_number_refuses_what_is_not_a_finite_number(value):
    with pytest.raises((ValueError, OverflowError)):
        number(value)


def test_text_follows_every_change_byte_identical():
    """Lines fed in rounds (new series, new histograms, housekeeping lines, unchanged
    families between rounds): after every round the text equals generate_latest."""
    runners = []
    gens = [LogGenerator(era="v1.146", seed=15 + i, started=True) for i in range(2)]
    for i in range(2):
        source = Source()
        source.stats.up = True
        runners.append(NodeRunner(f"n{i}", source, NodeState(f"n{i}")))
    collector = LogCollector(runners)
    registry = _registry(collector)
    start = 1_760_000_000.0
    for round_ in range(40):
        for runner, gen in zip(runners, gens, strict=True):
            count = 1 if round_ % 3 else 60
            runner.state.feed([x.rstrip("\n") for x in gen.lines(count, start=start)], None)
            runner.source.stats.bytes_read += count * 200
        if round_ % 5 == 4:  # a scrape where nothing changed
            assert collector.text() is collector.text()
        assert collector.text() == generate_latest(registry).decode(), f"round {round_}"
        start += 30


def test_a_satellite_named_later_is_shown_by_its_name():
    """A satellite ID the built-in table does not know is its own label value until the node
    API names it; the kept label parts follow."""
    sat = encode_node_id(bytes(range(32, 64)))
    line = ('2025-12-21T15:18:59Z\tINFO\tpiecestore\tuploaded\t{"process": "storagenode", '
            '"piece_id": "BNERV6D3IQGORXMICYMR6FGFMLOVV6MUB3XMM6IRXDJBVDPJZ2KQ", '
            f'"satellite_id": "{sat}", "action": "PUT", "remote_address": "172.17.0.1:41080", '
            '"size": 4096}')
    state = NodeState("n1")
    state.feed([line], None)
    collector = LogCollector([NodeRunner("n1", Source(), state)])
    registry = _registry(collector)
    assert f'satellite="{sat}"' in collector.text()
    SATELLITES.learn(sat, "later.example.com:7777")
    state.feed([line], None)
    text = collector.text()
    assert f'satellite="{sat}"' not in text and 'satellite="later"' in text
    assert text == generate_latest(registry).decode()


@pytest.mark.parametrize("poison", ["huge", "inf", "nan"])
def test_a_node_that_cannot_be_written_is_left_out_of_the_text(poison, caplog):
    """As collect() does (tests/test_poison.py): a value that is not a finite number drops
    that node's block with one log line, the other nodes are written; fixed, it is back."""
    runners = []
    for name in ("bad", "good"):
        state = NodeState(name)
        state.feed([(FIXTURES / "logs" / "v1.146.log").read_text().splitlines()[0]], None)
        runners.append(NodeRunner(name, Source(), state))
    bad = runners[0].state
    if poison == "huge":
        bad.lines["info"] = 10**400
    else:
        bad.sizes["PUT"].sum = float(poison)
    collector = LogCollector(runners)
    for _ in range(3):
        bad.unparsed += 1  # changed: written again, logged once
        text = collector.text()
    assert 'node="good"' in text and 'node="bad"' not in text
    assert len([r for r in caplog.records if "node bad" in r.getMessage()]) == 1
    bad.lines["info"] = 1
    bad.sizes["PUT"].sum = 0.0
    assert 'node="bad"' in collector.text()


def test_api_families_in_a_text_scrape_agree_with_openmetrics(exporter_process):
    """With log and `--api` nodes, a Prometheus-text scrape carries the node API samples of
    an OpenMetrics scrape, each family once, after the process metrics (as generate_latest
    orders the registry), and a scrape without change gives the same API text."""
    from exporter.simulate.nodeapi import SimulatedNodeApi

    with SimulatedNodeApi("v1.146") as sim:
        proc = exporter_process("--node", f"n1:{FIXTURES / 'logs' / 'v1.146.log'}",
                                "--from-start", "--api", f"n1={sim.url}", "--api",
                                f"n2={sim.url}")
        url = proc.url + "/metrics"

        def api(text: str) -> dict:
            return {k: v for k, v in samples(text_families(text)).items()
                    if k[0].startswith(("storagenode_up", "storagenode_api_", "storagenode_pay",
                                        "storagenode_satellite_", "storagenode_disk_"))}

        def polled() -> bool:  # every endpoint of both nodes has answered once
            got = api(get(url, PROMETHEUS_ACCEPT)[0])
            return sum(k[0] == "storagenode_api_last_success_timestamp_seconds"
                       for k in got) == 14
        wait_for(polled, timeout=20, what="the first polls of every endpoint")
        text, kind = get(url, PROMETHEUS_ACCEPT)
        om, _ = get(url, "application/openmetrics-text;version=1.0.0")
        again, _ = get(url, None)
    assert kind.startswith("text/plain; version=0.0.4")
    assert api(text) and api(text) == api(om) == api(again)
    for family in ("storagenode_up gauge", "storagenode_api_errors_total counter",
                   "storagenode_log_lines_total counter"):
        assert text.count(f"# TYPE {family}") == 1
    assert (text.index("# TYPE storagenode_log_lines_total") < text.index(
        "# TYPE process_resident_memory_bytes") < text.index("# TYPE storagenode_up gauge"))
