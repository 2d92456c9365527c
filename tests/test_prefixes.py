"""Lines with a `docker logs -t`, compose, TrueNAS or journald prefix, or with their tabs turned
into spaces, count exactly like the plain lines (issue 13, item 1): through `report`, and live
through the file, Docker json-file and stdin sources of the real exporter process.

The prefixed fixtures are tests/fixtures/logs/v1.146.log with a prefix on every line, so
every sample but the bytes read must equal that log's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from exporter import prefixes
from exporter.parser import COMMON_LINE_RE, parse_line
from exporter.state import NATIVE_SCAN, NodeState
from tests.conftest import FIXTURES, GOLDEN, ROOT, free_port, parse_exposition, wait_for
from tests.test_golden import run_report

LOGS = FIXTURES / "logs"
PREFIXED = ["prefixed-docker-t.log", "prefixed-compose.log", "prefixed-truenas.log",
            "prefixed-journald.log", "spaces.log"]
native = pytest.mark.skipif(NATIVE_SCAN is None, reason="exporter._hotpath is not built")
BASE = parse_exposition((GOLDEN / "logs_v1.146.txt").read_text())


def comparable(samples: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in samples.items()
            if k in BASE and not k.startswith("storagenode_log_source_bytes_read")}


@pytest.mark.parametrize("name", PREFIXED)
def test_report_counts_prefixed_lines_like_plain_ones(name):
    got = parse_exposition(run_report(LOGS / name))
    assert got['storagenode_log_unparsed_lines_total{node="n1"}'] == 0.0
    assert comparable(got) == comparable(BASE)


@pytest.mark.parametrize("line", [
    "2025-10-02T01:26:34.282196123Z 2025-10-02T01:26:34Z\tINFO\torders\tfinished\t{}",
    "2025-10-02T01:26:34Z 2025-10-02T01:26:34Z\tINFO\tVersion is up to date\t{}",
    "storagenode  | 2025-10-02T01:26:34Z\tINFO\torders\tfinished\t{}",
    "storagenode-1  | 2025-10-02T01:26:34.1Z 2025-10-02T01:26:34Z\tINFO\tx\ty\t{}",
    "storagenode  | INFO\torders\tfinished\t{}",
    "2025-10-02 01:26:34.282196+00:002025-10-02T01:26:34Z\tINFO\torders\tfinished\t{}",
    "May 31 06:26:13 host storagenode[857]: 2025-05-31T06:26:13Z\tINFO\tx\ty\t{}",
    "May  1 06:26:13 host storagenode-updater[858]: 2025-05-01T06:26:13Z\tINFO\tVersion is up "
    "to date\t{}",
    '2025-05-31T06:26:13+0000 host storagenode[857]: {"L":"INFO","M":"x"}',
])
def test_a_prefixed_line_is_refused_then_read_once_stripped(line):
    """parse_line never reads a prefix as part of the line (that keeps stripping a batch and
    stripping a line equal), and stripping is idempotent."""
    assert parse_line(line) is None
    bare = prefixes.strip(line)
    assert bare is not None and prefixes.strip(bare) is None
    assert prefixes.parse_prefixed(line, parse_line) == parse_line(bare) is not None


@pytest.mark.parametrize("line", [
    "2025-10-02T01:26:34Z\tINFO\torders\tfinished\t{}",
    "storagenode  | not a storagenode line",
    "May 31 06:26:13 host kernel: usb 1-1: new device",
    "2025-10-02 01:26:34,123 INFO spawned: 'storagenode' with pid 12",  # supervisord
    "",
])
def test_other_lines_have_no_prefix(line):
    assert prefixes.strip(line) is None


def test_untab_restores_the_columns():
    spaced = ('2026-08-20T10:15:03Z    INFO    piecestore    uploaded    {"process": '
              '"storagenode", "piece_id": "P", "satellite_id": "S", "action": "PUT", '
              '"remote_address": "a:1", "size": 5}')
    assert prefixes.untab(spaced) == spaced.replace("    ", "\t")
    assert prefixes.untab("a\tb  c") is None and prefixes.untab("no runs here") is None


@pytest.mark.parametrize("native", [False, pytest.param(None, marks=native)])
@pytest.mark.parametrize("name", PREFIXED[:4])
def test_prefixed_common_lines_stay_on_the_fast_path(name, native, monkeypatch):
    """A log where every line has a prefix does not fall onto the slow path: its common
    lines never reach the per-line parser (the C path skips the prefix itself, the Python
    path reads the batch with the regex that allows one)."""
    plain = (LOGS / "v1.146.log").read_text().splitlines()
    lines = (LOGS / name).read_text().splitlines()
    if native is None:  # the C path leaves the lines with colour codes to Python
        lines = [x for x in lines if "\x1b" not in x]
        plain = [x for x, y in zip(plain, (LOGS / name).read_text().splitlines(), strict=True)
                 if "\x1b" not in y]
    slow: list[str] = []
    original = NodeState._line
    monkeypatch.setattr(NodeState, "_line", lambda self, line, t: (slow.append(line),
                                                                   original(self, line, t)))
    a, b = NodeState("n", native=native), NodeState("n", native=native)
    a.feed(plain, None)
    plain_slow, slow[:] = len(slow), []
    b.feed(lines, None)
    assert a.counters() == b.counters()
    assert sum(1 for x in plain if COMMON_LINE_RE.match(x)) >= 5
    assert len(slow) == plain_slow < len(lines)


def _docker_entries(lines: list[str]) -> str:
    return "".join(json.dumps({"log": line + "\n", "stream": "stdout",
                               "time": "2026-08-20T10:15:03.5Z"}) + "\n" for line in lines)


def _wait_all_lines(samples_of, what: str) -> dict[str, float]:
    want = sum(v for k, v in BASE.items() if k.startswith("storagenode_log_lines_total"))

    def caught_up():
        got = samples_of()
        if got is None:
            return None
        seen = sum(v for k, v in got.items() if k.startswith("storagenode_log_lines_total"))
        return got if seen == want else None

    return wait_for(caught_up, what=what)


@pytest.mark.parametrize("source", ["file", "docker"])
def test_live_sources_read_prefixed_lines(source, tmp_path, exporter_process):
    if source == "file":
        spec = str(LOGS / "prefixed-compose.log")
    else:
        log = tmp_path / "abc-json.log"
        log.write_text(_docker_entries((LOGS / "prefixed-docker-t.log").read_text().splitlines()))
        spec = f"docker:{log}"
    proc = exporter_process("--node", f"n1:{spec}", "--from-start")
    got = _wait_all_lines(proc.samples, f"every prefixed line from the {source} source")
    assert got['storagenode_log_unparsed_lines_total{node="n1"}'] == 0.0
    if source == "docker":  # durations come from Docker's own (here equal) times
        got, want = ({k: v for k, v in d.items() if "duration_seconds" not in k}
                     for d in (comparable(got), comparable(BASE)))
        assert got == want
    else:
        assert comparable(got) == comparable(BASE)


def test_live_stdin_reads_prefixed_lines():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--node", "n1:-",
         "--web.listen-address", f"127.0.0.1:{port}"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        proc.stdin.write((LOGS / "prefixed-journald.log").read_bytes())
        proc.stdin.flush()

        def samples():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                    return parse_exposition(r.read().decode())
            except OSError:
                return None

        got = _wait_all_lines(samples, "every prefixed line from stdin")
        assert got['storagenode_log_unparsed_lines_total{node="n1"}'] == 0.0
        assert comparable(got) == comparable(BASE)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("name", PREFIXED[:4])
def test_backfill_reads_the_time_of_prefixed_lines(name):
    """`backfill` steps through a log by its line times: a prefixed log has them too."""
    from exporter.backfill import line_time
    from exporter.tallies import TimestampCache

    clock = TimestampCache()
    plain = [line_time(x, clock) for x in (LOGS / "v1.146.log").read_text().splitlines()]
    got = [line_time(x, clock) for x in (LOGS / name).read_text().splitlines()]
    assert got == plain and None not in got
