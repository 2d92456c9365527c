"""exporter._hotpath.Pending keeps keys of up to BLOCK bytes in blocks of its own free list
and longer ones PyMem_Malloc'd (pending.c). Whatever the key's length, text or the table's
history of deletes, squeezes and growth, it must behave as the dict it replaces, through
the Python API and through the scan."""

from __future__ import annotations

import random

import pytest

from exporter.state import NATIVE_PENDING, NATIVE_SCAN
from tests.test_hotpath import batched, everything, reference, via

BLOCK = 80  # pending.c: key bytes = 1 (action) + 4 (piece length) + UTF-8 of piece + remote
ACTIONS = ["GET", "GET_AUDIT", "GET_REPAIR", "PUT", "PUT_REPAIR"]
T0 = 1_780_000_000.0
US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"

pytestmark = pytest.mark.skipif(NATIVE_SCAN is None, reason="exporter._hotpath is not built")


def key_size(key: tuple[str, str, str]) -> int:
    piece, _, remote = key
    return 5 + sum(len(s.encode("utf-8", "surrogatepass")) for s in (piece, remote))


def boundary_keys() -> list[tuple[str, str, str]]:
    """Keys of BLOCK - 2 .. BLOCK + 2 bytes (ASCII, 2-byte, 3-byte and surrogate text),
    an empty piece and remote, and long ones."""
    keys = []
    for size in range(BLOCK - 2, BLOCK + 3):
        body = size - 5
        keys.append(("P" * 52, "GET", "r" * (body - 52)))
        keys.append(("é" * ((body - 1) // 2), "PUT", "x" * (1 + (body - 1) % 2)))
        keys.append(("\udcff" * (body // 3), "GET_REPAIR", "y" * (body % 3)))
        keys.append(("", "GET_AUDIT", "€" * (body // 3) + "z" * (body % 3)))
    keys += [("", "PUT_REPAIR", ""), ("a" * 5000, "GET", "b"), ("c", "PUT", "ü" * 3000)]
    return keys


def test_boundary_keys_have_the_sizes_meant():
    sizes = {key_size(k) for k in boundary_keys()}
    assert set(range(BLOCK - 2, BLOCK + 3)) <= sizes and max(sizes) > 5000


def test_keys_around_the_block_size_behave_as_a_dict():
    """Every key comes back equal (keys/items/iteration), lookups of each find only itself,
    through put, overwrite (keeps its place), pop, del, get and expire."""
    keys = boundary_keys()
    rng = random.Random(3)
    table, ref = NATIVE_PENDING(), {}
    for step in range(30_000):
        key = rng.choice(keys)
        op = rng.randrange(5)
        if op < 2:
            table[key] = ref[key] = float(step)
        elif op == 2:
            assert table.pop(key, None) == ref.pop(key, None)
        elif op == 3:
            assert (key in table) == (key in ref) and table.get(key) == ref.get(key)
            if key in ref:
                assert table[key] == ref[key]
                del table[key], ref[key]
        elif step % 97 == 0:
            horizon = step - 200.0
            gone = [k[1] for k, w in ref.items() if not w >= horizon]
            ref = {k: w for k, w in ref.items() if w >= horizon}
            assert table.expire(horizon) == gone
        assert len(table) == len(ref)
        if step % 1000 == 0:
            assert table.items() == list(ref.items())
    assert table.items() == list(ref.items()) and list(table) == list(ref)
    assert table.keys() == list(ref) and all(type(s) is str for k in table for s in k)


def test_many_deletes_and_reinserts_through_squeezes_and_growth():
    """Waves that fill the table to thousands of keys (growth), drain it to nothing (the
    blocks all go back to the free list) and refill it with other lengths, with a churn of
    re-inserts in between (holes, squeezes): the order and values stay the dict's."""
    rng = random.Random(5)
    table, ref = NATIVE_PENDING(), {}
    step = 0
    for wave in range(6):
        size = [3000, 10, 5000, 1, 700, 2000][wave]
        new = [(f"{wave}-{i}-" + "Q" * rng.choice([0, 40, 52, 70, 75, 76, 200]), ACTIONS[i % 5],
                f"10.0.{i % 256}.{i // 256}:{rng.randrange(65536)}") for i in range(size)]
        for key in new:
            step += 1
            table[key] = ref[key] = float(step)
            if rng.random() < 0.5:  # churn: take an old one, put it back at the end
                old = rng.choice(new)
                if old in ref:
                    assert table.pop(old) == ref.pop(old)
                    table[old] = ref[old] = float(step)
        assert table.items() == list(ref.items())
        for key in list(ref)[:: 1 + wave % 3]:
            del table[key], ref[key]
        assert table.items() == list(ref.items())
        if wave % 2:
            for key in list(ref):
                assert table.pop(key) == ref.pop(key)
            assert len(table) == 0 and table.items() == []
    table.clear()
    table[("after", "GET", "clear")] = 1.0
    assert table.items() == [(("after", "GET", "clear"), 1.0)]


def test_an_emptied_table_refills_after_clear_with_long_and_short_keys():
    table = NATIVE_PENDING()
    for round_ in range(3):
        keys = [("p" * n, "GET", str(round_)) for n in range(0, 200, 7)]
        for i, key in enumerate(keys):
            table[key] = float(i)
        assert list(table) == keys
        table.clear()
        assert not table and list(table) == []


def start_finish_lines() -> list[str]:
    """Starts and finishes paired by the scan, remotes of every length the scan reads
    (IPv4, IPv6, long host names: keys below, at and above BLOCK bytes), retries, and
    finishes without a start."""
    rng = random.Random(9)
    remotes = ["1.2.3.4:5", "255.255.255.255:65535", "[2001:db8::1]:7777",
               "[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:28967", "h" * 17 + ":1",
               "h" * 18 + ":1", "h" * 19 + ":1", "host.example.com:" + "9" * 60]
    head = '2026-01-15T10:{m:02d}:{s:02d}Z\tINFO\tpiecestore\t{msg}\t{{"process": "storagenode", '
    body = ('"Piece ID": "{piece}", "Satellite ID": "' + US1 + '", "Action": "{action}", '
            '"Size": 1000, "Remote Address": "{remote}"}}')
    lines, open_ = [], []
    for i in range(4000):
        t = i // 4
        if open_ and rng.random() < 0.45:
            piece, action, remote = open_.pop(rng.randrange(len(open_)))
            msg = "downloaded" if action.startswith("GET") else "uploaded"
        else:
            piece = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(52))
            if rng.random() < 0.1 and open_:
                piece, action, remote = rng.choice(open_)  # a retry
            else:
                action, remote = rng.choice(ACTIONS), rng.choice(remotes)
                open_.append((piece, action, remote))
            msg = "download started" if action.startswith("GET") else "upload started"
        lines.append((head + body).format(m=t // 60 % 60, s=t % 60, msg=msg, piece=piece,
                                          action=action, remote=remote))
    return lines


@pytest.mark.parametrize("kind", ["python", "native", "block"])
def test_the_scan_pairs_keys_of_every_length_as_the_reference(kind):
    lines = start_finish_lines()
    expected = everything(reference(lines, None, max_pending=300, pairing_timeout=90.0))
    pending = expected["pending"]
    assert {key_size(k) > BLOCK for k, _ in pending} == {False, True}
    assert sum(expected["transfers"].values()) > 1000 and expected["starts_expired"] > 0
    for size in (1, 64, 1000):
        state = via(kind, batched(lines, size), None, max_pending=300, pairing_timeout=90.0)
        assert everything(state) == expected
