"""Hostile and damaged log lines: every line gets an answer, and none costs another line, a
scrape or a restart (issue 12, items 1 and 2).

The poison lines go through the real `report` process (C and pure Python), the real
exporter tailing a file, and a restart from a hand-crafted state file. Satellite IDs that are
not node IDs never become label values.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time

import pytest

from exporter.satellites import INVALID, KNOWN, MAX_SATELLITES, OVERFLOW, encode_node_id
from exporter.state import NATIVE_SCAN, NodeState
from tests.conftest import ROOT, parse_exposition, total, wait_for

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
EU1 = "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"
PIECE = "BNERV6D3IQGORXMICYMR6FGFMLOVV6MUB3XMM6IRXDJBVDPJZ2KQ"
TS = "2025-12-21T15:18:59Z"
HUGE = "9" * 400


def up(size: str, sat: str = US1, title: bool = True, msg: str = "uploaded") -> str:
    if title:
        return (f'{TS}\tINFO\tpiecestore\t{msg}\t{{"Process": "storagenode", "Piece ID": '
                f'"{PIECE}", "Satellite ID": "{sat}", "Action": "PUT", "Remote Address": '
                f'"172.17.0.1:41080", "Size": {size}}}')
    return (f'{TS}\tINFO\tpiecestore\t{msg}\t{{"process": "storagenode", "piece_id": '
            f'"{PIECE}", "satellite_id": "{sat}", "action": "PUT", "remote_address": '
            f'"172.17.0.1:41080", "size": {size}}}')


def down(size: str, sat: str = US1, extra: str = "", msg: str = "downloaded",
         level: str = "INFO") -> str:
    return (f'{TS}\t{level}\tpiecestore\t{msg}\t{{"process": "storagenode", "piece_id": '
            f'"{PIECE}", "satellite_id": "{sat}", "action": "GET", "offset": 0, '
            f'"size": {size}, "remote_address": "172.17.0.1:41318"{extra}}}')


# (line, expected answer): (action, result, satellite label) for a transfer counted without
# bytes, or None for a line counted as unparsed
POISON: list[tuple[str, tuple[str, str, str] | None]] = [
    (up(HUGE), ("PUT", "success", "us1")),
    (up(HUGE, title=False), ("PUT", "success", "us1")),
    (up("9" * 5000), ("PUT", "success", "us1")),  # beyond Python's int() digit limit
    (up("67108865"), ("PUT", "success", "us1")),  # 64 MiB + 1: no piece is that big
    (up("99999999"), ("PUT", "success", "us1")),
    (up(str(2**63)), ("PUT", "success", "us1")),
    (up("1e400"), ("PUT", "success", "us1")),
    (up("-5"), ("PUT", "success", "us1")),
    (up("NaN"), ("PUT", "success", "us1")),
    (up(HUGE, msg="upload canceled"), ("PUT", "canceled", "us1")),
    (down(HUGE), ("GET", "success", "us1")),
    (down(HUGE, msg="download canceled", extra=', "reason": "context canceled"'),
     ("GET", "canceled", "us1")),
    (down(HUGE, msg="download failed", level="ERROR", extra=', "error": "file does not exist"'),
     ("GET", "failed", "us1")),
    # another key order: the JSON fallback
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Action": "PUT", '
     f'"Satellite ID": "{US1}", "Size": 1e400}}', ("PUT", "success", "us1")),
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Action": "PUT", '
     f'"Satellite ID": "{US1}", "Size": {HUGE}}}', ("PUT", "success", "us1")),
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Action": "PUT", '
     f'"Satellite ID": "{US1}", "Size": true}}', ("PUT", "success", "us1")),
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Satellite ID": "{US1}", '
     f'"Size": 5, "Action": {{}}}}', None),
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Action": "PUT", '
     f'"Satellite ID": {{"a": 1}}, "Size": 5}}', None),
    (f'{TS}\tINFO\tpiecestore\tuploaded\t{{"Piece ID": "{PIECE}", "Action": "PUT", '
     f'"Satellite ID": "{US1}", "x": {"[" * 50_000}{"]" * 50_000}}}', None),  # deep nesting
    # log.encoding: json
    (f'{{"L":"INFO","T":"{TS}","N":"piecestore","M":"uploaded","Piece ID":"{PIECE}",'
     f'"Satellite ID":"{US1}","Action":"PUT","Size":{HUGE}}}', ("PUT", "success", "us1")),
    ('{"L":"INFO","T":"' + TS + '","N":"piecestore","M":"\\uZZZZ"}', None),
    # satellites that are not node IDs
    (up("100", sat="sat\x00ellite"), ("PUT", "success", INVALID)),
    (up("100", sat=US1[:-1] + "T"), ("PUT", "success", INVALID)),  # checksum wrong
    (up("100", sat="us1"), ("PUT", "success", INVALID)),
    (up("100", sat="\udcff\udcfe"), ("PUT", "success", INVALID)),  # invalid UTF-8 (below)
    # fuzz/crashes: fields too short to index; a finished line with `available_space`
    (f"{TS}\tINFO\tpiecestore\tuploaded\t{{}}", None),
    (up("5", title=False).replace('"size": 5', '"available_space": 5'),
     ("PUT", "success", "us1")),
    # absurd piece IDs and remote addresses
    (up("100").replace(PIECE, "A" * 5000), None),
    (up("100").replace("172.17.0.1:41080", "1" * 5000), None),
]

# good lines around every poison line: (line, size)
GOOD_SIZES = (32512, 2293760, 256, 1)


def good(i: int) -> tuple[str, int]:
    size = GOOD_SIZES[i % len(GOOD_SIZES)]
    sat = (US1, EU1)[i % 2]
    if i % 3 == 0:
        return down(str(size), sat=sat), size
    return up(str(size), sat=sat, title=i % 3 == 1), size


def poisoned_log() -> tuple[bytes, dict, int]:
    """Good and poison lines alternating; returns (bytes, expected transfers, the bytes of
    the transfers with a plausible size)."""
    lines, expected, good_bytes = [], {}, 0
    for i, (bad, answer) in enumerate(POISON):
        line, size = good(i)
        lines += [line, bad]
        good_bytes += size
        action = "GET" if i % 3 == 0 else "PUT"
        key = (action, "success", ("us1", "eu1")[i % 2])
        expected[key] = expected.get(key, 0) + 1
        if answer is not None:
            expected[answer] = expected.get(answer, 0) + 1
            if answer[2] == INVALID:  # those have a plausible size: 100
                good_bytes += 100
    line, size = good(len(POISON))
    lines.append(line)
    good_bytes += size
    key = ("GET" if len(POISON) % 3 == 0 else "PUT", "success", ("us1", "eu1")[len(POISON) % 2])
    expected[key] = expected.get(key, 0) + 1
    data = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n"
    return data, expected, good_bytes


def transfers_by_label(samples: dict[str, float], node: str) -> dict:
    out = {}
    for key, value in samples.items():
        if key.startswith("storagenode_transfers_total{") and f'node="{node}"' in key and value:
            labels = dict(part.split("=", 1) for part in key[len("storagenode_transfers_total{"):-1]
                          .split(","))
            label = (labels["action"].strip('"'), labels["result"].strip('"'),
                     labels["satellite"].strip('"'))
            out[label] = out.get(label, 0) + value
    return out


def assert_sane(samples: dict[str, float]) -> None:
    bad = {k: v for k, v in samples.items() if not math.isfinite(v)}
    assert not bad


def run_report(log, pure: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORAGENODE_EXPORTER_PURE_PYTHON": "1" if pure else ""}
    return subprocess.run(
        [sys.executable, "-m", "exporter", "report", "--node", f"n:{log}", "--format",
         "prometheus"], capture_output=True, env=env, timeout=60, cwd=ROOT)


PATHS = [pytest.param(True, id="python"),
         pytest.param(False, id="c", marks=pytest.mark.skipif(NATIVE_SCAN is None,
                                                              reason="no C hot path"))]


@pytest.mark.parametrize("pure", PATHS)
def test_report_answers_every_poison_line(tmp_path, pure):
    data, expected, good_bytes = poisoned_log()
    log = tmp_path / "node.log"
    log.write_bytes(data)
    result = run_report(log, pure)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"Traceback" not in result.stderr
    assert b"could not be applied" not in result.stderr  # the safety net had nothing to do
    samples = parse_exposition(result.stdout.decode())
    assert_sane(samples)
    assert transfers_by_label(samples, "n") == expected
    assert total(samples, "storagenode_ingress_bytes_total") + total(
        samples, "storagenode_egress_bytes_total") == good_bytes
    parsed = total(samples, "storagenode_log_lines_total")
    unparsed = total(samples, "storagenode_log_unparsed_lines_total")
    assert parsed + unparsed == data.count(b"\n")
    assert unparsed == sum(answer is None for _, answer in POISON)


def test_report_is_the_same_with_and_without_the_c_hot_path(tmp_path):
    if NATIVE_SCAN is None:
        pytest.skip("no C hot path")
    log = tmp_path / "node.log"
    log.write_bytes(poisoned_log()[0])
    c, python = run_report(log, False), run_report(log, True)
    assert c.returncode == python.returncode == 0
    assert c.stdout == python.stdout


def test_live_tailing_counts_the_lines_around_a_poison_line_once(tmp_path, exporter_process):
    """The real exporter tails two nodes' files; one gets every poison line between good
    ones. Lines before and after are counted exactly once, /metrics answers 200 throughout."""
    bad_log, ok_log = tmp_path / "bad.log", tmp_path / "ok.log"
    bad_log.touch()
    ok_log.touch()
    proc = exporter_process("--node", f"bad:{bad_log}", "--node", f"ok:{ok_log}")
    wait_for(lambda: proc.samples().get('storagenode_log_source_up{node="bad"}') == 1.0
             and proc.samples().get('storagenode_log_source_up{node="ok"}') == 1.0,
             what="both files opened")
    data, expected, good_bytes = poisoned_log()
    lines = data.split(b"\n")[:-1]
    with open(bad_log, "ab") as fh:  # in a few appends, so that batches end in between
        for start in range(0, len(lines), 7):
            fh.write(b"".join(x + b"\n" for x in lines[start:start + 7]))
            fh.flush()
            time.sleep(0.02)
    with open(ok_log, "a") as fh:
        fh.write(good(1)[0] + "\n")

    def caught_up():
        s = proc.samples()
        return s if total(s, "storagenode_log_lines_total", node="bad") + total(
            s, "storagenode_log_unparsed_lines_total", node="bad") == len(lines) else None

    samples = wait_for(caught_up, timeout=20, what="every line of the poisoned log")
    time.sleep(1.0)  # nothing is read twice afterwards
    samples = proc.samples()
    assert_sane(samples)
    assert transfers_by_label(samples, "bad") == expected
    assert total(samples, "storagenode_ingress_bytes_total", node="bad") + total(
        samples, "storagenode_egress_bytes_total", node="bad") == good_bytes
    assert total(samples, "storagenode_transfers_total", node="ok") == 1
    assert samples['storagenode_log_source_up{node="bad"}'] == 1.0
    logged = proc.stop()
    assert "Traceback" not in logged and "restarting the source" not in logged


def test_restart_with_absurd_values_in_the_state_file(tmp_path, exporter_process):
    """A state file holding 1e400, NaN and 400-digit counters (hand-crafted, or written by
    an exporter before this fix): the exporter starts, refuses those values with one log line
    and serves /metrics; the sane values continue."""
    log, state = tmp_path / "node.log", tmp_path / "state.json"
    log.write_text("".join(good(i)[0] + "\n" for i in range(6)))
    first = exporter_process("--node", f"n1:{log}", "--from-start", "--state-file", str(state))
    wait_for(lambda: total(first.samples(), "storagenode_transfers_total") == 6)
    first.stop()
    doc = json.loads(state.read_text())
    node = doc["nodes"]["n1"]
    sane_gets = sum(row[3] for row in node["transfers"] if row[1] == "GET")
    text = json.dumps(doc)
    # the PUT byte counters, the PUT size sum and the unparsed counter become absurd
    put_bytes = [row for row in node["bytes"] if row[1] == "PUT" and row[3]]
    assert put_bytes
    for row in put_bytes:
        old = json.dumps(row)
        text = text.replace(old, json.dumps(row[:3])[:-1] + f", {HUGE}]")
    put_sum = node["sizes"]["PUT"]["sum"]
    text = text.replace(f'"PUT": {{"counts": {json.dumps(node["sizes"]["PUT"]["counts"])}, '
                        f'"sum": {json.dumps(put_sum)}}}',
                        f'"PUT": {{"counts": {json.dumps(node["sizes"]["PUT"]["counts"])}, '
                        f'"sum": 1e400}}')
    text = text.replace('"unparsed": 0', '"unparsed": NaN')
    assert text.count(HUGE) == len(put_bytes) and "1e400" in text and "NaN" in text
    state.write_text(text)

    second = exporter_process("--node", f"n1:{log}", "--state-file", str(state))
    samples = second.samples()  # 200, or this raises
    assert_sane(samples)
    assert total(samples, "storagenode_transfers_total", action="GET") == sane_gets
    assert total(samples, "storagenode_ingress_bytes_total") == 0  # refused, start over
    logged = second.stop()
    refusals = [x for x in logged.splitlines() if "refused" in x]
    assert len(refusals) == 1, logged
    assert "Traceback" not in logged and "unusable" not in logged


# ---- label bounds ---------------------------------------------------------------------------


def fuzzed_satellite(rng: random.Random) -> str:
    """Junk where a satellite ID goes: random bytes, NULs, invalid UTF-8, near-miss IDs."""
    kind = rng.randrange(5)
    if kind == 0:  # random bytes, as the splitter decodes them
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        return raw.replace(b'"', b"").replace(b"\n", b"").replace(b"\t", b"").decode(
            "utf-8", "surrogateescape")
    if kind == 1:  # a real ID with one character changed (checksum wrong)
        real = list(rng.choice(list(KNOWN)))
        real[rng.randrange(len(real))] = rng.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
        return "".join(real)
    if kind == 2:  # base58 of the right length, no checksum
        return "1" + "".join(rng.choice("123456789abcdefghijkmnopqrstuvwxyz") for _ in range(50))
    if kind == 3:
        return rng.choice(list(KNOWN)) + "\x00" * rng.randint(1, 3)
    return rng.choice(list(KNOWN))


def test_a_fuzzed_log_gives_a_handful_of_satellite_labels(tmp_path):
    """Thousands of lines with junk satellite IDs through the real `report`: the satellite
    label values are the known ones and `invalid`."""
    rng = random.Random(12)
    lines = []
    for i in range(6000):
        sat = fuzzed_satellite(rng)
        lines.append(up(str(1000 + i), sat=sat, title=i % 2 == 0) if i % 3 else
                     down(str(1000 + i), sat=sat))
    log = tmp_path / "fuzz.log"
    log.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    for pure in (False, True):
        result = run_report(log, pure)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        samples = parse_exposition(result.stdout.decode("utf-8", "replace"))
        labels = {k.split('satellite="', 1)[1].split('"', 1)[0] for k in samples
                  if k.startswith("storagenode_transfers_total{")}
        assert labels <= {*KNOWN.values(), INVALID}, labels
        assert INVALID in labels
        assert total(samples, "storagenode_transfers_total") == 6000


def test_distinct_satellites_per_node_are_bounded():
    """Well-formed node IDs (checksums right) beyond MAX_SATELLITES go under `overflow`, the
    same on every path."""
    rng = random.Random(5)
    ids = [encode_node_id(rng.randbytes(32)) for _ in range(MAX_SATELLITES + 40)]
    lines = [up(str(100 + i), sat=ids[i % len(ids)]) for i in range(3 * len(ids))]
    states = []
    for native in (False, True) if NATIVE_SCAN else (False,):
        state = NodeState("n", native=native)
        state.feed(lines, None)
        states.append((state.transfers, state.bytes))
    assert all(s == states[0] for s in states)
    sats = {key[0] for key in states[0][0]}
    assert len(sats) == MAX_SATELLITES + 1 and OVERFLOW in sats
    assert sum(states[0][0].values()) == len(lines)


def test_top_pieces_show_only_piece_ids():
    state = NodeState("n")
    junk = ["x\x00y", "short", "A" * 60, "not base32 0189 " + "A" * 36]
    lines = [down("10").replace(PIECE, p) for p in [*junk, PIECE] for _ in range(3)]
    state.feed(lines, None)
    assert state.snapshot()["top_pieces"] == [(PIECE, 3)]


# ---- defence in depth -----------------------------------------------------------------------


class Exploding(NodeState):
    """A NodeState whose parse of one marker line raises, as a bug would."""

    def _line(self, line, read_time):
        if "EXPLODE" in line:
            raise RuntimeError("a bug")
        return super()._line(line, read_time)

    def apply(self, event, read_time):
        if event[0] == 0 and event[8] == "B" * 52:
            raise RuntimeError("a bug in apply")
        return super().apply(event, read_time)


@pytest.mark.parametrize("native", [False, *([True] if NATIVE_SCAN else [])])
def test_a_line_that_raises_costs_only_itself(native):
    state = Exploding("n", native=native)
    lines = [good(i)[0] for i in range(10)]
    lines[3] = "EXPLODE"
    lines[6] = down("5", msg="download failed", level="ERROR", extra=', "error": "x"').replace(
        PIECE, "B" * 52)
    state.feed(lines, None)
    state.feed_block("\n".join(lines).encode(), None)
    assert sum(state.transfers.values()) == 2 * 8
    assert state.unparsed == 2 * 2
    assert sum(state.lines.values()) == 2 * 8


def test_runner_resumes_after_a_source_failure_without_reading_twice(tmp_path):
    """A bug in the source ends its generator: the runner restarts it from the position of
    the last applied batch, not from the start of the file."""
    from exporter.runner import NodeRunner
    from logstream.file import FileSource

    log = tmp_path / "node.log"
    log.write_text("".join(good(i)[0] + "\n" for i in range(5)))

    class Flaky(FileSource):
        failed = False

        def make_batch(self, lines):
            if not Flaky.failed and any("EXPLODE" in x for x in lines):
                Flaky.failed = True
                raise RuntimeError("a bug in the source")
            return super().make_batch(lines)

    source = Flaky(str(log), from_start=True, watch=False, poll_interval=0.02)
    state = NodeState("n")
    runner = NodeRunner("n", source, state)
    runner.retry_delay = 0.05
    runner.start()
    try:
        wait_for(lambda: sum(state.transfers.values()) == 5, timeout=10)
        with open(log, "a") as fh:
            fh.write("EXPLODE\n" + "".join(good(i)[0] + "\n" for i in range(5, 9)))
        wait_for(lambda: sum(state.transfers.values()) >= 9, timeout=10, what="the rest")
        time.sleep(0.3)
        assert Flaky.failed
        assert sum(state.transfers.values()) == 9
        assert state.unparsed == 1
    finally:
        runner.stop()


def test_one_node_that_cannot_be_rendered_does_not_fail_the_scrape(caplog):
    """Defence in depth: an absurd value in one node's state (put there directly) drops that
    node's block with one log line; the other nodes are served."""
    from prometheus_client import CollectorRegistry, generate_latest

    from exporter.collector import LogCollector
    from exporter.runner import NodeRunner
    from logstream.source import Source

    runners = []
    for name in ("bad", "good"):
        state = NodeState(name)
        state.feed([good(1)[0]], None)
        runners.append(NodeRunner(name, Source(), state))
    key = next(k for k, v in runners[0].state.bytes.items() if v)
    runners[0].state.bytes[key] = int(HUGE)
    runners[0].state.sizes["PUT"].sum = float("inf")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LogCollector(runners))
    for _ in range(3):  # one log line, not one per scrape
        text = generate_latest(registry).decode()
    samples = parse_exposition(text)
    assert total(samples, "storagenode_transfers_total", node="good") == 1
    assert total(samples, "storagenode_transfers_total", node="bad") == 0
    assert len([r for r in caplog.records if "node bad" in r.getMessage()]) == 1


def test_checkpoint_refuses_absurd_values_on_save_and_load():
    from exporter.statefile import capture, decode, encode

    state = NodeState("n")
    state.feed([good(i)[0] for i in range(4)], None)
    state.bytes[next(k for k, v in state.bytes.items() if v)] = int(HUGE)
    state.sizes["GET"].sum = float("nan")
    data = encode(capture(state))
    assert int(HUGE) not in [row[3] for row in data["bytes"]]
    assert all(math.isfinite(h["sum"]) for h in data["sizes"].values())
    data["transfers"].append([US1, "PUT", "failed", 1e400])
    data["transfers"].append(["junk\x00", "PUT", "failed", 3])
    data["unparsed"] = -4
    data["top_pieces"]["capacity"] = 10**12
    data["pending"].append([PIECE, "GET", "1.2.3.4:5", float("inf")])
    saved = decode("n", json.loads(json.dumps(data)))
    v = saved.values
    assert (US1, "PUT", "failed") not in v["transfers"] or v["transfers"][
        (US1, "PUT", "failed")] < 10
    assert v["transfers"][(INVALID, "PUT", "failed")] == 3
    assert v["unparsed"] == 0 and v["top_capacity"] <= 100_000 and not v["pending"]
    assert len(saved.notes) == 1 and "refused" in saved.notes[0]


def test_concurrent_scrapes_while_poison_is_fed():
    """Scrapes during feeding of poison lines never raise."""
    from exporter.report import exposition
    from exporter.runner import NodeRunner
    from logstream.source import Source

    state = NodeState("n")
    runner = NodeRunner("n", Source(), state)
    data = poisoned_log()[0].decode("utf-8", "surrogateescape").split("\n")[:-1]
    errors: list[BaseException] = []

    def scrape():
        for _ in range(20):
            try:
                exposition([runner])
            except BaseException as exc:  # the test reports it
                errors.append(exc)

    thread = threading.Thread(target=scrape)
    thread.start()
    for _ in range(20):
        with state.lock:
            state.feed(data, None)
    thread.join(30)
    assert not errors
