"""One canceled transfer is one count at every log level (issue 13, item 2).

v1.86-v1.98 write INFO `… canceled (race lost or node shutdown)` with the piece ID alone and a
DEBUG line with every field; v1.99+ write every field on both. The fixtures
tests/fixtures/logs/cancels-*-{debug,info}.log are the same transfers at the two levels.
"""

from __future__ import annotations

import json

from exporter import statefile
from exporter.cancels import MAX, WINDOW
from exporter.parser import parse_line
from exporter.state import NodeState
from tests.conftest import FIXTURES

LOGS = FIXTURES / "logs"
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
EU1 = "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"
AP1 = "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6"
SALTLAKE = "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"
PIECE = "P" * 52


def state_of(name: str, native: bool = False) -> NodeState:
    state = NodeState("n", native=native)
    state.feed((LOGS / name).read_text().splitlines(), None)
    return state


def counted(state: NodeState) -> dict[tuple, int]:
    return {k: v for k, v in state.transfers.items() if v}


def test_v1_86_race_lost_counts_once_at_debug_and_info_level():
    debug, info = state_of("cancels-v1.86-debug.log"), state_of("cancels-v1.86-info.log")
    want = {
        ("unknown", "unknown", "canceled"): 1,  # the log's first race-lost line: start unseen
        (EU1, "GET", "canceled"): 1,            # from its `download started` line
        (AP1, "PUT_REPAIR", "canceled"): 1,     # from its `upload started` line
        (US1, "PUT", "failed"): 1,              # a real failure of another piece
        (US1, "PUT", "success"): 1,
    }
    assert counted(debug) == counted(info) == want
    assert debug.cancel_reasons == info.cancel_reasons == {
        ("unknown", "race_lost"): 1, ("GET", "race_lost"): 1, ("PUT_REPAIR", "race_lost"): 1}
    assert debug.errors == info.errors == {("PUT", "eof"): 1}
    assert debug.lines == {"info": 7, "debug": 3, "error": 1} and debug.unparsed == 0


def test_v1_110_race_lost_counts_once_at_debug_and_info_level():
    debug, info = state_of("cancels-v1.110-debug.log"), state_of("cancels-v1.110-info.log")
    both = {
        (US1, "PUT", "canceled"): 1, (SALTLAKE, "GET_REPAIR", "canceled"): 1,
        (US1, "GET", "canceled"): 1, (US1, "GET", "success"): 1,
    }
    assert counted(info) == both
    # the DEBUG `upload failed` of a piece with no race-lost line is a failure of its own
    assert counted(debug) == {**both, (EU1, "PUT", "failed"): 1}
    assert debug.cancel_reasons == info.cancel_reasons == {
        ("PUT", "race_lost"): 1, ("GET_REPAIR", "race_lost"): 1, ("GET", "canceled"): 1}


def test_the_c_hot_path_pairs_the_same_way():
    for name in ("cancels-v1.86-debug.log", "cancels-v1.110-debug.log"):
        py = state_of(name)
        c = state_of(name, native=None)
        assert c.counters() == py.counters(), name


def _line(ts: str, level: str, message: str, fields: str) -> str:
    return f"{ts}\t{level}\tpiecestore\t{message}\t{{{fields}}}"


FULL = (f'"Process": "storagenode", "Piece ID": "{PIECE}", "Satellite ID": "{US1}", '
        f'"Action": "PUT", "Remote Address": "203.0.113.7:1"')
RACE = _line("2024-08-17T18:14:10Z", "INFO", "upload canceled (race lost or node shutdown)", FULL)


def debug_line(ts: str = "2024-08-17T18:14:10Z", action: str = "PUT") -> str:
    return _line(ts, "DEBUG", "upload failed", FULL.replace('"PUT"', f'"{action}"')
                 + ', "Size": 0, "error": "context canceled"')


def test_pairs_only_within_the_window_and_for_the_same_action():
    state = NodeState("n", native=False)
    late = f"2024-08-17T18:14:{10 + int(WINDOW) + 5}Z"
    state.feed([RACE, debug_line(late)], None)  # too late: a transfer of its own
    assert state.transfers[(US1, "PUT", "failed")] == 1
    state = NodeState("n", native=False)
    state.feed([RACE, debug_line(action="PUT_REPAIR")], None)  # another action: not its pair
    assert state.transfers[(US1, "PUT_REPAIR", "failed")] == 1
    state.feed([debug_line()], None)  # the right one pairs, later
    assert state.transfers[(US1, "PUT", "failed")] == 0
    assert state.transfers[(US1, "PUT", "canceled")] == 1


def test_the_table_is_bounded():
    state = NodeState("n", native=False)
    lines = [RACE.replace(PIECE, f"{i:052d}") for i in range(MAX + 500)]
    state.feed(lines, None)
    assert len(state.race_lost.recent) == MAX


def test_a_checkpoint_between_the_two_lines_keeps_one_count():
    """The pairing table is saved: a restart between the INFO and the DEBUG line of one
    transfer does not count it twice."""
    first = NodeState("n", native=False)
    first.feed([RACE], None)
    saved = json.loads(json.dumps(statefile.encode(statefile.capture(first))))
    second = NodeState("n", native=False)
    statefile.restore(second, statefile.decode("n", saved))
    second.feed([debug_line()], None)
    assert second.transfers[(US1, "PUT", "canceled")] == 1
    assert second.transfers[(US1, "PUT", "failed")] == 0
    assert second.cancel_reasons == {("PUT", "race_lost"): 1}


def test_index_starts_survives_a_checkpoint_and_the_c_path_honours_it():
    first = NodeState("n", native=False)
    first.feed((LOGS / "cancels-v1.86-info.log").read_text().splitlines()[:2], None)
    assert first.index_starts
    saved = json.loads(json.dumps(statefile.encode(statefile.capture(first))))
    second = NodeState("n", native=None)
    statefile.restore(second, statefile.decode("n", saved))
    assert second.index_starts
    started = _line("2023-10-02T08:00:09Z", "INFO", "download started",
                    f'"process": "storagenode", "Piece ID": "{PIECE}", "Satellite ID": "{EU1}", '
                    '"Action": "GET", "Offset": 0, "Size": 10, "Remote Address": "a:1"')
    race = _line("2023-10-02T08:00:09Z", "INFO", "download canceled (race lost or node "
                 "shutdown)", f'"process": "storagenode", "Piece ID": "{PIECE}"')
    second.feed_block(f"{started}\n{race}".encode(), None)
    assert second.transfers[(EU1, "GET", "canceled")] == 1


def test_a_checkpoint_refuses_a_hostile_pairing_table():
    state = NodeState("n", native=False)
    saved = json.loads(json.dumps(statefile.encode(statefile.capture(state))))
    saved["race_lost"] = [["x" * 5000, 1.0, "PUT"], ["p", "soon", None], ["q", 1.0, "DELETE"],
                          ["ok", None, "GET"]]
    saved["cancel_reasons"] = [["PUT", "x" * 300, 5], ["GET", "race_lost", 2]]
    decoded = statefile.decode("n", saved)
    assert decoded.values["race_lost"] == {"ok": (None, "GET")}
    assert decoded.values["cancel_reasons"] == {("GET", "race_lost"): 2}
    assert decoded.notes


def test_v0_transfers_without_a_satellite_count_as_unknown():
    state = state_of("v0.13.log")
    assert counted(state) == {
        ("unknown", "PUT", "success"): 1, ("unknown", "GET_AUDIT", "success"): 1,
        ("unknown", "GET", "failed"): 1, (US1, "PUT", "success"): 1,
    }
    assert state.unparsed == 0


def test_unknown_action_only_for_a_race_lost_line():
    bare = f'"Process": "storagenode", "Piece ID": "{PIECE}"'
    assert parse_line(_line("2019-01-01T00:00:00.000Z", "INFO", "uploaded", bare)) is None
    event = parse_line(_line("2023-10-02T08:00:01Z", "INFO",
                             "upload canceled (race lost or node shutdown)", bare))
    assert event[5] == "unknown" and event[6] == "unknown" and event[4] == "canceled"


def test_speed_too_low_is_a_cancel_with_its_own_reason():
    line = _line("2026-08-20T16:00:00Z", "DEBUG", "upload failed",
                 FULL + ', "Size": 65536, "error": "speed too low, current:5 < limit:9"')
    state = NodeState("n", native=False)
    state.feed([line], None)
    assert state.transfers[(US1, "PUT", "canceled")] == 1
    assert state.cancel_reasons == {("PUT", "speed_too_low"): 1} and not state.errors
