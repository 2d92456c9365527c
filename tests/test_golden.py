"""Exact exposition for recorded log fixtures of each format era, byte for byte.

`report --format prometheus` and the live server's /metrics use the same collector; both are
compared with tests/golden/logs_<fixture>.txt. Regenerate with UPDATE_GOLDEN=1 and review the
diff by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, GOLDEN, ROOT, parse_exposition, wait_for

LOGS = sorted(p.name for p in (FIXTURES / "logs").glob("*.log"))


def golden_path(name: str):
    return GOLDEN / f"logs_{name.removesuffix('.log')}.txt"


def run_report(path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "report", "--node", f"n1:{path}",
         "--format", "prometheus", "--no-progress"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return out.stdout


@pytest.mark.parametrize("name", LOGS)
def test_report_matches_golden(name):
    text = run_report(FIXTURES / "logs" / name)
    golden = golden_path(name)
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("name", ["v1.76.log", "v1.146.log", "json-notime.log", "garbage.log"])
def test_live_metrics_match_golden(name, exporter_process):
    """The real server reading the fixture from the start serves the same samples."""
    path = FIXTURES / "logs" / name
    proc = exporter_process("--node", f"n1:{path}", "--from-start")
    want = parse_exposition(golden_path(name).read_text())
    lines = sum(v for k, v in want.items() if k.startswith("storagenode_log_lines_total"))

    def caught_up():
        got = proc.samples()
        seen = sum(v for k, v in got.items() if k.startswith("storagenode_log_lines_total"))
        return got if seen == lines else None

    got = wait_for(caught_up, what="all fixture lines")
    mine = {k: v for k, v in got.items() if k in want}
    assert mine == want
    assert got["storagenode_log_source_up{node=\"n1\"}"] == 1.0


def test_golden_for_every_fixture():
    assert {golden_path(n).name for n in LOGS} <= {p.name for p in GOLDEN.glob("logs_*.txt")}
