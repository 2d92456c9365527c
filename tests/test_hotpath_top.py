"""TopPieces.counts in C (exporter._hotpath.TopCounts, exporter/hotpath/top.c) against the
pure Python TopPieces: the same counts in the same order for any sequence of adds, the same
top(), the same state after the C scan and after a checkpoint, and str keys of any text."""

from __future__ import annotations

import json
import random
import sys
from contextlib import nullcontext

import pytest

from exporter import statefile
from exporter.state import NATIVE_SCAN, NodeState
from exporter.tallies import NativeTopPieces, TopPieces
from tests.test_hotpath import KINDS, batched, everything, reference, via

pytestmark = pytest.mark.skipif(NATIVE_SCAN is None, reason="exporter._hotpath is not built")

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
LINE = ('2026-05-28T20:26:{s:02d}Z\tINFO\tpiecestore\tdownloaded\t{{"process": "storagenode", '
        '"Piece ID": "{piece}", "Satellite ID": '
        '"12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S", "Action": "{action}", '
        '"Offset": 0, "Size": 1024, "Remote Address": "1.2.3.4:5"}}')
#: keys a Python line may bring (parse_line takes any text), and near-misses of each other
ODD = ["", "é", "e\u0301", "\udcff", "\ud800\udc00", "\U00010000", "\x00", "a\x00b", "P" * 400,
       "ü" * 60, "a" * 52, "\u20ac" * 17, " ", "\t"]


def pieces(rng: random.Random, distinct: int) -> list[str]:
    out = ["".join(rng.choice(B32) for _ in range(52)) for _ in range(distinct)]
    return out + ODD


def test_random_sequences_give_the_same_counts_and_top():
    """Many more distinct pieces than the capacity (the decrement runs thousands of times),
    a few hot ones, skewed and uniform draws; compared in order after every few adds."""
    rng = random.Random(15)
    decrements = 0
    for capacity in (0, 1, 2, 7, 50, 1000):
        pool = pieces(rng, 3000)
        hot = pool[:5]
        c, py = NativeTopPieces(capacity), TopPieces(capacity)
        assert c.capacity == capacity
        for step in range(30_000):
            piece = rng.choice(hot) if rng.random() < 0.3 else rng.choice(pool)
            full = len(py.counts) >= capacity and piece not in py.counts
            decrements += full
            c.add(piece)
            py.add(piece)
            if step % 997 == 0 or (full and step % 7 == 0):
                assert c.counts.items() == list(py.counts.items()), (capacity, step)
        assert dict(c.counts) == py.counts and list(c.counts) == list(py.counts)
        assert len(c.counts) <= max(capacity, 0)
        for n in (0, 1, 3, 10, 10_000):
            assert c.top(n) == py.top(n)
    assert decrements > 20_000


def test_memory_stays_bounded_by_the_capacity():
    """add() never grows the table past its capacity, whatever it is fed: ten times more
    distinct pieces take no more memory; long keys are freed when they drop out."""
    rng = random.Random(19)
    sizes = []
    for n in (10_000, 100_000):
        top = NativeTopPieces(50)
        for i in range(n):
            top.add(rng.choice(["A" * 52, f"{i}" * (1 + i % 40)]))
        assert len(top.counts) <= 50
        sizes.append(sys.getsizeof(top.counts))
    assert sizes[1] <= sizes[0] + 50 * 400 and sizes[1] < 50_000


def test_the_mapping_behaves_as_the_dict_it_replaces():
    """The operations the checkpoint, the tests and the fuzz checks use, in any order."""
    rng = random.Random(16)
    keys = [*ODD, *map(str, range(30))]
    c_top, ref_top = NativeTopPieces(20), TopPieces(20)
    c, ref = c_top.counts, ref_top.counts
    for _ in range(20_000):
        key = rng.choice(keys)
        op = rng.randrange(6)
        if op == 4:  # add() on counts written from Python (as after a checkpoint)
            c_top.add(key)
            ref_top.add(key)
        if op == 0:
            c[key] = ref[key] = rng.choice([0, 1, 2, -3, 10**18, rng.randrange(100)])
        elif op == 1:
            assert (key in c) == (key in ref) and c.get(key) == ref.get(key)
            assert c.get(key, "d") == ref.get(key, "d")
            if key in ref:
                assert c[key] == ref[key]
                del c[key], ref[key]
        elif op == 2:
            with pytest.raises(KeyError) if key not in ref else nullcontext():
                assert c[key] == ref[key]
        elif op == 3:
            more = {rng.choice(keys): rng.randrange(5) for _ in range(3)}
            c.update(more if rng.random() < 0.5 else list(more.items()))
            ref.update(more)
        assert len(c) == len(ref) and c.items() == list(ref.items())
    assert c.keys() == list(ref) and c.values() == list(ref.values()) and dict(c) == ref
    assert list(iter(c)) == list(ref)
    c.clear()
    assert len(c) == 0 and not c and c.items() == [] and c.frequent() == []


def test_hostile_keys():
    """Any str is a key that comes back equal (non-ASCII, lone surrogates, NUL, a surrogate
    pair apart from the astral character it stands for); anything else is no key."""
    c = NativeTopPieces(len(ODD)).counts
    for i, key in enumerate(ODD):
        for _ in range(i + 1):
            c.add(key)
    assert c.items() == [(key, i + 1) for i, key in enumerate(ODD)]
    assert all(type(k) is str for k in c)
    for bad in (None, 1, b"a" * 52, ("a",), 1.5):
        assert bad not in c and c.get(bad, "d") == "d"
        with pytest.raises(KeyError):
            c[bad]
        with pytest.raises(KeyError):
            del c[bad]
        with pytest.raises(TypeError):
            c[bad] = 1
        with pytest.raises(TypeError):
            c.add(bad)
    for bad in (1.0, "1", None):
        with pytest.raises(TypeError):
            c["x"] = bad
    with pytest.raises(OverflowError):
        c["x"] = 2**63
    c["x"] = 2**63 - 1
    with pytest.raises(OverflowError):
        c.add("x")
    assert c["x"] == 2**63 - 1
    with pytest.raises(TypeError):
        c.capacity = "3"
    assert "TopCounts(" in repr(c)


def test_a_checkpoint_restores_the_same_table():
    """Save a native state mid-way, restore it into a native and a pure Python state and go
    on: the same counts (order too) as never stopping; the capacity comes back with them."""
    rng = random.Random(17)
    pool = pieces(rng, 400)
    lines = [LINE.format(s=i % 60, piece=rng.choice(pool[:400]), action="GET")
             for i in range(6000)]
    whole = NodeState("n", native=False)
    whole.top_pieces.capacity = 37
    whole.feed(lines, None)
    first = NodeState("n", native=True)
    first.top_pieces.capacity = 37
    first.feed(lines[:3000], None)
    with first.lock:
        data = json.loads(json.dumps(statefile.encode(statefile.capture(first))))
    for native in (True, False):
        again = NodeState("n", native=native)
        counts = again.top_pieces.counts
        statefile.restore(again, statefile.decode("n", data))
        assert again.top_pieces.counts is counts  # restored in place
        assert again.top_pieces.capacity == 37
        again.feed(lines[3000:], None)
        assert list(again.top_pieces.counts.items()) == list(whole.top_pieces.counts.items())
        assert again.top_pieces.top() == whole.top_pieces.top()


def test_a_checkpoint_cannot_hold_more_counts_than_the_capacity():
    """A state file with more counts than its capacity (edited, or saved with a capacity that
    is now refused) restores the largest of them: the table stays bounded."""
    state = NodeState("n", native=False)
    with state.lock:
        data = json.loads(json.dumps(statefile.encode(statefile.capture(state))))
    counts = {f"{i:052d}": i % 97 + 1 for i in range(5000)}
    data["top_pieces"] = {"capacity": 10, "counts": counts}
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    for native in (True, False):
        again = NodeState("n", native=native)
        statefile.restore(again, statefile.decode("n", data))
        assert sorted(again.top_pieces.counts.items(), key=lambda kv: (-kv[1], kv[0])) == (
            expected)


@pytest.mark.parametrize("kind", KINDS)
def test_the_scan_counts_as_top_pieces_add(kind):
    """GET lines through the C scan (and Python lines between: odd piece IDs, GET_REPAIR)
    with a small capacity, so that the decrement runs inside the scan many times."""
    rng = random.Random(18)
    pool = [p for p in pieces(rng, 300) if not any(0xD800 <= ord(ch) < 0xE000 for ch in p)]
    lines = [LINE.format(s=i % 60, piece=rng.choice(pool),
                         action=rng.choice(["GET", "GET", "GET", "GET_REPAIR"]))
             for i in range(8000)]
    ref = reference(lines, None)
    assert everything(via(kind, batched(lines, 500), None)) == everything(ref)
    ref = NodeState("n", native=False)
    ref.top_pieces.capacity = 5
    for line in lines:
        ref._line(line, None)
    assert 0 < len(ref.top_pieces.counts) <= 5
    for size in (1, 64, 8000):
        got = NodeState("n", native=kind != "python")
        got.top_pieces.capacity = 5
        for batch in batched(lines, size):
            if kind == "block":
                got.feed_block("\n".join(batch).encode(), None)
            else:
                got.feed(batch, None)
        assert everything(got) == everything(ref), size
        assert list(got.top_pieces.counts.items()) == list(ref.top_pieces.counts.items())
