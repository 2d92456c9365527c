"""The C geo path (exporter/hotpath/geo.c) against GeoRecorder.record in pure Python.

geo.c answers public IPv4 hosts from the locator's network answers and everything else from
the host cache (promoting from the old generation, rotating it as Python does); what it does
not know goes to record(). The window, the private hosts and the node's counters must be the
same as Python builds them, with the real demo database (exporter/data/demo-geoip.mmdb) and
a database with networks narrower than /24.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from exporter.geo.locator import _PRIVATE_NETS, GeoLocator
from exporter.geo.recorder import GeoRecorder
from exporter.simulate.loggen import LogGenerator
from exporter.state import NATIVE_SCAN, NodeState

from .test_geo import write_geoip2_city
from .test_hotpath import everything

T0 = 1_780_000_000.0
DEMO_DB = str(Path(__file__).parent.parent / "exporter" / "data" / "demo-geoip.mmdb")
REMOTE = re.compile(r'("Remote Address": ")[^"]*(")')

pytestmark = pytest.mark.skipif(NATIVE_SCAN is None, reason="exporter._hotpath is not built")

#: hosts the C path must leave to Python, or read the way Python reads them
ODD = ["[2001:db8::7]:4000", "[::ffff:198.18.1.9]:5", "[fe80::1]:9", "[::1]:80",
       "2001:db8::1", "[2001:db8::2]", "01.2.3.4:5", "1.2.3.4", "256.1.1.1:80", "1.2.3:80",
       "1.2.3.4.5:6", "localhost:80", ":80", "1.2.3.4:", "198.18.1.010:7", "[1.2.3.4]:8"]
PRIVATE = ["10.1.2.3:1", "172.17.0.1:2", "192.168.1.1:3", "100.64.0.9:4", "127.0.0.1:5",
           "169.254.3.3:6"]


class CountingRecorder(GeoRecorder):
    """Counts the calls that reach Python's record()."""

    calls = 0

    def record(self, *args, **kw):
        self.calls += 1
        super().record(*args, **kw)


def pool(rng: random.Random, n_public: int) -> list[str]:
    out = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}."
           f"{rng.randrange(256)}:{rng.randrange(1, 65536)}" for _ in range(n_public)]
    out += [f"198.18.{rng.randrange(1, 120)}.{rng.randrange(256)}:{rng.randrange(1, 65536)}"
            for _ in range(n_public // 4)]
    out += [f"[2001:db8::{i:x}]:{1000 + i}" for i in range(n_public // 8)]
    return out + ODD + PRIVATE


def log_lines(seed: int, n: int, addresses: list[str], in_turn: bool = False) -> list[str]:
    """Generated v1.99 lines whose remote addresses come from `addresses`: in turn, or skewed
    so that some peers come back (across cache generations) and most are seen once."""
    rng = random.Random(seed)
    gen = LogGenerator(era="v1.99", seed=seed)
    turn = iter(range(10**9))

    def pick(m: re.Match) -> str:
        i = next(turn) % len(addresses) if in_turn else int(len(addresses) * rng.random() ** 2)
        return m.group(1) + addresses[i] + m.group(2)

    return [REMOTE.sub(pick, x.rstrip("\n")) for x in gen.lines(n, T0)]


def run(lines: list[str], native: bool, *, db: str = DEMO_DB, cache_size: int = 64,
        clock: str = "read-time", batch: int = 300, max_keys: int = 1000):
    """Feed `lines` in batches 7 s apart (several per 10 s slot, more than a window)."""
    now = [T0]
    locator = GeoLocator(db, cache_size=cache_size)
    kw = {"max_keys": max_keys, "node": "n"}
    if clock == "time.time":  # one slot for the whole run: real time cannot cross it
        recorder = CountingRecorder(locator, window_seconds=1e9, slots=1, clock=time.time, **kw)
    else:
        recorder = CountingRecorder(locator, clock=lambda: now[0], **kw)
    state = NodeState("n", geo=recorder, native=native)
    for i in range(0, len(lines), batch):
        now[0] = T0 + 7.0 * (i // batch)
        state.feed(lines[i : i + batch], now[0] if clock == "read-time" else None)
    at = time.time() if clock == "time.time" else now[0]
    result = (recorder.snapshot(at), recorder.overflowed, dict(recorder._cur_private),
              dict(recorder._closed_private), everything(state))
    return result, recorder, locator


def assert_same(lines: list[str], **kw) -> tuple[GeoRecorder, GeoRecorder]:
    python, py_recorder, _ = run(lines, False, **kw)
    native, c_recorder, locator = run(lines, True, **kw)
    assert python[0][0], "no geo buckets at all: the test would prove nothing"
    assert native == python
    # what the C path put in the host cache is what Python answers for the host
    fresh = GeoLocator(kw.get("db", DEMO_DB))
    for host, bucket in [*locator.cache.items(), *locator._old.items()]:
        answer = fresh.lookup(host)
        assert (bucket.country, bucket.geohash) == (answer.country, answer.geohash), host
    assert len(locator.cache) <= locator._generation
    return py_recorder, c_recorder


@pytest.mark.parametrize("clock", ["read-time", "recorder-clock", "time.time"])
def test_many_distinct_peers_agree_with_python(clock):
    """Thousands of peers, most seen once: public (mostly not in the database), demo networks,
    IPv6, private, odd spellings; a 64-entry host cache turns over many times."""
    addresses = pool(random.Random(1), 3000)
    assert_same(log_lines(2, 12_000, addresses), clock=clock)


def test_new_public_peers_stay_in_c():
    """A public IPv4 peer seen for the first time costs no call into Python once its network
    is known (there was one call per new peer before)."""
    rng = random.Random(6)
    addresses = [f"{rng.randrange(1, 10)}.{rng.randrange(256)}.{rng.randrange(256)}.1:1"
                 for _ in range(5000)]
    lines = log_lines(7, 6000, addresses, in_turn=True)
    python, py_recorder, _ = run(lines, False, batch=6000, cache_size=65536)
    native, c_recorder, _ = run(lines, True, batch=6000, cache_size=65536)
    assert native == python
    assert py_recorder.calls > 2000
    assert c_recorder.calls < 50, c_recorder.calls


def test_narrow_networks_and_overflow_agree_with_python(tmp_path):
    """Networks narrower than /24 are not cached per network: their hosts go through the host
    cache (old generation promoted in C); a small max_keys sends transfers to overflow."""
    rng = random.Random(3)
    places = {f"203.0.{i}.{j * 32}/27": (cc, 10.0 * (i % 8), 20.0 * j - 60)
              for i, cc in enumerate(["DE", "US", "JP", "BR"]) for j in range(8)}
    places["198.51.100.0/24"] = ("FR", 48.85, 2.35)
    places["192.0.0.0/8"] = ("NL", 52.37, 4.9)  # wider than /24, around 192.168/16
    db = write_geoip2_city(tmp_path / "narrow.mmdb", places)
    hosts = [f"203.0.{rng.randrange(4)}.{rng.randrange(256)}:{rng.randrange(1, 65536)}"
             for _ in range(600)]
    hosts += [f"198.51.100.{i}:1" for i in range(256)]
    hosts += [f"192.{rng.randrange(256)}.{rng.randrange(256)}.1:2" for _ in range(200)]
    lines = log_lines(4, 8000, hosts + pool(rng, 300))
    for cache_size in (16, 4096):
        assert_same(lines, db=db, cache_size=cache_size, max_keys=40)


def _edges() -> list[str]:
    """Both ends of every private IPv4 network and the public addresses next to them, each
    public neighbour first (so a wrong private check in C would find its network answer)."""
    out = []
    for net in _PRIVATE_NETS:
        if net.version != 4:
            continue
        first, last = int(net.network_address), int(net.broadcast_address)
        for outside, inside in ((first - 1, first), (last + 1, last)):
            for n in (outside, inside, outside, inside):
                out.append(f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}:1")
    return out


def test_private_network_edges_agree_with_python():
    edges = _edges()
    lines = log_lines(5, 3000, edges, in_turn=True)
    python, _, _ = run(lines, False, batch=3000)
    native, _, _ = run(lines, True, batch=3000)
    assert python[2], "no private hosts counted: the test would prove nothing"
    assert native == python


def test_host_cache_generations_are_the_ones_python_keeps(tmp_path):
    """For hosts no network answer covers (IPv6, networks narrower than /24) C promotes from
    the old generation and rotates the young one exactly as GeoLocator.lookup_miss does."""
    rng = random.Random(8)
    db = write_geoip2_city(tmp_path / "narrow.mmdb", {"203.0.113.0/28": ("DE", 50.1, 8.7)})
    hosts = [f"[2001:db8::{rng.randrange(400):x}]:{i}" for i in range(300)]
    hosts += [f"203.0.113.{rng.randrange(64)}:{i}" for i in range(300)]
    lines = log_lines(9, 6000, hosts)
    caches = []
    for native in (False, True):
        result, _, locator = run(lines, native, db=db, cache_size=16)
        caches.append((result, list(locator.cache), list(locator._old), locator.misses))
    assert caches[1] == caches[0]
    assert caches[0][3] > 200, "few misses: the generations did not turn over"


def test_private_peers_agree_with_python():
    """Behind Docker's userland proxy every peer is 172.17.0.1: C counts it (no call into
    Python per transfer); past 32 private hosts in a slot the rest count as "*"."""
    lines = log_lines(10, 4000, ["172.17.0.1:1"])
    python, py_recorder, _ = run(lines, False, batch=4000)
    native, c_recorder, _ = run(lines, True, batch=4000)
    assert native == python
    assert python[0][2], "the proxy was not suspected: the test would prove nothing"
    assert c_recorder.calls < py_recorder.calls / 20, (c_recorder.calls, py_recorder.calls)
    many = [f"10.0.{i}.1:{i}" for i in range(40)] + ["192.168.1.1:2", "8.8.8.8:3"]
    lines = log_lines(11, 6000, many)
    python, _, _ = run(lines, False)
    native, _, _ = run(lines, True)
    assert "*" in python[3], "fewer than 32 private hosts in a slot"
    assert native == python


def test_dotted_quads_are_read_as_python_reads_them():
    """Spellings of an address in a demo network (198.18.0.0/15) that socket.inet_pton
    refuses or reads otherwise: leading zeros, octets over 255, four digits, missing or extra
    parts. Read as another address by the C path, they would land in a located bucket where
    Python counts them unknown."""
    good = ["198.18.1.9", "198.18.1.99", "198.18.1.199", "198.18.0.0", "198.19.255.255"]
    bad = ["198.18.1.09", "198.18.1.010", "198.018.1.9", "0198.18.1.9", "198.18.1.256",
           "198.18.1.999", "198.18.256.1", "198.18.1.1000", "198.18.1", "198.18.1.9.1",
           "198.18..9", "198.18.1.", ".198.18.1.9", "198.18.1.+9", "198.18.1.9a", "198.18.1. 9"]
    addresses = [f"{host}:{port}" for port, host in enumerate(good + bad, 1000)]
    python, _, _ = run(log_lines(9, 3000, addresses, in_turn=True), False)
    native, _, _ = run(log_lines(9, 3000, addresses, in_turn=True), True)
    assert native == python
    countries = {key[2] for key in python[0][0]}
    assert "unknown" in countries and len(countries) > 1, countries
