"""The synthetic log generator: byte-exact layout per era, determinism, pairing, counts."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from exporter.parser import parse_line
from exporter.simulate.loggen import ERAS, SATELLITES, LogGenerator, counts_json, write_file
from exporter.state import NodeState
from tests.conftest import ROOT

START = 1_700_000_000.0
SAT_IDS = {sat_id for _, sat_id in SATELLITES}
TS_RE = {
    "v1.76": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0200$"),
    "v1.80": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"),
    "v1.99": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
    "v1.120": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
    "v1.146": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"),
}
PROCESS_KEY = {"v1.76": "Process", "v1.80": "process", "v1.99": "process",
               "v1.120": "Process", "v1.146": "process"}
STARTED_LEVEL = {"v1.76": "INFO", "v1.80": "INFO", "v1.99": "INFO", "v1.120": "DEBUG",
                 "v1.146": "DEBUG"}
FINISH = {
    "uploaded": "success", "upload canceled": "canceled", "upload failed": "failed",
    "downloaded": "success", "download canceled": "canceled", "download failed": "failed",
    "download canceled (race lost or node shutdown)": "canceled",
}
N = 10_000


def split(line: str) -> tuple[str, str, str | None, str, str]:
    """(timestamp, level, logger or None, message, fields) of one generated line."""
    assert line.endswith("\n") and "\r" not in line and line.count("\n") == 1
    parts = line[:-1].split("\t")
    if len(parts) == 5:
        return parts[0], parts[1], parts[2], parts[3], parts[4]
    assert len(parts) == 4, parts
    return parts[0], parts[1], None, parts[2], parts[3]


def transfer_keys(era: str) -> dict[str, str]:
    if era == "v1.146":
        return dict(piece="piece_id", sat="satellite_id", action="action", offset="offset",
                    size="size", remote="remote_address", avail="available_space")
    return dict(piece="Piece ID", sat="Satellite ID", action="Action", offset="Offset",
                size="Size", remote="Remote Address", avail="Available Space")


@pytest.fixture(scope="module", params=sorted(ERAS))
def era_lines(request) -> tuple[str, list[str]]:
    gen = LogGenerator(era=request.param, seed=7, started=True)
    return request.param, list(gen.lines(N, start=START))


def test_same_seed_same_bytes_other_seed_other_bytes():
    for era in ERAS:
        a = "".join(LogGenerator(era=era, seed=3).lines(1000, start=START))
        b = "".join(LogGenerator(era=era, seed=3).lines(1000, start=START))
        c = "".join(LogGenerator(era=era, seed=4).lines(1000, start=START))
        assert a == b
        assert a != c
    # Chunked consumption gives the same stream as one call.
    gen = LogGenerator(era="v1.99", seed=3)
    chunked = "".join(gen.lines(700, start=START)) + "".join(gen.lines(1300))
    assert chunked == "".join(LogGenerator(era="v1.99", seed=3).lines(2000, start=START))


def test_layout_and_key_style(era_lines):
    era, lines = era_lines
    keys = transfer_keys(era)
    levels = set()
    loggers = set()
    for line in lines:
        ts, level, logger, message, fields = split(line)
        assert TS_RE[era].match(ts), ts
        assert level in {"DEBUG", "INFO", "WARN", "ERROR"}
        levels.add(level)
        loggers.add(logger)
        data = json.loads(fields)
        if fields.count('"process"') < 2:  # lazyfilewalker subprocess lines repeat `process`
            # separators ", " and ": ", key order as written, nothing else in between; the
            # hashstore's `stats` (last) is marshalled by encoding/json inside zap: compact
            stats = data.pop("stats", None)
            text = json.dumps(data)
            if stats is not None:
                text = f'{text[:-1]}, "stats": {json.dumps(stats, separators=(",", ":"))}}}'
            assert text == fields
        first_key = next(iter(data))
        if logger is None:  # updater lines have no logger column
            assert message in {"Downloading versions.", "Current binary version",
                               "Version is up to date"}
            assert data[PROCESS_KEY[era]] == "storagenode-updater"
        else:
            assert first_key == PROCESS_KEY[era] and data[first_key] == "storagenode"
        if era == "v1.146":
            assert all(k in ("errorVerbose",) or re.fullmatch(r"[a-z_]+", k) for k in data), data
        if logger == "piecestore" and (message in FINISH or message.endswith(" started")):
            assert re.fullmatch(r"[A-Z2-7]{51}[AQ]", data[keys["piece"]])
            assert data[keys["sat"]] in SAT_IDS
            ipaddress.IPv4Address(data[keys["remote"]].rsplit(":", 1)[0])
    assert None in loggers and "piecestore" in loggers and "orders" in loggers


def test_field_order_per_era(era_lines):
    era, lines = era_lines
    k = transfer_keys(era)
    p = PROCESS_KEY[era]
    head = [p, k["piece"], k["sat"], k["action"]]
    download = [*head, k["offset"], k["size"], k["remote"]]
    seen = set()
    for line in lines:
        _, level, logger, message, fields = split(line)
        if logger != "piecestore":
            continue
        order = list(json.loads(fields))
        if message == "upload started":
            assert level == STARTED_LEVEL[era]
            assert order == [*head, k["remote"], k["avail"]]
        elif message == "download started":
            assert level == STARTED_LEVEL[era]
            assert order == download
        elif message in ("uploaded", "upload canceled"):
            old = era in ("v1.76", "v1.80")
            assert order == ([*head, k["size"], k["remote"]] if old
                             else [*head, k["remote"], k["size"]])
        elif message == "upload failed":
            if era in ("v1.76", "v1.80"):
                assert order == [*head, "error", "errorVerbose", k["size"], k["remote"]]
            else:
                assert order == [*head, k["remote"], k["size"], "error", "errorVerbose"]
        elif message in ("downloaded", "download canceled (race lost or node shutdown)"):
            assert order == download
        elif message == "download canceled":
            with_reason = era in ("v1.120", "v1.146")
            assert order == ([*download, "reason"] if with_reason else download)
        elif message == "download failed":
            assert order == [*download, "error", "errorVerbose"]
        else:
            continue
        seen.add(message)
    assert {"upload started", "download started", "uploaded", "upload canceled",
            "upload failed", "downloaded", "download canceled", "download failed"} <= seen


def test_levels_of_failures_per_era(era_lines):
    era, lines = era_lines
    upload_failed = {split(x)[1] for x in lines if "\tupload failed\t" in x}
    download_failed = {split(x)[1] for x in lines if "\tdownload failed\t" in x}
    assert download_failed == {"ERROR"}
    required, allowed = {
        "v1.76": ({"ERROR"}, {"ERROR"}),
        "v1.80": ({"ERROR"}, {"ERROR"}),
        "v1.99": ({"ERROR"}, {"ERROR"}),  # EOF failures are DEBUG, hidden at log.level info
        "v1.120": ({"ERROR", "DEBUG"}, {"ERROR", "DEBUG"}),
        "v1.146": ({"DEBUG", "WARN"}, {"ERROR", "DEBUG", "WARN"}),  # disconnects are WARN
    }[era]
    assert required <= upload_failed <= allowed
    rejected = {split(x)[1] for x in lines if "upload rejected, too many requests" in x}
    assert rejected == ({"INFO"} if era == "v1.146" else {"ERROR"})


def test_started_and_finished_lines_match(era_lines):
    era, lines = era_lines
    k = transfer_keys(era)
    open_: dict[tuple, dict] = {}
    most_in_flight = finished = 0
    for line in lines:
        ts, _, logger, message, fields = split(line)
        if logger != "piecestore":
            continue
        data = json.loads(fields)
        if k["piece"] not in data:
            continue
        key = (data[k["piece"]], data[k["action"]], data[k["remote"]])
        if message.endswith(" started"):
            assert key not in open_
            open_[key] = {**data, "_ts": ts}
            most_in_flight = max(most_in_flight, len(open_))
            continue
        assert message in FINISH
        start = open_.pop(key)  # every finished line has its started line before it
        assert start["_ts"] <= ts
        assert start[k["sat"]] == data[k["sat"]]
        if message.startswith("download") and era not in ("v1.76", "v1.80"):
            assert (start[k["offset"]], start[k["size"]]) == (data[k["offset"]], data[k["size"]])
        if message.startswith("upload"):
            assert data[k["size"]] <= 2_319_360
        finished += 1
    assert finished > N // 3
    assert most_in_flight >= 5  # transfers overlap


def test_no_started_lines_when_asked():
    for era in ERAS:
        lines = list(LogGenerator(era=era, seed=1, started=False).lines(1500, start=START))
        assert not any(" started\t{" in x and "\tpiecestore\t" in x for x in lines)
        assert not any("\tDEBUG\t" in x for x in lines)  # node runs at log.level info


def test_exact_counts_for_a_fixed_seed():
    gen = LogGenerator(era="v1.146", seed=42)
    lines = list(gen.lines(10_000, start=START))
    # 13 of the 10,000 lines are hashstore/amnesty lines (loggen/hashstore.py, their own
    # random stream): the same transfers as before them, the last few pushed past the end.
    assert gen.transfer_counts() == {
        ("GET", "success"): 1961, ("GET", "canceled"): 156, ("GET", "failed"): 42,
        ("PUT", "success"): 1552, ("PUT", "canceled"): 268, ("PUT", "failed"): 43,
        ("GET_REPAIR", "success"): 356, ("GET_REPAIR", "canceled"): 3,
        ("GET_REPAIR", "failed"): 20,
        ("PUT_REPAIR", "success"): 211, ("PUT_REPAIR", "canceled"): 28,
        ("PUT_REPAIR", "failed"): 3,
        ("GET_AUDIT", "success"): 198, ("GET_AUDIT", "canceled"): 1, ("GET_AUDIT", "failed"): 1,
    }
    # The counts agree with the lines themselves.
    by_result: dict[tuple[str, str], int] = {}
    for line in lines:
        _, _, logger, message, fields = split(line)
        if logger == "piecestore" and message in FINISH:
            key = (json.loads(fields)["action"], FINISH[message])
            by_result[key] = by_result.get(key, 0) + 1
    assert by_result == gen.transfer_counts()
    levels: dict[str, int] = {}
    for line in lines:
        level = split(line)[1].lower()
        levels[level] = levels.get(level, 0) + 1
    assert levels == gen.line_counts() and sum(levels.values()) == 10_000
    assert sum(gen.started_counts().values()) == sum(
        1 for x in lines if "\tupload started\t" in x or "\tdownload started\t" in x)


def test_mix_of_actions_satellites_and_other_events():
    gen = LogGenerator(era="v1.99", seed=5, started=False)
    for _ in gen.lines(25_000, start=START):
        pass
    counts = gen.transfer_counts(by_satellite=True)
    total = sum(counts.values())
    share = {}
    for (sat, action, _), n in counts.items():
        share[action] = share.get(action, 0) + n / total
        share[sat] = share.get(sat, 0) + n / total
    for name, want in (("GET", 0.45), ("PUT", 0.38), ("GET_REPAIR", 0.08),
                       ("PUT_REPAIR", 0.05), ("GET_AUDIT", 0.04), ("us1", 0.45),
                       ("eu1", 0.30), ("ap1", 0.15), ("saltlake", 0.10)):
        assert abs(share[name] - want) < 0.015, (name, share[name])
    other = 25_000 - total
    assert 0.02 < other / 25_000 < 0.04
    events = gen.event_counts()
    for name in ("orders_settled", "upload_rejected", "database_locked",
                 "ping_satellite_failed", "quic_misconfigured", "version_up_to_date",
                 "retain_started", "trash_empty_started", "used_space_filewalker_started"):
        assert events.get(name, 0) > 0, name


def test_the_exporter_parser_counts_what_the_generator_wrote(era_lines):
    era, lines = era_lines
    gen = LogGenerator(era=era, seed=7, started=True)
    assert list(gen.lines(N, start=START)) == lines
    state = NodeState("t")
    state.feed([x[:-1] for x in lines], None)
    snap = state.snapshot()
    assert snap["unparsed"] == 0
    got: dict[tuple[str, str], int] = {}
    for (_, action, result), n in snap["transfers"].items():
        if n:
            got[(action, result)] = got.get((action, result), 0) + n
    assert got == gen.transfer_counts()
    assert snap["lines"] == gen.line_counts()
    events = {k: v for k, v in snap["events"].items() if v}
    assert events == gen.event_counts()
    assert all(parse_line(x[:-1]) is not None for x in lines[:200])


def test_tick_writes_about_rate_lines_stamped_now():
    gen = LogGenerator(era="v1.146", seed=9)
    total = 0
    for i in range(20):
        now = START + i
        batch = gen.tick(now, 500)
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert all(x.startswith(stamp + "\t") for x in batch)
        total += len(batch)
    assert 8000 <= total <= 12000
    # A pause (the demo stopped for a minute) does not burst out a minute of lines.
    after_pause = gen.tick(START + 80, 500)
    assert 100 < len(after_pause) < 1500
    assert sum(gen.line_counts().values()) == total + len(after_pause)
    # Same seed, same calls: same lines.
    again = LogGenerator(era="v1.146", seed=9)
    assert again.tick(START, 500) == LogGenerator(era="v1.146", seed=9).tick(START, 500)


def test_remote_networks_and_public_default():
    nets = [ipaddress.IPv4Network("203.0.113.0/24"), ipaddress.IPv4Network("198.51.100.0/25")]
    gen = LogGenerator(era="v1.146", seed=2, remote_networks=[str(n) for n in nets])
    hits = {n: 0 for n in nets}
    for line in gen.lines(3000, start=START):
        m = re.search(r'"remote_address": "([\d.]+):(\d+)"', line)
        if m:
            ip = ipaddress.IPv4Address(m.group(1))
            net = next(n for n in nets if ip in n)
            hits[net] += 1
            assert 1024 <= int(m.group(2)) <= 65535
    assert all(n > 500 for n in hits.values())  # uniform over the list
    for line in LogGenerator(era="v1.146", seed=2).lines(3000, start=START):
        m = re.search(r'"remote_address": "([\d.]+):\d+"', line)
        if m:
            assert ipaddress.IPv4Address(m.group(1)).is_global, m.group(1)


def test_cli_writes_the_same_bytes_as_write_file(tmp_path):
    out, counts = tmp_path / "cli.log", tmp_path / "counts.json"
    subprocess.run(
        [sys.executable, "-m", "exporter.simulate.loggen", "--era", "v1.99", "--lines", "3000",
         "--seed", "11", "--counts", str(counts), str(out)],
        cwd=ROOT, check=True, timeout=60,
    )
    gen = write_file(str(tmp_path / "api.log"), 3000, era="v1.99", seed=11)
    assert out.read_bytes() == (tmp_path / "api.log").read_bytes()
    assert out.read_text().count("\n") == 3000
    assert json.loads(counts.read_text()) == json.loads(json.dumps(counts_json(gen)))


def _peers_seen(gen: LogGenerator, lines: int) -> set[str]:
    seen = set()
    for line in gen.lines(lines, start=START):
        m = re.search(r'"Remote Address": "([\d.]+):\d+"', line)
        if m:
            seen.add(m.group(1))
    return seen


def test_peers_sets_the_number_of_distinct_addresses():
    """The many-peer GeoIP benchmark needs more than the default pool of 4,096 clients."""
    default = _peers_seen(LogGenerator(era="v1.99", seed=4), 40_000)
    assert 3_000 < len(default) <= 4096
    many = _peers_seen(LogGenerator(era="v1.99", seed=4, peers=1_000_000), 40_000)
    assert len(many) > 15_000  # ~20k finished transfers, nearly every one a new peer
    assert all(ipaddress.IPv4Address(ip).is_global for ip in many)
    assert len(_peers_seen(LogGenerator(era="v1.99", seed=4, peers=7), 5_000)) == 7
    with pytest.raises(ValueError):
        LogGenerator(peers=0)


def test_cli_peers_option(tmp_path):
    out = tmp_path / "peers.log"
    subprocess.run(
        [sys.executable, "-m", "exporter.simulate.loggen", "--era", "v1.99", "--lines", "2000",
         "--peers", "100000", str(out)], cwd=ROOT, check=True, timeout=60,
    )
    gen = write_file(str(tmp_path / "api.log"), 2000, era="v1.99", peers=100_000)
    assert out.read_bytes() == (tmp_path / "api.log").read_bytes()
    assert len(_peers_seen(LogGenerator(era="v1.99", peers=100_000), 2000)) > 900
    assert gen.line_counts()
