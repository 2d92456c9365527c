"""Atheris harness: the C hot path (exporter._hotpath.scan) under ASan + UBSan, against the
pure Python path on the same input (the equivalence tests/test_hotpath.py checks on
fixtures).

It imports the sanitized build from fuzz/build.py, never the in-place extension, so it must
run in a Python with the sanitizer runtime preloaded: fuzz/run.py does that
(`build.runtime_env()`). Each input goes through NodeState.feed_block (bytes, as the file
tailer gives them) and NodeState.feed (text lines, as Docker and the forwarder give them);
the scan's timestamp and reason readers are checked against Python on the same lines. The
top pieces table has a capacity of TOP_CAPACITY in both states, so that a short input runs
its decrement (exporter/hotpath/top.c), and the C table is driven directly too
(`_same_top`: the quoted values of the input as pieces, against TopPieces).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz import build, checks


def _load_sanitized() -> None:
    """Put the ASan/UBSan build in place of exporter._hotpath before exporter.state binds
    NATIVE_SCAN."""
    import exporter

    if "exporter._hotpath" in sys.modules or "exporter.state" in sys.modules:
        raise RuntimeError("exporter._hotpath was imported before the sanitized build")
    spec = importlib.util.spec_from_file_location("exporter._hotpath", build.MODULE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["exporter._hotpath"] = module
    spec.loader.exec_module(module)
    exporter._hotpath = module


_load_sanitized()
with atheris.instrument_imports(include=["exporter"]):
    from exporter.state import NATIVE_SCAN, NodeState

from tests.test_hotpath import everything  # noqa: E402

if NATIVE_SCAN is None or sys.modules["exporter._hotpath"].__file__ != str(build.MODULE):
    raise RuntimeError("the sanitized exporter._hotpath is not the one NodeState uses")


#: the top pieces' capacity in the fuzzed states: a few GETs fill it (the default is 1000)
TOP_CAPACITY = 4


def _run(feed, items, read_time) -> tuple[list, BaseException | None]:
    """Feed every batch; the return values, and the exception that stopped it (or None)."""
    out = []
    try:
        for item in items:
            out.append(feed(item, read_time))
    except Exception as exc:
        return out, exc
    return out, None


def _pair(mode: checks.Mode, method: str, items: list, what: str) -> NodeState | None:
    """The same batches through C and pure Python: same answers, same exception, same state.
    Returns the C state, or None when there was no reference."""
    c = NodeState("n", native=True, geo=checks.make_geo(mode))
    py = NodeState("n", native=False, geo=checks.make_geo(mode))
    c.top_pieces.capacity = py.top_pieces.capacity = TOP_CAPACITY
    c_out, c_exc = _run(getattr(c, method), items, mode.read_time)
    py_out, py_exc = _run(getattr(py, method), items, mode.read_time)
    if py_exc is not None and checks.allowed(py_exc):
        return None  # a known bug of the Python side (FUZZ_ALLOW): no reference to compare
    if type(c_exc) is not type(py_exc):
        raise checks.Finding(f"same: {what}: C raised {c_exc!r}, Python {py_exc!r}") from (
            c_exc or py_exc)
    checks.same(everything(c), everything(py), what)
    if c_out != py_out:
        raise checks.Finding(f"same: {what}: C returned {c_out}, Python {py_out}")
    if checks.geo_view(c.geo) != checks.geo_view(py.geo):
        raise checks.Finding(f"same: {what}: the geo windows differ")
    if c_exc is not None:
        raise c_exc
    return c


def _same_helpers(raw_lines: list[bytes]) -> None:
    """The scan's own timestamp and reason readers (exporter/hotpath/clock.c, reasons.c)
    against the Python they stand for, on each line's first field and quoted values."""
    from datetime import datetime

    from exporter import _hotpath, reasons

    for raw in raw_lines[:50]:
        line = raw.decode("ascii", "replace")
        ts = line.split("\t", 1)[0]
        got = _hotpath.timestamp(ts)
        if got is not None and got != datetime.fromisoformat(ts).timestamp():
            raise checks.Finding(f"same: timestamp({ts!r}): C {got!r}")
        for text in line.split('"')[1::2]:
            label = _hotpath.classify(text)
            if label is not None and label != reasons.classify(text):
                raise checks.Finding(f"same: classify({text!r}): C {label!r}")


def _same_top(raw: bytes, errors: str) -> None:
    """exporter._hotpath.TopCounts (NodeState.top_pieces.counts with the C path) against
    TopPieces, with the input's quoted values (any text) as the pieces: the same counts in
    the same order after every add, the same top(), and a copy through update() equal."""
    from exporter.tallies import NativeTopPieces, TopPieces

    pieces = raw.decode("utf-8", errors).split('"')[:2000]
    capacity = 1 + len(raw) % 7
    c, py = NativeTopPieces(capacity), TopPieces(capacity)
    for piece in pieces:
        c.add(piece)
        py.add(piece)
        if c.counts.items() != list(py.counts.items()):
            raise checks.Finding(f"same: TopCounts.add({piece!r}): C {c.counts!r}, "
                                 f"Python {py.counts!r}")
    if c.top(3) != py.top(3) or c.top() != py.top():
        raise checks.Finding(f"same: TopCounts.top(): C {c.top()!r}, Python {py.top()!r}")
    again = NativeTopPieces(capacity)
    again.counts.update(py.counts)
    if again.counts.items() != list(py.counts.items()) or len(c.counts) > max(capacity, 0):
        raise checks.Finding(f"same: TopCounts.update: {again.counts!r}, {py.counts!r}")


def one_input(data: bytes) -> None:
    mode, raw = checks.split(data)
    raw_lines = raw.split(b"\n")
    _same_helpers(raw_lines)
    _same_top(raw, mode.errors)
    blocks = [b"\n".join(x) for x in checks.batches(raw_lines, mode.batch)]
    state = _pair(mode, "feed_block", blocks, f"feed_block() in blocks of {mode.batch} lines")
    if state is not None:
        checks.check_answers(state, len(raw_lines))
        checks.check_labels(state)
    lines = raw.decode("utf-8", mode.errors).split("\n")
    state = _pair(mode, "feed", checks.batches(lines, mode.batch),
                  f"feed() in batches of {mode.batch}, text decoded with {mode.errors}")
    if state is not None:
        checks.check_answers(state, len(lines))


test_one_input = checks.guarded(one_input)


def main() -> None:
    ran = checks.run_seeds(test_one_input, os.environ.get("FUZZ_FULL_SEEDS"))
    print(f"fuzz_hotpath: {ran} seeds ran in full", file=sys.stderr, flush=True)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
