"""The node's housekeeping as metrics (issue 13, item 3): GC in its three field-name eras,
trash, filewalkers, hashstore compaction, deletes, lost pieces, the available space. The
exact expositions are the goldens of tests/fixtures/logs/housekeeping-*.log; these tests name
the numbers that matter and the bounds on hostile lines and state files."""

from __future__ import annotations

import json

import pytest

from exporter import statefile
from exporter.housekeeping import duration_seconds, size_bytes
from exporter.state import NodeState
from tests.conftest import FIXTURES, parse_exposition, total
from tests.test_golden import run_report

LOGS = FIXTURES / "logs"
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
EU1 = "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"
GIB = 2**30


def report(name: str) -> dict[str, float]:
    return parse_exposition(run_report(LOGS / name))


@pytest.mark.parametrize("text, seconds", [
    ("1m37.535505102s", 97.535505102), ("245.1ms", 0.2451), ("2h3m4.5s", 7384.5),
    ("0s", 0.0), ("1.5µs", 1.5e-6), ("12ns", 12e-9),
    ("", None), ("5", None), ("1x", None), ("-1s", None), ("1s2", None), (5, None),
    ("9" * 30 + "h", None),
])
def test_go_durations(text, seconds):
    got = duration_seconds(text)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


@pytest.mark.parametrize("text, size", [
    ("20.0 GiB", 20 * GIB), ("512 B", 512), ("0 B", 0), ("1.5 KiB", 1536), ("2.0 TB", 2 * 10**12),
    (1234, 1234), ("-1 B", None), ("1 XB", None), ("9" * 30 + " EiB", None), (True, None),
])
def test_memory_sizes(text, size):
    assert size_bytes(text) == size


def test_retain_in_its_three_eras():
    old, title, snake = (report(f"housekeeping-v{v}.log") for v in ("1.95", "1.117", "1.162"))
    assert total(old, "storagenode_gc_runs_total", satellite="unknown") == 1  # `num deleted`
    assert total(old, "storagenode_gc_pieces_trashed_total") == 1234
    assert total(title, "storagenode_gc_pieces_trashed_total", satellite="us1") == 51200
    assert total(title, "storagenode_gc_pieces_failed_total", satellite="us1") == 5
    assert total(title, "storagenode_gc_duration_seconds_sum", satellite="us1") == 7384.5
    assert total(title, "storagenode_gc_failures_total") == 1
    assert total(snake, "storagenode_gc_pieces_trashed_total", satellite="ap1") == 700


def test_trash_and_filewalkers():
    title, snake = report("housekeeping-v1.117.log"), report("housekeeping-v1.162.log")
    assert total(title, "storagenode_trash_empty_duration_seconds_sum") == 97.535505102
    assert total(snake, "storagenode_trash_empty_runs_total", satellite="eu1") == 1
    assert total(report("housekeeping-v1.95.log"), "storagenode_trash_empty_failures_total") == 1
    runs = "storagenode_filewalker_runs_total"
    assert total(title, runs, walker="used_space", lazy="true") == 1
    assert total(title, runs, walker="used_space", lazy="false") == 1
    assert total(title, runs, walker="gc", lazy="true") == 1
    assert total(title, runs, walker="trash", lazy="true") == 1
    fails = "storagenode_filewalker_failures_total"
    # `used-space-filewalker failed` and its subprocess' `exited with error`: one failure
    assert total(title, fails, walker="used_space") == 1
    assert total(title, fails, walker="gc") == 1 and total(title, fails, walker="trash") == 1
    assert total(title, "storagenode_filewalker_duration_seconds_sum",
                 walker="used_space", lazy="false") == 2880


def test_hashstore_compaction():
    snake = report("housekeeping-v1.162.log")
    runs = "storagenode_hashstore_compactions_total"
    assert total(snake, runs, satellite="us1", store="s0", result="success") == 1
    assert total(snake, runs, satellite="eu1", store="s1", result="failed") == 1
    assert total(snake, "storagenode_hashstore_compaction_errors_total",
                 reason="logs_disk_full") == 1
    # stats are cumulative: the bytes of one compaction are finished - beginning
    assert total(snake, "storagenode_hashstore_reclaimed_bytes_total", store="s0") == 10 * GIB
    assert total(snake, "storagenode_hashstore_rewritten_bytes_total", store="s0") == 2.5 * GIB
    assert total(snake, "storagenode_hashstore_compaction_duration_seconds_count") == 2
    events = "storagenode_events_total"
    for event in ("hashstore_unclean_shutdown", "hashstore_log_tail_mismatch",
                  "hashstore_invalid_records", "compaction_failed"):
        assert total(snake, events, event=event) == 1, event
    assert total(snake, "storagenode_transfer_errors_total", reason="collision") == 1


def test_lost_pieces_deletes_and_available_space():
    snake = report("housekeeping-v1.162.log")
    assert total(snake, "storagenode_lost_pieces_reported_total", satellite="us1") == 17
    assert total(snake, "storagenode_lost_pieces_reported_total", satellite="eu1") == 3
    assert total(snake, "storagenode_lost_pieces_report_failures_total", satellite="eu1") == 1
    assert snake['storagenode_available_space_bytes{node="n1"}'] == 987654321000
    old = report("housekeeping-v1.95.log")
    assert total(old, "storagenode_piece_deletes_total", result="success") == 2
    assert total(old, "storagenode_piece_deletes_total", result="failed") == 2


def _amnesty(count: str, satellite: str = US1) -> str:
    return ('2026-08-20T15:00:00Z\tINFO\tcontact:amnesty\tsending amnesty batch to satellite\t'
            f'{{"process": "storagenode", "satellite": "{satellite}", "piece_count": {count}}}')


def test_hostile_housekeeping_lines_stay_bounded():
    state = NodeState("n", native=False)
    lines = [_amnesty(c) for c in ("1e400", "-5", '"7"', "9" * 400, "true")]
    lines += [_amnesty("1", satellite="x" * 300), _amnesty("2", satellite="not-a-node-id")]
    lines.append('2026-08-20T15:00:00Z\tINFO\thashstore\tfinished compaction\t{"satellite": '
                 f'"{US1}", "store": "{"s" * 500}", "duration": "{"9" * 99}s", "stats": []}}')
    state.feed(lines, None)
    assert state.house == {("lost_pieces", "invalid"): 3,
                           ("compactions", US1, "other", "success"): 1}
    assert not state.house_hists and state.unparsed == 0


def test_checkpoint_round_trip_and_refusal():
    state = NodeState("n", native=False)
    state.feed((LOGS / "housekeeping-v1.162.log").read_text().splitlines(), None)
    saved = json.loads(json.dumps(statefile.encode(statefile.capture(state))))
    again = NodeState("n", native=False)
    statefile.restore(again, statefile.decode("n", saved))
    assert again.counters() == state.counters()
    saved["house"] += [[["lost_pieces", "x" * 100], 5], [["nope"], 1],
                       [["filewalker_runs", "gc", "maybe"], 1], [["gc_failures"], -1]]
    saved["available_space"] = 10**30
    decoded = statefile.decode("n", saved)
    assert decoded.values["house"] == state.house
    assert decoded.values["available_space"] is None and decoded.notes
