"""The fuzz harnesses (fuzz/README.md), each for a short bounded run on every test run.

parser: parse_line and NodeState.feed (pure Python) on arbitrary input; hotpath: the C hot
path built with ASan + UBSan against the pure Python path on the same input. Each run first
replays the seed corpus in full (the fixture logs, hostile lines, every reproducer in
fuzz/crashes/), then fuzzes for FUZZ_TEST_SECONDS (default 20) seconds. `make fuzz` is the
long run.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from fuzz import build
from fuzz import run as fuzz_run

SECONDS = int(os.environ.get("FUZZ_TEST_SECONDS", "20"))


@pytest.mark.parametrize("harness", fuzz_run.HARNESSES)
def test_harness_runs_clean(harness, tmp_path):
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed: pip install -e '.[fuzz]' (the Makefile does)")
    if harness == "hotpath" and build.clang() is None:
        pytest.skip("clang is not installed: `make deps-debian` (root) installs clang and "
                    "libclang-rt-dev for the ASan/UBSan build of exporter/hotpath/*.c")
    result = fuzz_run.run(harness, SECONDS, corpus=tmp_path / "corpus", quiet=True)
    print(result.line())
    assert result.clean, f"{result.line()}\n{result.tail}"
    assert result.executions > 200, result.line()  # it fuzzed, not only started
