"""The C hot path (exporter/hotpath/*.c), the pure Python hot path and the reference
(`parse_line` + `apply`, one line at a time) must leave exactly the same NodeState.

The whole state is compared, including what the scrape does not show: the pairing table in
its insertion order, the heavy-hitter counts, the clocks that drive expiry.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from exporter.parser import parse_line
from exporter.satellites import encode_node_id
from exporter.simulate.loggen import LogGenerator
from exporter.state import NATIVE_SCAN, NodeState
from logstream.lines import LineSplitter

T0 = 1_780_000_000.0
FIXTURES = Path(__file__).parent / "fixtures" / "logs"
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"

native = pytest.mark.skipif(NATIVE_SCAN is None, reason="exporter._hotpath is not built")


def test_native_hotpath_is_built():
    """CI builds the extension (pip install -e .); a failed build must not go unnoticed."""
    if os.environ.get("STORAGENODE_EXPORTER_PURE_PYTHON"):
        pytest.skip("STORAGENODE_EXPORTER_PURE_PYTHON is set")
    assert NATIVE_SCAN is not None, "exporter/hotpath/*.c did not build; see pip's output"


def everything(state: NodeState) -> dict:
    return {
        **state.counters(),
        "in_flight": dict(state.in_flight),
        "pending": list(state.pending.items()),
        "top_counts": dict(state.top_pieces.counts),
        "newest": state._newest,
        "next_sweep": state._next_sweep,
        "race_lost": list(state.race_lost.recent.items()),
        "start_index": list(state.start_index.starts.items()),
        "index_starts": state.index_starts,
    }


def reference(lines: list[str], read_time: float | None, **kw) -> NodeState:
    state = NodeState("n", native=False, **kw)
    for line in lines:
        state._line(line, read_time)
    return state


def via(kind: str, batches: list[list[str]], read_time: float | None, **kw) -> NodeState:
    state = NodeState("n", native=kind != "python", **kw)
    for batch in batches:
        if kind == "block":
            state.feed_block("\n".join(batch).encode(), read_time)
        else:
            state.feed(batch, read_time)
    return state


def batched(lines: list[str], size: int) -> list[list[str]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def hostile() -> list[str]:
    """tests/test_poison.py's poison lines and fuzzed satellite IDs between common lines."""
    from tests.test_poison import POISON, fuzzed_satellite, good

    rng = random.Random(7)
    gen = [x.rstrip("\n") for x in LogGenerator(era="v1.146", seed=8).lines(600, T0)]
    out = []
    for i, line in enumerate(gen):
        out.append(line)
        if i % 5 == 0:
            out.append(POISON[(i // 5) % len(POISON)][0])
        if i % 7 == 0:
            out.append(line.replace(US1, fuzzed_satellite(rng)))
            out.append(good(i)[0].replace(US1, fuzzed_satellite(rng)))
    # surrogates stand for invalid UTF-8; the block path sees the replacement character
    return [x.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for x in out]


PREFIXES = (
    "2026-08-20T10:15:03.282196123Z ", "2026-08-20T10:15:03Z ", "storagenode-1  | ",
    "storagenode_1 | 2026-08-20T10:15:03.5+02:00 ", "\x1b[36mstoragenode  |\x1b[0m ",
    "2026-08-20 10:15:03.282196+00:00", "2026-08-20 10:15:03.282196", "2026-08-20 10:15:03",
    "Aug 20 10:15:03 nas storagenode[857]: ", "Aug  2 10:15:03 nas storagenode-updater: ",
    "2026-08-20T10:15:03+0000 nas storagenode[857]: ", "2026-08-20T10:15:03.1234567890Z ",
    "svc | 2026-08-20T10:15:03Z  ", "x" * 130 + " | ", "May 31 06:26:13 h p[12345678901]: ",
)


def prefixed(seed: int) -> list[str]:
    """Generated lines behind every prefix shape (and near misses), mixed with plain ones,
    some with their tabs turned into spaces (issue 13)."""
    rng = random.Random(seed)
    out = []
    for line in (x.rstrip("\n") for x in LogGenerator(era="v1.146", seed=seed).lines(1500, T0)):
        pick = rng.randrange(len(PREFIXES) + 3)
        if pick < len(PREFIXES):
            line = PREFIXES[pick] + line
        elif pick == len(PREFIXES):
            line = line.replace("\t", "    ")
        out.append(line)
    return out


def corpora() -> list[tuple[str, list[str]]]:
    out = [(p.name, p.read_text(encoding="utf-8", errors="replace").split("\n"))
           for p in sorted(FIXTURES.glob("*.log"))]
    out.append(("hostile", hostile()))
    out.append(("prefixed", prefixed(5)))
    for era in ("v1.76", "v1.80", "v1.99", "v1.120", "v1.146"):
        gen = LogGenerator(era=era, seed=11)
        out.append((era, [x.rstrip("\n") for x in gen.lines(4000, T0)]))
    return out


KINDS = ["python", pytest.param("native", marks=native), pytest.param("block", marks=native)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("read_time", [None, T0 + 30.0], ids=["log-time", "read-time"])
def test_every_path_leaves_the_same_state(kind, read_time):
    for name, lines in corpora():
        expected = everything(reference(lines, read_time))
        for size in (1, 7, 5000):
            got = everything(via(kind, batched(lines, size), read_time))
            assert got == expected, (name, size)


@pytest.mark.parametrize("kind", KINDS)
def test_rare_branches_agree(kind):
    """Table full (eviction), expiry sweeps, >1000 distinct GET pieces (the heavy-hitter
    decrement), more satellites than the C satellite cache holds, retries of one piece."""
    gen = LogGenerator(era="v1.146", seed=3)
    lines = [x.rstrip("\n") for x in gen.lines(30_000, T0)]
    sats = [encode_node_id(bytes([i]) * 32) for i in range(12)]  # well-formed node IDs
    lines = [line.replace(US1, sats[i % 12]) if i % 3 == 0 else line
             for i, line in enumerate(lines)]
    lines += lines[:500]  # the same pieces again: retried starts
    kw = {"max_pending": 8, "pairing_timeout": 5.0}
    expected = everything(reference(lines, None, **kw))
    assert expected["starts_expired"] > 500 and len(expected["top_counts"]) > 0
    assert everything(via(kind, batched(lines, 2500), None, **kw)) == expected


def _mutate(rng: random.Random, line: str) -> str:
    alphabet = '"\t\\{}:, 0123456789-_aAZ\r\x00é'
    chars = list(line)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(chars) + 1)
        op = rng.randrange(3)
        if op == 0 and i < len(chars):
            del chars[i]
        elif op == 1 and i < len(chars):
            chars[i] = rng.choice(alphabet)
        else:
            chars.insert(i, rng.choice(alphabet))
    return "".join(chars)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_mutated_lines_agree_with_the_reference(seed, kind):
    """Common lines with a few characters deleted, replaced or inserted: wherever the C
    grammar is unsure, the line must go to the Python parser and end the same."""
    rng = random.Random(seed)
    lines = [x.rstrip("\n") for x in LogGenerator(era=("v1.99", "v1.146")[seed % 2],
                                                  seed=seed).lines(3000, T0)]
    if seed >= 2:  # prefixed lines mutated too: the C prefix grammar must agree with Python's
        lines = prefixed(seed)
    mutated = [_mutate(rng, x) if rng.random() < 0.5 else x for x in lines]
    expected = everything(reference(mutated, None))
    assert everything(via(kind, batched(mutated, 100), None)) == expected


@native
def test_invalid_utf8_and_empty_lines_in_a_block():
    good = [x.rstrip("\n") for x in LogGenerator(era="v1.146", seed=5).lines(200, T0)]
    raw = "\n".join(good).encode()
    block = raw[:5000] + b"\n\xff\xfe garbage \x80\n\n" + raw[5000:]
    splitter = LineSplitter()
    text_lines = splitter.feed(block + b"\n")
    state = NodeState("n", native=True)
    state.feed_block(block, None)
    expected = reference(text_lines, None)
    assert everything(state) == everything(expected)
    assert state.unparsed >= 3


def test_parse_line_is_the_reference_for_common_lines():
    """The lines the hot paths take inline are ones parse_line reads the same way."""
    line = (f'2026-01-01T00:00:00Z\tINFO\tpiecestore\tdownloaded\t{{"process": "storagenode", '
            f'"piece_id": "P", "satellite_id": "{US1}", "action": "GET", "offset": 0, '
            f'"size": 100, "remote_address": "1.2.3.4:5"}}')
    assert parse_line(line)[3:10] == (1, "success", "GET", US1, 100, "P", "1.2.3.4:5")


@pytest.mark.parametrize("seed", range(3))
def test_line_splitter_blocks_equal_lines(seed):
    """feed_block (bytes, oversized lines emptied by sampling) against a plain split."""
    rng = random.Random(seed)
    limit = 50
    stream = b"".join(
        b"x" * rng.choice((0, 3, 49, 50, 51, 120, 400)) + rng.choice((b"\n", b"\xff\n"))
        for _ in range(3000)
    )
    expected = [
        "" if len(line) > limit else line.decode("utf-8", "replace")
        for line in stream.split(b"\n")[:-1]
    ]
    oversized = sum(len(x) > limit for x in stream.split(b"\n"))
    splitter, got = LineSplitter(max_line_bytes=limit), []
    pos = 0
    while pos < len(stream):
        step = rng.choice((1, 7, 64, 333, 5000))
        block = splitter.feed_block(stream[pos : pos + step])
        if block is not None:
            got.extend(str(block, "utf-8", "replace").split("\n"))
        pos += step
    assert got == expected
    assert splitter.oversized == oversized
    # read_block: the same blocks from a file read into one reused buffer
    fh, splitter, got = io.BytesIO(stream), LineSplitter(max_line_bytes=limit), []
    while True:
        n, block = splitter.read_block(fh, rng.choice((1, 7, 64, 333, 5000)))
        if n == 0:
            break
        if block is not None:
            got.extend(str(block, "utf-8", "replace").split("\n"))
    assert got == expected
    assert splitter.oversized == oversized


@native
def test_report_is_byte_identical_with_and_without_the_c_hot_path(tmp_path):
    """The real `report` process, once as built and once forced to pure Python."""
    import subprocess
    import sys

    from exporter.simulate.loggen import write_file

    log = tmp_path / "node.log"
    write_file(str(log), 20_000, era="v1.146", seed=9, start=T0)
    outputs = []
    for pure in ("", "1"):
        env = {**os.environ, "STORAGENODE_EXPORTER_PURE_PYTHON": pure}
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "report", "--node", f"n:{log}",
             "--format", "prometheus"], capture_output=True, env=env, timeout=60, check=True)
        outputs.append(result.stdout)
    assert b'storagenode_transfers_total{' in outputs[0]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("with_read_time", [False, True], ids=["recorder-clock", "read-time"])
@native
def test_geo_window_is_the_same_with_the_c_hot_path(with_read_time):
    """The C path adds to the recorder's current slot itself when it can; the window must
    equal the one Python builds, across slot changes and cache generations."""
    from exporter.geo.locator import GeoLocator
    from exporter.geo.recorder import GeoRecorder

    demo_db = Path(__file__).parent.parent / "exporter" / "data" / "demo-geoip.mmdb"
    # demo database networks, private addresses, and public addresses it does not know
    gen = LogGenerator(era="v1.146", seed=4,
                       remote_networks=["198.18.0.0/16", "10.1.0.0/24", "203.0.113.0/24"])
    lines = [x.rstrip("\n") for x in gen.lines(12_000, T0)]
    windows = []
    for native_path in (False, True):
        now = [T0]
        locator = GeoLocator(str(demo_db), cache_size=64)  # small: generations turn over
        recorder = GeoRecorder(locator, clock=lambda now=now: now[0], node="n")
        state = NodeState("n", geo=recorder, native=native_path)
        for i, batch in enumerate(batched(lines, 400)):
            now[0] = T0 + 7.0 * i  # several batches per 10 s slot, 30 batches > window
            state.feed(batch, now[0] if with_read_time else None)
        windows.append((recorder.snapshot(now[0]), recorder.overflowed,
                        everything(state)))
    assert windows[0][0][0], "no geo buckets at all: the test would prove nothing"
    assert windows[1] == windows[0]


@native
def test_every_prefix_of_common_lines_agrees_with_the_reference():
    """Truncated lines (a writer cut off mid-line) at every length, each era's shapes."""
    lines = []
    for era in ("v1.99", "v1.146"):
        sample = [x.rstrip("\n") for x in LogGenerator(era=era, seed=6).lines(300, T0)]
        for kind in ("\tuploaded\t", "\tdownloaded\t", " started\t", " canceled\t"):
            line = next(x for x in sample if kind in x)
            lines += [line[:i] for i in range(len(line) + 1)]
    expected = everything(reference(lines, None))
    assert expected["unparsed"] > 100
    assert everything(via("block", batched(lines, 64), None)) == expected


@native
def test_pending_table_behaves_as_the_dict_it_replaces():
    """exporter._hotpath.Pending (NodeState.pending with the C path) against a dict, on the
    operations NodeState and the checkpoint use: insertion order (a key written again keeps
    its place), pop/del/in/get, iteration, `expire` as _sweep's loop, keys of any text."""
    from exporter.state import NATIVE_PENDING

    rng = random.Random(7)
    pieces = ["P" * 52, "é", "\udcff", "", "a" * 400, *map(str, range(40))]
    remotes = ["1.2.3.4:5", "[::1]:7", "", "ü" * 200]
    actions = ["GET", "GET_AUDIT", "GET_REPAIR", "PUT", "PUT_REPAIR"]
    table, ref = NATIVE_PENDING(), {}
    for step in range(20_000):
        key = (rng.choice(pieces), rng.choice(actions), rng.choice(remotes))
        op = rng.randrange(6)
        if op < 2:
            table[key] = ref[key] = float(step)
        elif op == 2:
            assert table.pop(key, None) == ref.pop(key, None)
        elif op == 3:
            assert (key in table) == (key in ref) and table.get(key) == ref.get(key)
            if key in ref:
                del table[key], ref[key]
        elif op == 4 and step % 50 == 0:
            horizon = step - 300.0
            gone = [k[1] for k, w in ref.items() if not w >= horizon]
            ref = {k: w for k, w in ref.items() if w >= horizon}
            assert table.expire(horizon) == gone
        assert len(table) == len(ref)
    assert table.items() == list(ref.items()) and list(table) == list(ref)
    assert dict(table) == ref and table.values() == list(ref.values())
    for bad in (("P", "DELETE", "r"), ("P", "GET"), ("P", "GET", None), "x"):
        assert bad not in table and table.pop(bad, 1) == 1
        with pytest.raises(KeyError):
            table[bad]
    with pytest.raises(TypeError):
        table[("P", "unknown", "r")] = 1.0
    it = iter(table)
    next(it)
    table[("new", "GET", "r")] = 0.0
    with pytest.raises(RuntimeError):
        next(it)
    table.clear()
    assert len(table) == 0 and not table and table.items() == []


@native
def test_c_classify_is_reasons_classify():
    """The scan classifies failures and cancels with the table of exporter/reasons.py; the
    code around it (lower case, first match, the bare `eof`) must give the same label."""
    from exporter import _hotpath, reasons

    rng = random.Random(11)
    needles = [n for _, group in reasons._RULES for n in group]
    pieces = ["", "x", ": ", "EOF", "eof", "read: ", "\\\"", "Tls: ", "1.2.3.4:5", " "]
    texts = ["eof", "EOF", ": eof", "read: EOF", "xeof", ": eofx", "", "other", "e: eof"]
    for _ in range(20_000):
        parts = [rng.choice(pieces) for _ in range(rng.randrange(4))]
        if rng.random() < 0.7:
            needle = rng.choice(needles)
            parts.insert(rng.randrange(len(parts) + 1),
                         "".join(ch.upper() if rng.random() < 0.3 else ch for ch in needle))
        texts.append("".join(parts))
    for text in texts:
        assert _hotpath.classify(text) == reasons.classify(text), text
    assert _hotpath.classify("é") is None and _hotpath.classify("x" * 5000) is None


def reason_lines() -> list[str]:
    """Failed and canceled lines of every shape the scan reads, and near misses."""
    head = ('2026-01-15T10:00:{s:02d}Z\t{level}\tpiecestore\t{msg}\t{{"process": "storagenode", '
            '"piece_id": "P{i}", "satellite_id": "' + US1 + '", "action": "{action}", ')
    down = '"offset": 0, "size": {size}, "remote_address": "1.2.3.4:{i}"'
    up = '"remote_address": "1.2.3.4:{i}", "size": {size}'
    tails = [', "reason": "{text}"}}', ', "error": "{text}", "errorVerbose": "{text}\\n\\tx"}}',
             ', "error": "{text}"}}', "}}", ', "reason": "{text}", "error": "x"}}',
             ', "error": "{text}", "errorVerbose": "a\\"}}', ', "Error": "{text}"}}']
    texts = ["context canceled", "speed too low, current: 1 < limit: 2", "database is locked",
             "downloaded size (0 bytes) does not match received message size (256 bytes)",
             "downloaded size (99999999 bytes) x", "downloaded size (123456789 bytes) x",
             "downloaded size (12 bytes", "read: EOF", 'said \\"no\\"', "tab\there", "é",
             "stream closed by peer", "", "x" * 5000]
    rng = random.Random(12)
    lines = []
    for i in range(3000):
        msg = rng.choice(["upload failed", "download failed", "upload canceled",
                          "download canceled", "downloaded", "upload started"])
        shape = down if msg.startswith("download") else up
        action = rng.choice(["GET", "GET_REPAIR", "PUT", "PUT_REPAIR"])
        line = (head + shape + rng.choice(tails)).format(
            s=i % 60, level=rng.choice(["INFO", "DEBUG", "WARN", "ERROR", "FATAL"]), msg=msg,
            i=i % 40, action=action, size=rng.choice([0, 5, 2319360, 10**9]),
            text=rng.choice(texts))
        lines.append(line)
        if rng.random() < 0.3:  # a start for the next ones to pair with
            lines.append(line.split("\t")[0] + '\tINFO\tpiecestore\tdownload started\t{"process"'
                         f': "storagenode", "piece_id": "P{i % 40}", "satellite_id": "{US1}", '
                         f'"action": "{action}", "offset": 0, "size": 5, "remote_address": '
                         f'"1.2.3.4:{i % 40}"}}')
    return lines


@pytest.mark.parametrize("kind", KINDS)
def test_failures_and_cancels_with_reasons_agree(kind):
    """The failed and canceled lines the scan reads itself (and the ones it must not)."""
    lines = reason_lines()
    expected = everything(reference(lines, None))
    assert expected["errors"] and expected["cancel_reasons"]
    for size in (1, 64):
        assert everything(via(kind, batched(lines, size), None)) == expected


@native
def test_c_timestamps_are_fromisoformat():
    """The scan reads the usual timestamp shape itself; where it answers, it must be what
    TimestampCache (datetime.fromisoformat(ts).timestamp()) gives, to the last bit."""
    from datetime import datetime

    from exporter import _hotpath

    rng = random.Random(13)
    shapes = ["2024-03-13T09:00:00Z", "2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00Z",
              "1900-02-29T00:00:00Z", "2000-02-29T00:00:00+23:59", "2024-03-13T24:00:00Z",
              "2024-03-13T09:60:00Z", "2024-03-13T09:00:60Z", "2024-13-01T00:00:00Z",
              "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.9Z", "2024-03-13T09:00:00.Z",
              "2024-03-13T09:00:00.1234567Z", "2024-03-13T09:00:00+24:00", "2024-03-13T09:00:00z",
              "2024-03-13T09:00:00+0200", "2024-03-13T09:00:00", "1969-12-31T23:59:59.5-01:30"]
    for _ in range(30_000):
        zone = rng.choice(["Z", "+00:00", f"-{rng.randrange(30):02d}:{rng.randrange(70):02d}",
                           f"+{rng.randrange(30):02d}:{rng.randrange(70):02d}"])
        frac = rng.choice(["", "." + str(rng.randrange(10**6)).zfill(rng.randrange(1, 7))[:6]])
        shapes.append(f"{rng.randrange(1, 10000):04d}-{rng.randrange(0, 14):02d}-"
                      f"{rng.randrange(0, 33):02d}T{rng.randrange(25):02d}:{rng.randrange(61):02d}"
                      f":{rng.randrange(61):02d}{frac}{zone}")
    answered = 0
    for ts in shapes:
        got = _hotpath.timestamp(ts)
        if got is None:
            continue
        answered += 1
        assert got == datetime.fromisoformat(ts).timestamp(), ts
    assert answered > 500


@pytest.mark.parametrize("kind", KINDS)
def test_free_space_only_from_an_uploads_start(kind):
    """A `upload started` line naming a download action (a fuzz finding) tells no free space,
    as parse_line says; a real upload's start does, in every path."""
    line = ('2026-08-20T10:15:02Z\tDEBUG\tpiecestore:endpoint\tupload started\t{"piece_id": '
            '"VKEVYEKTPFUNEGQWKX56S4QILEOXOQFE7IZMGZS2TVPPIQRPN5UQ", "satellite_id": '
            f'"{US1}", "action": "ACTION", "remote_address": "172.17.0.1:53694", '
            '"available_space": 1786543210988}')
    for action, free in (("GET", None), ("GET_REPAIR", None), ("PUT", 1786543210988)):
        lines = [line.replace("ACTION", action)]
        assert reference(lines, None).available_space == free
        for size in (1, 2):
            assert via(kind, batched(lines, size), None).available_space == free, (action, size)
