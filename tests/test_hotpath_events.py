"""The plain event lines the C scan counts itself (exporter/hotpath/events.c): the state must
be the one `parse_line` + `apply` builds, dict order included, and the lines it is not sure
about (housekeeping, transfers, odd layouts, non-ASCII, NUL, `\\r`) must still reach Python."""

from __future__ import annotations

import random

import pytest

from exporter import housekeeping
from exporter.events import ERROR_TEXT_EVENTS, EVENT_NAMES, EVENTS
from exporter.parser import OTHER, PIECESTORE, parse_line
from exporter.simulate.loggen import LogGenerator
from exporter.state import NodeState
from tests.test_hotpath import KINDS, T0, batched, everything, native, reference, via

TS = "2026-08-20T10:15:{:02d}Z"
LOGGERS = ["orders", "contact:service", "piecestore", "piecestore:endpoint", "", "x\\y", None,
           None]
LEVELS = ["INFO", "DEBUG", "WARN", "ERROR", "FATAL", "DPANIC", "info"]
DATABASE = [f'"error": "{needle}"' for needle, _ in ERROR_TEXT_EVENTS] + [
    '"error": "database"', '"error": "DATABASE IS LOCKED"', '"x": "database is lock"']
#: the housekeeping messages exporter/hotpath/house.c applies itself (tests/test_hotpath_house.py)
HOUSE_IN_C = ("Moved pieces to trash during retain", "emptying trash finished",
              "used-space-filewalker completed")
MESSAGES = [*EVENTS, *housekeeping.READERS, *PIECESTORE, "Node 1.2.3 started", "Node started",
            "Node  started ", "node 1 started", "Node ", "not an event", "", "finished "]


def line(i: int, level: str, logger: str | None, message: str, fields: str) -> str:
    """The common layout; with `logger` None the updater's, which has no logger column."""
    head = f"{TS.format(i % 60)}\t{level}\t" + ("" if logger is None else f"{logger}\t")
    return f"{head}{message}\t{{{fields}}}"


def event_lines(seed: int) -> list[str]:
    """Every message at every level with and without database texts, some mutated into the
    shapes that must go to Python, between generated lines."""
    rng = random.Random(seed)
    gen = [x.rstrip("\n") for x in LogGenerator(era="v1.99", seed=seed).lines(1500, T0)]
    odd = [("\t", "\t\t"), ("Z\t", "Z\r\t"), ("}", "}\r"), ("Z", "Z\x00"), ("Z", "é"),
           ("T", " "), ("-", "_"), ("{", ""), ("}", ""), ("Z", " Z"), ("2026", ""),
           ("T10:", "T10_"), ("08-20", "8-20"), ("\t{", "\t")]
    out = []
    for i, message in enumerate(MESSAGES * 6):
        fields = rng.choice(['"Process": "storagenode"', *DATABASE,
                             '"error": "x", "errorVerbose": "database is locked\\n\\tat"',
                             '"a": "é database is locked"'])
        text = line(i, rng.choice(LEVELS), rng.choice(LOGGERS), message, fields)
        if rng.random() < 0.2:
            old, new = rng.choice(odd)
            text = text.replace(old, new, 1)
        out.append(text)
        out.extend(gen[i * 3 : i * 3 + rng.randrange(4)])
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_event_lines_agree_with_the_reference(kind, seed):
    lines = event_lines(seed)
    ref = reference(lines, None)
    expected = everything(ref)
    assert len(expected["events"]) > 20
    for size in (1, 7, 400):
        got = via(kind, batched(lines, size), None)
        assert everything(got) == expected, size
        # the order of the keys too (what a checkpoint writes)
        assert list(got.events.items()) == list(ref.events.items()), size
        assert list(got.lines) == list(ref.lines), size


@pytest.mark.parametrize("kind", KINDS)
def test_new_event_keys_keep_their_order(kind):
    """Keys first seen in one batch land in the order the lines give, not the table's."""
    names = list(dict.fromkeys(EVENTS.values()))
    rng = random.Random(3)
    rng.shuffle(names)
    by_name = {name: message for message, name in reversed(EVENTS.items())}
    levels = ["ERROR", "WARN", "DEBUG"] * len(names)
    lines = [line(i, levels[i], "x", by_name[name], "") for i, name in enumerate(names)]
    lines.insert(5, line(0, "ERROR", "db", "any", '"error": "database disk image is malformed"'))
    ref = reference(lines, None)
    got = via(kind, [lines], None)
    assert list(got.events) == list(ref.events) and list(got.lines) == list(ref.lines)
    assert list(got.lines) == ["error", "warn", "debug"]
    assert set(got.events) <= set(EVENT_NAMES)


@native
def test_plain_event_lines_do_not_reach_python():
    """The point of events.c: parse_line is not called for them; the others still go."""
    plain = [line(i, "INFO", "orders", "finished", '"satellite ID": "x"') for i in range(50)]
    plain += [line(i, "INFO", None, "Downloading versions.", '"process": "storagenode-updater"')
              for i in range(5)]
    plain += [line(1, "WARN", "db", "x", '"error": "database is locked"'),
              line(1, "INFO", None, "Version is up to date", '"process": "storagenode-updater"'),
              line(2, "INFO", "Node", "Node v1.2 started", ""),
              line(3, "ERROR", "contact:service", "ping satellite failed ", '"a": 1')]
    python = [line(4, "INFO", "piecestore", "upload failed", '"a": 1'),
              line(5, "INFO", "retain", "retain pieces failed", '"a": 1'),
              line(6, "INFO", "x", "finished", '"a": "é"'), line(7, "FATAL", "x", "finished", ""),
              line(8, "INFO", "x", "finished", "") + "\r", line(9, "INFO", "x\tfinished", "y", ""),
              line(10, "INFO", None, "emptying trash finished", '"elapsed": "1h"'),
              line(11, "INFO", None, "finished", "").replace("\t{}", "\tx"),
              line(12, "INFO", None, "finished", "").replace("T10:", "T10_")]
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    state.feed(plain + python, None)
    assert seen == python
    assert state.events["orders_settled"] >= 50 and state.events["database_locked"] == 1
    assert state.events["node_started"] == 1 and state.events["ping_satellite_failed"] == 1
    assert state.events["version_up_to_date"] == 1
    assert everything(state) == everything(reference(plain + python, None))


@native
def test_every_event_message_is_counted_in_c_unless_python_reads_it():
    """Each EVENTS message at each level the scan knows: counted as EVENTS says, without
    Python, except the housekeeping messages (READERS), which Python still reads (but for
    the three house.c applies, HOUSE_IN_C)."""
    lines = [line(i, level, "x", message, '"a": 1')
             for i, message in enumerate(EVENTS) for level in ("INFO", "DEBUG", "WARN", "ERROR")]
    state = NodeState("n", native=True)
    seen = []
    real = state._line
    state._line = lambda text, read_time: (seen.append(text), real(text, read_time))
    state.feed(lines, None)
    assert seen == [x for x in lines if x.split("\t")[3] in housekeeping.READERS
                    and x.split("\t")[3] not in HOUSE_IN_C]
    expected = {}
    for name in EVENTS.values():
        expected[name] = expected.get(name, 0) + 4
    assert state.events == expected and list(state.events) == list(expected)
    assert state.lines == dict.fromkeys(["info", "debug", "warn", "error"], len(EVENTS))


def test_the_lines_the_scan_counts_are_plain_events_for_parse_line():
    """What events.c reads is parse_line's OTHER tuple (no housekeeping, no transfer)."""
    text = line(0, "WARN", "piecestore", "upload rejected, too many requests", '"a": 1')
    assert parse_line(text) == (OTHER, "warn", TS.format(0), "upload_rejected")


def test_only_lines_with_a_piecestore_logger_become_transfers():
    """flush.c write_back_plain keeps the histogram sums, clocks and pairing table in C over
    a Python line without a PIECESTORE_LOGGERS text (events.c may_be_transfer): such a line
    must never be a transfer for NodeState._line, in any layout or behind any prefix."""
    from exporter import prefixes
    from exporter.parser import PIECESTORE_LOGGERS, TRANSFER
    from tests.test_hotpath import _mutate, corpora

    rng = random.Random(5)
    lines = [x for _, corpus in corpora() for x in corpus] + event_lines(4)
    lines += [_mutate(rng, x) for x in lines[::3]]
    lines += ['{"L":"INFO","N":"piece\\u0073tore","M":"downloaded","piece_id":"P",'
              '"satellite_id":"x","action":"GET","size":5}']
    transfers = 0
    for text in lines:
        event = parse_line(text) or prefixes.parse_prefixed(text, parse_line)
        if event is not None and event[0] == TRANSFER:
            transfers += 1
            assert any(logger in text for logger in PIECESTORE_LOGGERS), text
    assert transfers > 10_000


@native
@pytest.mark.parametrize("size", [7, 5000])
def test_every_counter_dict_has_pythons_order(size):
    """A key new to a dict goes in at its first line (a checkpoint writes the dicts in their
    order): levels, events, reasons and requested sizes first counted in a long C stretch
    must not land in table order."""
    from tests.test_hotpath import corpora

    names = ("lines", "events", "transfers", "bytes", "requested", "errors", "cancel_reasons",
             "in_flight")
    for corpus, lines in [*corpora(), ("events", event_lines(5))]:
        ref = reference(lines, None)
        got = via("block", batched(lines, size), None)
        for name in names:
            assert list(getattr(got, name)) == list(getattr(ref, name)), (corpus, name)
