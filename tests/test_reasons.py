"""exporter/reasons.py: the cached `classify` gives exactly what the rule table gives.

The cache is keyed by a text's shape (its digit runs collapsed): these tests hold the claim
that two texts of one shape always get one label, in both orders of arrival, including the
edges (digits next to a needle, `eof` at either end, the needle with digits, non-ASCII and
surrogates, texts past the cache's length limit) and a full cache.
"""

from __future__ import annotations

import random

import pytest

from exporter import reasons
from exporter.reasons import _RULES, CACHE_MAX, CACHE_TEXT, _classify, classify, shape
from exporter.state import NATIVE_SCAN

NEEDLES = [n for _, needles in _RULES for n in needles]


def _texts() -> list[str]:
    rng = random.Random(15)
    base = [
        "write tcp 172.17.0.3:28967->6.240.40.255:12550: write: broken pipe",
        "read tcp 10.0.0.1:1->10.0.0.2:2: read: connection reset by peer",
        "manager closed: read tcp 1.2.3.4:5->6.7.8.9:10: i/o timeout",
        "downloaded size (123 bytes) does not match received message size (4567 bytes)",
        "x509: certificate signed by unknown authority 12", "x5090: 1", "x50: 9", "tls: 1",
        "eof", "EOF", "5eof", "eof5", "read: EOF", "1: eof", ": eof1", "a: eof", "",
        "12345", "speed too low, current:123 < limit:456", "İK ϴ\u212a 1 closed: 2",
        "\ud800 context canceled 7", "unexpected EOF 9", "order expired 2024-01-01",
        "x" * (CACHE_TEXT + 5) + " broken pipe 1",
    ]
    out = list(base)
    for needle in NEEDLES:
        for _ in range(3):  # digits before, inside (between words), after the needle
            d = str(rng.randrange(10 ** rng.randrange(1, 6)))
            words = needle.split(" ")
            cut = rng.randrange(len(words) + 1)
            out.append(f"{d}{needle}{d}")
            out.append(" ".join(words[:cut]) + d + " ".join(words[cut:]))
            out.append(f"err {d}: {needle.upper()} {d}")
    return out


TEXTS = _texts()


@pytest.fixture(autouse=True)
def _empty_cache():
    reasons._CACHE.clear()
    yield
    reasons._CACHE.clear()


def test_cached_classify_is_the_rule_table():
    for text in TEXTS + TEXTS[::-1]:  # the second pass is answered from the cache
        assert classify(text) == _classify(text.lower()), text


def test_texts_of_one_shape_get_one_label_in_any_order():
    rng = random.Random(7)
    for text in TEXTS:
        # the same text with other digit runs (lengths 1 to 6), classified after the first
        variant = "".join(
            str(rng.randrange(10 ** rng.randrange(1, 7))) if ch.isdigit() else ch
            for ch in text
        )
        reasons._CACHE.clear()
        assert classify(variant) == _classify(variant.lower())
        assert classify(text) == _classify(text.lower()), (variant, text)


def test_shape_is_digit_runs_collapsed():
    assert shape("a1b22c") == shape("a333b4c") != shape("ab4c")
    assert shape("1eof") != shape("eof") != shape("eof1")
    assert shape("a b") != shape("a1b") != shape("a\tb")
    assert shape("x 1") != shape("x1")


def test_the_cache_stays_bounded():
    for i in range(CACHE_MAX + 10):
        classify(f"error {'x' * (i % 50)} {chr(0x100 + i)} 1")
    assert len(reasons._CACHE) <= CACHE_MAX
    classify("x" * (CACHE_TEXT + 1))
    assert all(len(key) <= CACHE_TEXT * 4 + 2 for key in reasons._CACHE)


@pytest.mark.skipif(NATIVE_SCAN is None, reason="the C extension is not built")
def test_the_c_shape_cache_gives_the_rule_tables_label():
    """exporter/hotpath/reasons.c remembers labels by shape too (digit runs as one '0', a
    direct-mapped table): every text and its digit variants, first one then the other, and
    enough distinct shapes to replace slots, get the table's label."""
    from exporter import _hotpath

    rng = random.Random(8)
    ascii_texts = [t for t in TEXTS if t.isascii()]
    variants = ["".join(str(rng.randrange(10 ** rng.randrange(1, 7))) if ch.isdigit() else ch
                        for ch in text) for text in ascii_texts]
    crowd = [f"{rng.choice(NEEDLES)} {i} " + "y" * (i % 130) for i in range(3000)]
    # a digit inside a needle breaks it: that text must not get the whole needle's label
    broken = [t for n in NEEDLES if len(n) > 1 for t in (f"a {n}", f"a {n[:1]}7{n[1:]}")]
    for text in [*variants, *ascii_texts, *crowd, *ascii_texts[::-1], *variants[::-1], *broken]:
        expected = _classify(text.lower()) if len(text) <= 4096 else None
        assert _hotpath.classify(text) == expected, text
