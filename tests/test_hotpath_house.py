"""The housekeeping lines the C scan applies itself (exporter/hotpath/house.c): retain's
`Moved pieces to trash during retain`, `emptying trash finished` and `used-space-filewalker
completed`. The state must be the one `parse_line` + `apply` builds -- house counters,
histograms (their float sums to the bit), events, lines, dict order included -- and every
line it is not sure about (escapes, floats, odd durations, unknown satellites, keys that
normalise alike, a state it did not build) must reach Python unchanged."""

from __future__ import annotations

import random

import pytest

from exporter import housekeeping
from exporter.simulate.loggen import LogGenerator
from exporter.simulate.loggen.eras import ERAS
from exporter.state import HOUSE_MAX, NodeState
from exporter.tallies import Histogram
from tests.test_hotpath import KINDS, T0, batched, everything, native, reference, via
from tests.test_hotpath_events import HOUSE_IN_C

TS = "2024-03-13T09:00:{:02d}Z"
SAT = "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"
SAT2 = "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6"
NEW_SAT = "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"
RETAIN, TRASH, USED = HOUSE_IN_C
#: a download of each satellite first: a satellite with transfer series is one _house knows
KNOWN = [f'{TS.format(0)}\tINFO\tpiecestore\tdownloaded\t{{"Piece ID": "P{i}", "Satellite ID": '
         f'"{sat}", "Action": "GET", "Offset": 0, "Size": 100, "Remote Address": "1.2.3.4:5"}}'
         for i, sat in enumerate((SAT, SAT2))]

#: every era's spelling of the three messages (housekeeping.py's sources), as logger, fields
PLAIN = [
    ("retain", RETAIN, f'"process": "storagenode", "Deleted pieces": 21494, "Failed to delete": '
     f'0, "Pieces failed to read": 0, "Pieces count": 1666198, "Satellite ID": "{SAT}", '
     '"Duration": "36m18.247884426s", "Retain Status": "enabled"'),
    ("retain", RETAIN, f'"Process": "storagenode", "Deleted pieces": 51200, "Failed to delete": '
     f'3, "Pieces failed to read": 2, "Pieces count": 2800000, "Satellite ID": "{SAT2}", '
     '"Duration": "2h3m4.5s", "Retain Status": "enabled"'),
    ("retain", RETAIN, f'"Process": "storagenode", "Deleted pieces": 0, "Failed to delete": 0, '
     f'"Pieces failed to read": 0, "Pieces count": 1000, "Satellite ID": "{SAT}", "Duration": '
     '"245.1ms", "Retain Status": "enabled"'),
    ("retain", RETAIN, '"process": "storagenode", "deleted_pieces": 700, "failed_to_delete": 1, '
     f'"pieces_failed_to_read": 0, "pieces_count": 90000, "satellite_id": "{SAT2}", '
     '"duration": "3m0s", "retain_status": "enabled"'),
    ("retain", RETAIN, '"process": "storagenode", "num deleted": 1234, "Retain Status": "enabled"'),
    ("retain", RETAIN, '"Process": "storagenode", "num deleted": 0, "Retain Status": "enabled"'),
    ("pieces:trash", TRASH, f'"process": "storagenode", "Satellite ID": "{SAT}", '
     '"elapsed": "11m9.26143109s"'),
    ("pieces:trash", TRASH, f'"Process": "storagenode", "satellite_id": "{SAT2}", '
     '"elapsed": "245.1ms"'),
    ("pieces:trash", TRASH, f'"process": "storagenode", "satellite": "{SAT}", "elapsed": "12.5s"'),
    ("pieces:trash", TRASH, f'"process": "storagenode", "satellite_id": "{SAT}", '
     '"elapsed": "0s"'),
    ("lazyfilewalker.used-space-filewalker.subprocess", USED,
     f'"process": "storagenode", "satelliteID": "{SAT}", "process": "storagenode", '
     '"piecesTotal": 1237233138276, "piecesContentSize": 1231046972585'),
    ("pieces", USED, f'"Process": "storagenode", "Satellite ID": "{SAT2}", "Lazy File Walker": '
     'true, "Total Pieces Size": 4398046511104, "Total Pieces Content Size": 4390000000000, '
     '"Total Pieces Count": 9000000, "Duration": "5h12m3.25s"'),
    ("pieces", USED, f'"Process": "storagenode", "Satellite ID": "{SAT}", "Lazy File Walker": '
     'false, "Total Pieces Size": 1099511627776, "Total Pieces Content Size": 1090000000000, '
     '"Total Pieces Count": 2000000, "Duration": "48m0s"'),
    ("pieces", USED, f'"process": "storagenode", "satellite_id": "{SAT}", "lazy_file_walker": '
     'true, "total_pieces_size": 1860854352180, "total_pieces_content_size": 1851550080420, '
     '"total_pieces_count": 2658363, "duration": "3h23m31.637898402s"'),
    (None, USED, f'"satellite_id": "{SAT}", "duration": "1m0s"'),  # no logger: lazy unknown
    ("pieces:trash", TRASH, ""),  # {}: the satellite unknown
    ("retain", RETAIN, f'"Satellite ID":"{SAT}","Deleted pieces":5'),  # no spaces
    ("retain", RETAIN, f' "Satellite ID" :  "{SAT}" , "Deleted pieces" : 5 , "x" : null '),
    ("retain", RETAIN, '"Satellite ID": "unknown", "Deleted pieces": 5'),
    ("retain", RETAIN, f'"Satellite ID": "{SAT}", "Satellite ID": "{SAT2}"'),  # last wins
    ("retain", RETAIN, f'"Satellite ID": "{SAT}", "Deleted pieces": 1000000000000'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "99999999h0m0s"'),  # None
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "2777h46m40s"'),  # 10**7
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "2777h46m40.000001s"'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "1h2.5s"'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "12us"'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "3ns"'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "0.000000001s"'),
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "{"1" * 38}s"'),  # None
    ("pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "1.5ms"'),
    ("retain", RETAIN, f'"Satellite ID": "{SAT}", "Deleted pieces": 5, "Retain Status": '
     '"database is locked"'),
    ("pieces:trash", TRASH, f'"Satellite ID": "{SAT}", "Failed to delete": -1'),  # not read
    ("pieces", USED, '"Lazy File Walker": 1, "Duration": "1s"'),  # lazy: unknown
    ("pieces", USED, '"Lazy File Walker": "true"'),
    ("lazyfilewalker.gc-filewalker", USED, '"Lazy File Walker": false'),  # the logger's true
    ("lazyfilewalke", USED, '"Lazy File Walker": false'),
]

#: what house.c leaves to Python (each must reach it): fields for a retain line unless noted
HOSTILE = [
    f'"Satellite ID": "{SAT}", "Deleted pieces": 21494.0',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 1e400',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 1E4',
    f'"Satellite ID": "{SAT}", "Deleted pieces": -5',
    f'"Satellite ID": "{SAT}", "Deleted pieces": -0',
    f'"Satellite ID": "{SAT}", "Deleted pieces": {"9" * 23}',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 1000000000001',
    f'"Satellite ID": "{SAT}", "Deleted pieces": "21494"',
    f'"Satellite ID": "{SAT}", "Deleted pieces": true',
    f'"Satellite ID": "{SAT}", "Deleted pieces": null',
    f'"Satellite ID": "{SAT}", "Deleted pieces": [1]',
    f'"Satellite ID": "{SAT}", "Deleted pieces": {{"a": 1}}',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 05',
    f'"Satellite ID": "{SAT}", "Failed to delete": -1',
    f'"Satellite ID": "{SAT}", "Pieces failed to read": 2.5',
    f'"Satellite ID": "{SAT}", "num deleted": NaN',
    f'"Satellite ID": "{SAT}", "x": Infinity',
    f'"Satellite ID": "{SAT}", "x": -Infinity',
    f'"Satellite ID": "{SAT}", "x": 1.5',
    f'"Satellite ID": "{SAT}", "x": [1, 2]',
    f'"Satellite ID": "{SAT}", "x": {"1" * 5000}',
    f'"Satellite ID": "{SAT}", "x": "a\\"b"',
    '"Satellite ID": "12L9Z\\u0046wh", "Deleted pieces": 5',
    f'"Satellite ID": "{SAT}\\n", "Deleted pieces": 5',
    f'"Satellite ID": "{NEW_SAT}", "Deleted pieces": 5',  # not known yet: _new_satellite
    '"Satellite ID": "not a satellite", "Deleted pieces": 5',
    '"Satellite ID": 5, "Deleted pieces": 5',
    f'"Satellite ID": null, "satellite": "{SAT}"',
    f'"Satellite ID": "{SAT}", "satellite_id": "{SAT2}", "Satellite ID": "{SAT}"',
    f'"Deleted pieces": 5, "DeletedPieces": 6, "Deleted pieces": 7, "Satellite ID": "{SAT}"',
    f'"Satellite ID": "{SAT}", "Duration": "1h"',
    f'"Satellite ID": "{SAT}", "Duration": "5m"',
    f'"Satellite ID": "{SAT}", "Duration": "1m5ms"',
    f'"Satellite ID": "{SAT}", "Duration": "1.5h"',
    f'"Satellite ID": "{SAT}", "Duration": "99999999h"',
    f'"Satellite ID": "{SAT}", "Duration": ""',
    f'"Satellite ID": "{SAT}", "Duration": "s"',
    f'"Satellite ID": "{SAT}", "Duration": "1.s"',
    f'"Satellite ID": "{SAT}", "Duration": ".5s"',
    f'"Satellite ID": "{SAT}", "Duration": "1e3s"',
    f'"Satellite ID": "{SAT}", "Duration": "infs"',
    f'"Satellite ID": "{SAT}", "Duration": "-1s"',
    f'"Satellite ID": "{SAT}", "Duration": "1s "',
    f'"Satellite ID": "{SAT}", "Duration": "{"1" * 41}s"',
    f'"Satellite ID": "{SAT}", "Duration": 5',
    f'"Satellite ID": "{SAT}", "Duration": "1h1h1s"',
    f'"Satellite ID": "{SAT}", "Duration": "1m1h1s"',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 5,',
    f'"Satellite ID": "{SAT}" "Deleted pieces": 5',
    f'"Satellite ID": "{SAT}", "Deleted pieces" 5',
    f'"Satellite ID": "{SAT}", "Deleted pieces": 5}} x',
    f'"Satellite ID": "{SAT}", "Deleted pieces": tru',
    f'"Satellite ID": "{SAT}", , "Deleted pieces": 5',
    f'"Satellite ID": "{SAT}", "x": "é"',
    f'"Satellite ID": "{SAT}", 5: 5',
]


def line(i: int, logger: str | None, message: str, fields: str, level: str = "INFO") -> str:
    head = f"{TS.format(i % 60)}\t{level}\t" + ("" if logger is None else f"{logger}\t")
    return f"{head}{message}\t{{{fields}}}"


def plain_lines(level: str = "INFO") -> list[str]:
    return [line(i, logger, message, fields, level) for i, (logger, message, fields)
            in enumerate(PLAIN)]


def other_levels() -> list[str]:
    """At the other levels C reads (the message gives the event: no `database` text does)."""
    return plain_lines("DEBUG") + plain_lines("WARN") + plain_lines("ERROR")


def hostile_lines() -> list[str]:
    out = [line(i, "retain", RETAIN, fields) for i, fields in enumerate(HOSTILE)]
    # the duration and satellite mutations under the other two messages too
    for i, fields in enumerate(HOSTILE):
        if '"Duration"' in fields:
            out.append(line(i, "pieces:trash", TRASH, fields.replace("Duration", "elapsed")))
            out.append(line(i, "pieces", USED, fields))
        elif '"Deleted pieces"' not in fields and "Failed" not in fields:  # retain's only
            out.append(line(i, "pieces:trash", TRASH, fields))
    out += [line(0, "pieces", USED, '"lazy_file_walker": true, "LazyFileWalker": false'),
            line(0, "pieces", USED, '"Lazy File Walker": null, "lazy_file_walker": false'),
            line(0, "pieces", USED, '"Lazy File Walker": true, "Duration": "1s"\t'),
            line(0, "pieces", USED, '"Duration": "1s", "x": {}'),
            line(0, "pieces:trash", TRASH, f'"satellite_id": "{SAT}", "elapsed": "1s"') + "\r"]
    return out


def generated(seed: int) -> list[str]:
    """Every era's generated log (its housekeeping lines among transfers and events)."""
    out = []
    for era in ERAS:
        out += [x.rstrip("\n") for x in LogGenerator(era=era, seed=seed).lines(6000, T0)]
    return out


def corpus(seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = plain_lines() + hostile_lines() + other_levels()
    rng.shuffle(lines)
    gen = generated(seed)
    out = list(KNOWN)
    for i, text in enumerate(lines):
        out.append(text)
        out.extend(gen[i * 40 : i * 40 + rng.randrange(80)])
    out += gen[len(lines) * 40 :]
    # the same lines again: the keys exist now, the sums go on
    return out + plain_lines() + hostile_lines()


def agree(got: NodeState, ref: NodeState) -> None:
    assert everything(got) == everything(ref)
    for name in ("house", "house_hists", "events", "lines", "transfers", "bytes"):
        assert list(getattr(got, name)) == list(getattr(ref, name)), name
    for key, hist in ref.house_hists.items():  # the float sums to the bit
        assert got.house_hists[key].sum.hex() == hist.sum.hex(), key
        assert type(got.house_hists[key].sum) is type(hist.sum), key


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(2))
def test_house_lines_agree_with_the_reference(kind, seed):
    lines = corpus(seed)
    ref = reference(lines, None)
    assert len(ref.house) > 15 and len(ref.house_hists) > 6
    for size in (1, 9, 5000):
        agree(via(kind, batched(lines, size), None), ref)


@pytest.mark.parametrize("kind", KINDS)
def test_house_lines_alone_agree_with_the_reference(kind):
    """Without a transfer first: every satellite is new to _house (Python reads the first)."""
    lines = plain_lines() + hostile_lines() + plain_lines()
    ref = reference(lines, None)
    for size in (1, 4, 1000):
        agree(via(kind, batched(lines, size), None), ref)


@native
def test_plain_house_lines_do_not_reach_python():
    plain = plain_lines() + other_levels()
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    state.feed(KNOWN + plain, None)
    assert seen == []
    assert state.house[("gc_runs", SAT)] >= 3 and state.house[("trash_empty_runs", SAT)] >= 2
    assert ("filewalker_runs", "used_space", "unknown") in state.house
    assert state.lines["warn"] == state.lines["error"] == len(PLAIN)
    agree(state, reference(KNOWN + plain, None))


@native
@pytest.mark.parametrize("mutated", hostile_lines())
def test_what_house_c_is_not_sure_about_reaches_python(mutated):
    """Each hostile line goes to Python whole, and leaves the state Python gives."""
    lines = [*KNOWN, *plain_lines(), mutated, *plain_lines()]
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    state.feed(lines, None)
    assert seen == [mutated]
    agree(state, reference(lines, None))


@native
def test_a_satellite_new_to_house_goes_to_python_once():
    """_house calls _new_satellite for it; from then on it is known and stays in C."""
    lines = [line(i, "pieces:trash", TRASH, f'"Satellite ID": "{NEW_SAT}", "elapsed": "1s"')
             for i in range(3)]
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    state.feed(lines, None)
    assert seen == lines[:1]
    assert state.house[("trash_empty_runs", NEW_SAT)] == 3
    agree(state, reference(lines, None))


@pytest.mark.parametrize("kind", KINDS)
def test_durations_sum_as_python_does(kind):
    """Random Go durations of every shape: the histogram sums are the same doubles."""
    rng = random.Random(7)
    durations = ["0s"]
    for _ in range(400):
        frac = "" if rng.random() < 0.2 else "." + str(rng.randrange(10 ** rng.randrange(1, 10)))
        secs = f"{rng.randrange(60)}{frac}"
        shape = rng.randrange(5)
        if shape == 0:
            durations.append(f"{rng.randrange(1, 3000)}h{rng.randrange(60)}m{secs}s")
        elif shape == 1:
            durations.append(f"{rng.randrange(1, 60)}m{secs}s")
        elif shape == 2:
            durations.append(f"{secs}s")
        elif shape == 3:
            durations.append(f"{rng.randrange(1000)}{frac}{rng.choice(['ms', 'us', 'ns'])}")
        else:
            durations.append(f"{rng.randrange(1, 99)}h{secs}s")
    lines = list(KNOWN)
    for i, took in enumerate(durations):
        sat = (SAT, SAT2)[i % 2]
        lines.append(line(i, "pieces:trash", TRASH, f'"Satellite ID": "{sat}", "elapsed": '
                                                   f'"{took}"'))
        lines.append(line(i, "retain", RETAIN, f'"Satellite ID": "{sat}", "Duration": "{took}"'))
        lines.append(line(i, "pieces", USED, f'"Duration": "{took}"'))
    ref = reference(lines, None)
    assert ref.house_hists[("trash_empty_duration",)].counts[-1] > 0  # over a day
    for size in (1, 50, 5000):
        agree(via(kind, batched(lines, size), None), ref)
    if kind != "python":  # none of them reaches Python
        state = NodeState("n", native=True)
        seen = []
        real = state._line
        state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
        state.feed(lines, None)
        assert seen == []


@pytest.mark.parametrize("kind", KINDS)
def test_capped_and_odd_state_agree(kind):
    """A counter at HOUSE_MAX stays there; values NodeState would not build (a float count,
    an int sum, a histogram of another type) go to Python, which applies them its way."""
    class Other(Histogram):
        __slots__ = ()

    def prepare(state: NodeState) -> None:
        state.house[("gc_runs", SAT)] = HOUSE_MAX - 1
        state.house[("gc_pieces_trashed", SAT)] = HOUSE_MAX
        state.house[("trash_empty_runs", SAT)] = 1.0
        odd = state.house_hists[("trash_empty_duration",)] = Histogram(housekeeping.HOUSE_BUCKETS)
        odd.sum = 3
        state.house_hists[("filewalker_duration", "used_space", "true")] = Other(
            housekeeping.HOUSE_BUCKETS)

    lines = KNOWN + plain_lines() * 2
    ref = NodeState("n", native=False)
    prepare(ref)
    for text in lines:
        ref._line(text, None)
    got = NodeState("n", native=kind != "python")
    prepare(got)
    for batch in batched(lines, 7):
        if kind == "block":
            got.feed_block("\n".join(batch).encode(), None)
        else:
            got.feed(batch, None)
    agree(got, ref)
    assert got.house[("gc_runs", SAT)] == HOUSE_MAX
