"""The generator's hashstore and amnesty lines (exporter/simulate/loggen/hashstore.py): the
shapes of tests/fixtures/logs/housekeeping-v1.162.log, counted by the real exporter as the
generator says, without changing a transfer line, and live in `storagenode-exporter demo`."""

from __future__ import annotations

import calendar
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from exporter.simulate.loggen import ERAS, SATELLITES, LogGenerator
from exporter.simulate.loggen.hashstore import memory_size
from exporter.state import NodeState
from tests.conftest import FIXTURES, free_port, parse_exposition, terminate, total, wait_for

START = 1_787_220_900.0  # 2026-08-20T10:15:00Z
SHORT = {sat_id: short for short, sat_id in SATELLITES}
HASHSTORE = re.compile(r"\t(?:hashstore|contact:amnesty)\t")


def _split(line: str) -> tuple[str, str, str, str]:
    _, level, logger, message, fields = line.rstrip("\n").split("\t")
    return level, logger, message, fields


def _shape(fields: str) -> tuple:
    """Key order, with the key order of nested objects, and the value types."""
    def of(value):
        if isinstance(value, dict):
            return tuple((k, of(v)) for k, v in value.items())
        return type(value).__name__
    return of(json.loads(fields))


@pytest.fixture(scope="module")
def generated() -> tuple[LogGenerator, list[str]]:
    """A seed whose 60,000 lines hold every kind of line (each is rare: see the rates)."""
    gen = LogGenerator(era="v1.146", seed=1)
    return gen, list(gen.lines(60_000, start=START))


def test_memory_size_prints_like_storj_common():
    assert [memory_size(n) for n in (0, 512, 681, 682, 1000, 2 << 30, 20 << 30,
                                     int(1.1 * (1 << 40)), 10**12, 1536)] == [
        "0 B", "512 B", "681 B", "0.7 KiB", "1.0 KB", "2.0 GiB", "20.0 GiB", "1.1 TiB",
        "1.0 TB", "1.5 KiB"]


def test_every_line_has_the_shape_of_the_fixture_line_with_its_message(generated):
    fixture = {}
    for line in (FIXTURES / "logs" / "housekeeping-v1.162.log").read_text().splitlines():
        level, logger, message, fields = _split(line)
        if HASHSTORE.search(line):
            ok = "error" not in json.loads(fields)
            fixture.setdefault((message, ok), (level, logger, _shape(fields), fields))
    _, lines = generated
    seen = set()
    for line in filter(HASHSTORE.search, lines):
        level, logger, message, fields = _split(line)
        key = (message, "error" not in json.loads(fields))
        want_level, want_logger, want_shape, want_fields = fixture[key]
        assert (level, logger, _shape(fields)) == (want_level, want_logger, want_shape), line
        if '"stats"' in fields:  # compact inside zap's ", " / ": " fields, as in the fixture
            assert fields.split('"stats": ')[1][:10] == want_fields.split('"stats": ')[1][:10]
        seen.add(key)
    assert seen == set(fixture), set(fixture) - seen


def test_the_exporter_counts_what_the_generator_says(generated):
    gen, lines = generated
    state = NodeState("t")
    state.feed([x[:-1] for x in lines], None)
    snap = state.snapshot()
    assert snap["unparsed"] == 0
    house = {}
    for key, n in snap["house"].items():
        if key[0] in ("compactions", "lost_pieces", "lost_pieces_failures") and n:
            house[(key[0], SHORT[key[1]], *key[2:])] = n
    assert house == gen.hashstore_counts()
    results = {k[3] for k in house if k[0] == "compactions"}
    assert results == {"success", "failed"} and len(house) > 10, house
    reclaimed = [n for k, n in snap["house"].items() if k[0] == "compaction_reclaimed"]
    assert reclaimed and all(n >= 0 for n in reclaimed) and sum(reclaimed) > 0
    assert {k: v for k, v in snap["events"].items() if v} == gen.event_counts()
    for name in ("compaction_finished", "compaction_failed", "hashstore_unclean_shutdown",
                 "hashstore_log_tail_mismatch", "hashstore_invalid_records"):
        assert gen.event_counts().get(name, 0) > 0, name


def test_rates_stay_rare_and_stores_compact_once_a_compressed_day(generated):
    _, lines = generated
    extra = [x for x in lines if HASHSTORE.search(x)]
    assert 0.0005 < len(extra) / len(lines) < 0.003, len(extra)
    began: dict[tuple[str, str], list[int]] = {}
    for line in extra:
        if "\tbeginning compaction\t" in line:
            data = json.loads(_split(line)[3])
            stamp = calendar.timegm(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S"))
            began.setdefault((data["satellite"], data["store"]), []).append(stamp)
    for starts in began.values():  # 432 s, less the compaction's own compressed duration
        assert all(b - a >= 400 for a, b in itertools.pairwise(starts)), starts


def test_no_transfer_line_changes():
    """The same seed without the hashstore stream: the same lines but for those."""

    class Without(LogGenerator):
        def _hs_setup(self, seed: int, other_weight: float) -> None:
            super()._hs_setup(seed, other_weight)
            self._hs_next = float("inf")

    with_hs = [x for x in LogGenerator(era="v1.146", seed=5).lines(20_000, START)
               if not HASHSTORE.search(x)]
    without = list(Without(era="v1.146", seed=5).lines(20_000, START))
    assert len(with_hs) < len(without) and with_hs == without[: len(with_hs)]


@pytest.mark.parametrize("era", sorted(set(ERAS) - {"v1.146"}))
def test_no_hashstore_before_the_snake_case_era(era):
    lines = LogGenerator(era=era, seed=5).lines(20_000, START)
    assert not any(HASHSTORE.search(x) for x in lines)


def test_the_demo_exporter_counts_compactions(tmp_path):
    """`storagenode-exporter demo` as `make demo` runs it (faster): in its first seconds it
    compacts stores that never did. Lost pieces come rarer (on average one report in 18 s
    at this rate, randomly seeded), so they are not waited for here."""
    port, api = free_port(), free_port()
    err = tmp_path / "demo.err"  # a file, not a pipe nobody reads (a full pipe blocks it)
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "demo", "--web.listen-address",
             f"127.0.0.1:{port}", "--api.port", str(api), "--dir", str(tmp_path / "demo"),
             "--rate", "200"], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        def counted():
            assert proc.poll() is None, err.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=5) as response:
                    samples = parse_exposition(response.read().decode())
            except OSError:
                return None
            done = total(samples, "storagenode_hashstore_compactions_total")
            return samples if done > 0 else None

        # the generator's first compaction finishes within 24 s at this rate (200 seeds)
        samples = wait_for(counted, timeout=60, interval=1.0, what="demo compactions")
        assert total(samples, "storagenode_events_total", event="compaction_finished") > 0
        assert total(samples, "storagenode_hashstore_compaction_duration_seconds_count") > 0
    finally:
        terminate(proc)
