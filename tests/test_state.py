"""Node state: pairing of started/finished lines, bounded memory, heavy hitters, clocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from exporter import prefixes, statefile
from exporter import state as state_module
from exporter.parser import parse_line
from exporter.state import NodeState
from exporter.tallies import TopPieces

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def started(epoch: float, piece: str, remote: str = "198.51.100.1:1") -> str:
    return (f'{ts(epoch)}\tDEBUG\tpiecestore\tdownload started\t{{"process": "storagenode", '
            f'"piece_id": "{piece}", "satellite_id": "{US1}", "action": "GET", "offset": 0, '
            f'"size": 100, "remote_address": "{remote}"}}')


def downloaded(epoch: float, piece: str, remote: str = "198.51.100.1:1") -> str:
    return started(epoch, piece, remote).replace("DEBUG", "INFO").replace(
        "download started", "downloaded")


T0 = 1_780_000_000.0


def test_durations_from_log_time_when_reading_old_logs():
    state = NodeState("n")
    state.feed([started(T0, "A"), downloaded(T0 + 7, "A")], None)
    counts, total = state.snapshot()["durations"][("GET", "success")]
    assert total == 7.0 and sum(counts) == 1


def test_read_time_wins_when_it_agrees_with_the_log_time():
    state = NodeState("n")
    state.feed([started(T0, "A")], T0 + 0.25)
    state.feed([downloaded(T0 + 1, "A")], T0 + 1.5)
    _, total = state.snapshot()["durations"][("GET", "success")]
    assert total == 1.25


def test_backlog_read_long_after_uses_log_time():
    state = NodeState("n")
    state.feed([started(T0, "A"), downloaded(T0 + 3, "A")], T0 + 86400)
    _, total = state.snapshot()["durations"][("GET", "success")]
    assert total == 3.0


def test_concurrent_downloads_of_one_piece_pair_by_remote_address():
    state = NodeState("n")
    state.feed([started(T0, "A", "1.1.1.1:1"), started(T0 + 1, "A", "2.2.2.2:2"),
                downloaded(T0 + 5, "A", "2.2.2.2:2"), downloaded(T0 + 9, "A", "1.1.1.1:1")],
               None)
    counts, total = state.snapshot()["durations"][("GET", "success")]
    assert total == 4.0 + 9.0 and sum(counts) == 2
    assert state.snapshot()["in_flight"]["GET"] == 0


def test_pairing_table_is_bounded_when_finishes_never_come():
    state = NodeState("n", max_pending=1000)
    state.feed([started(T0, f"P{i}") for i in range(20_000)], None)
    assert len(state.pending) <= 1000
    assert state.starts_expired == 20_000 - len(state.pending)
    assert state.snapshot()["in_flight"]["GET"] == len(state.pending)


def test_unmatched_starts_expire_after_the_pairing_timeout():
    state = NodeState("n", pairing_timeout=600)
    state.feed([started(T0, f"P{i}") for i in range(100)], None)
    state.feed([started(T0 + 700 + i, f"Q{i}") for i in range(100)], None)
    assert state.starts_expired == 100
    assert state.snapshot()["in_flight"]["GET"] == 100


def test_top_pieces_finds_the_heavy_hitters_in_bounded_memory():
    top = TopPieces(capacity=50)
    hot1, hot2 = "A" * 52, "B" * 52  # piece IDs: 52 characters of base32
    for i in range(10_000):
        top.add(f"cold{i}")
        if i % 10 == 0:
            top.add(hot1)
        if i % 20 == 0:
            top.add(hot2)
    assert len(top.counts) <= 50
    ranking = top.top(2)
    assert [p for p, _ in ranking] == [hot1, hot2]
    assert ranking[0][1] <= 1000  # a lower bound of the true count


def test_every_line_counts_once():
    state = NodeState("n")
    lines = [downloaded(T0, "A"), "garbage", "", started(T0, "B")]
    state.feed(lines, None)
    snap = state.snapshot()
    assert sum(snap["lines"].values()) + snap["unparsed"] == len(lines)


def test_parse_line_variants_agree():
    title = (f'{ts(T0)}\tINFO\tpiecestore\tuploaded\t{{"Process": "storagenode", "Piece ID": "A", '
             f'"Satellite ID": "{US1}", "Action": "PUT", "Remote Address": "1.2.3.4:5", '
             f'"Size": 42}}')
    snake = (f'{ts(T0)}\tINFO\tpiecestore\tuploaded\t{{"process": "storagenode", "piece_id": "A", '
             f'"satellite_id": "{US1}", "action": "PUT", "remote_address": "1.2.3.4:5", '
             f'"size": 42}}')
    reordered = (f'{ts(T0)}\tINFO\tpiecestore\tuploaded\t{{"size": 42, "process": "storagenode", '
                 f'"remote_address": "1.2.3.4:5", "action": "PUT", "satellite_id": "{US1}", '
                 f'"piece_id": "A"}}')
    caller = title.replace("\tuploaded\t", "\tpiecestore/endpoint.go:1\tuploaded\t")
    crlf = snake + "\r"
    events = [parse_line(x) for x in (title, snake, reordered, caller, crlf)]
    assert all(e == events[0] for e in events), events
    assert events[0][5:10] == ("PUT", US1, 42, "A", "1.2.3.4:5")


def test_inline_fast_path_agrees_with_parse_and_apply():
    """NodeState.feed handles common lines inline; the result must equal the general path."""
    from pathlib import Path

    from exporter.simulate.loggen import LogGenerator

    fixtures = Path(__file__).parent / "fixtures" / "logs"
    corpora = [p.read_text(encoding="utf-8", errors="replace").split("\n")
               for p in sorted(fixtures.glob("*.log"))]
    for era in ("v1.76", "v1.99", "v1.120", "v1.146"):
        corpora.append([x.rstrip("\n") for x in LogGenerator(era=era, seed=7).lines(3000, T0)])
    for lines in corpora:
        fast, slow = NodeState("n"), NodeState("n")
        fast.feed(lines, None)
        for line in lines:
            # a prefixed line (docker -t, compose, TrueNAS, journald) is read behind its prefix
            event = parse_line(line) or prefixes.parse_prefixed(line, parse_line)
            if event is None:
                slow.unparsed += 1
            else:
                slow.apply(event, None)
        assert fast.snapshot() == slow.snapshot()


def _unfinished(message: str, extra: str, action: str = "GET", size: int = 7936,
                level: str = "INFO", offset: bool = True) -> str:
    shape = (f'"offset": 0, "size": {size}, "remote_address": "198.51.100.1:1"' if offset
             else f'"remote_address": "198.51.100.1:1", "size": {size}')
    return (f'{ts(T0)}\t{level}\tpiecestore\t{message}\t{{"process": "storagenode", '
            f'"piece_id": "P{message[:2]}", "satellite_id": "{US1}", "action": "{action}", '
            f'{shape}{extra}}}')


@pytest.mark.parametrize("native", [False, None])
def test_unfinished_downloads_egress_only_what_was_sent(native):
    """Issue 14: the Size of a canceled/failed download is the requested size (v1.99+), so
    egress counts only the bytes its reason says were sent; the Size goes to `requested`.
    An upload's Size is what it received: ingress, as before."""
    if native is None and state_module.NATIVE_SCAN is None:
        pytest.skip("C hot path not built")
    state = NodeState("n", native=native)
    state.feed([
        _unfinished("download canceled", ', "reason": "downloaded size (4096 bytes) does not '
                    'match received message size (7936 bytes)"'),
        _unfinished("download canceled", ""),  # no reason: the C grammar reads it
        _unfinished("download failed", ', "error": "write: broken pipe"', "GET_REPAIR",
                    1159936, "ERROR"),
        _unfinished("upload canceled", "", "PUT", 2293760, offset=False),
    ], None)
    snap = state.snapshot()
    assert snap["bytes"][(US1, "GET", "canceled")] == 4096
    assert snap["requested"][(US1, "GET", "canceled")] == 2 * 7936
    assert snap["bytes"][(US1, "GET_REPAIR", "failed")] == 0
    assert snap["requested"][(US1, "GET_REPAIR", "failed")] == 1159936
    assert snap["bytes"][(US1, "PUT", "canceled")] == 2293760
    assert (US1, "PUT", "canceled") not in snap["requested"]


def test_requested_bytes_survive_a_checkpoint_and_old_files_have_none():
    """The new counter is saved and restored; a state file from before it restores as none."""
    state = NodeState("n", native=False)
    state.feed([_unfinished("download canceled", "")], None)
    with state.lock:
        data = json.loads(json.dumps(statefile.encode(statefile.capture(state))))
    again = NodeState("n", native=False)
    statefile.restore(again, statefile.decode("n", data))
    assert again.snapshot()["requested"] == {(US1, "GET", "canceled"): 7936}
    del data["requested"]
    old = NodeState("n", native=False)
    statefile.restore(old, statefile.decode("n", data))
    assert old.snapshot()["requested"] == {}
