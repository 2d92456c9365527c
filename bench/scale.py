#!/usr/bin/env python3
"""The `report` cases of issue 15 (fleet scale), each beside mtail on the same log in one run.

Why: bench/run.py measures one typical log; operators with real traffic see logs that defeat
the caches (hundreds of thousands of distinct peers) or take the slower parser paths (a v1.146
node at the default INFO level writes `download canceled` with a `reason`). Cases:

* `geo`: a v1.99 log whose clients come from a pool of `--peers` addresses (4,000,000: ~459k
  distinct peers in 1M lines), `report` without and with `--geoip-db`; goal: geo >= 80 % of
  the throughput without (compared by CPU seconds and by wall time);
* `info146`: a v1.146 log at INFO level (no `… started` lines, cancels with `reason`); goal
  >= 2,000,000 lines/s;
* `v199`: the standard v1.99 log of run.py; goal >= 2,000,000 lines/s and >= 20x mtail.

    python3 bench/scale.py [--case geo|info146|v199|all] [--lines 1000000] [--runs 3]
                           [--peers 4000000] [--geoip-db FILE] [--skip-mtail]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    BENCH,
    OUT,
    ROOT,
    busy_note,
    cross_check,
    generate,
    hot_path_note,
    print_table,
    run_tool,
    warm,
)

GOAL_LINES_PER_S = 2_000_000
GOAL_MTAIL_RATIO = 20.0
GOAL_GEO_SHARE = 0.80
# case -> (era, `… started` lines, geo run too)
CASES = {
    "geo": ("v1.99", True, True),
    "info146": ("v1.146", False, False),
    "v199": ("v1.99", True, False),
}


def mtail_cmd(log: Path) -> list[str] | None:
    mtail = shutil.which("mtail")
    if mtail is None:
        return None
    return [mtail, "-one_shot", "-one_shot_format", "prometheus", "-progs", str(BENCH),
            "-logs", str(log), "-address", "127.0.0.1", "-port", "0", "-logtostderr"]


def report_cmd(log: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "exporter", "report", "--node", f"bench:{log}",
            "--format", "prometheus", "--no-progress", *extra]


def verdicts(case: str, lines: int, plain: dict | None, geo: dict | None,
             mtail: dict | None) -> list[str]:
    out = []
    if plain is None:
        return ["  exporter did not run"]
    rate = lines / plain["wall"]
    if case != "geo":
        ok = "PASS" if rate >= GOAL_LINES_PER_S else "FAIL"
        out.append(f"  {ok} {case}: {rate:,.0f} lines/s, {lines / plain['cpu']:,.0f} lines per "
                   f"CPU second (goal >= {GOAL_LINES_PER_S:,} lines/s)")
    if mtail is not None:
        ratio, cpu_ratio = mtail["wall"] / plain["wall"], mtail["cpu"] / plain["cpu"]
        ok = "PASS" if ratio >= GOAL_MTAIL_RATIO else "FAIL"
        out.append(f"  {ok if case == 'v199' else 'info'} exporter/mtail {ratio:.1f}x by wall "
                   f"time, {cpu_ratio:.1f}x by CPU time (goal for v199 >= {GOAL_MTAIL_RATIO:g}x)")
    if geo is not None:
        by_cpu, by_wall = plain["cpu"] / geo["cpu"], plain["wall"] / geo["wall"]
        ok = "PASS" if by_cpu >= GOAL_GEO_SHARE else "FAIL"
        out.append(f"  {ok} with --geoip-db: {by_cpu:.0%} of the throughput without by CPU time, "
                   f"{by_wall:.0%} by wall time (goal >= {GOAL_GEO_SHARE:.0%}); "
                   f"{(geo['cpu'] - plain['cpu']) / max(lines, 1) * 1e9:,.0f} ns of CPU a line")
    return out


def run_case(case: str, args: argparse.Namespace) -> tuple[list[str], int]:
    era, started, with_geo = CASES[case]
    peers = args.peers if case == "geo" else 4096
    print(f"\n==== case {case}: era {era}, {'with' if started else 'no'} started lines, "
          f"{peers:,} peers in the pool", flush=True)
    log, counts = generate(args.lines, era, args.seed, started, peers)
    warm(log)
    plain = run_tool("exporter", report_cmd(log), args.runs)
    geo = None
    if with_geo:
        geo = run_tool("exporter-geo", report_cmd(log, "--geoip-db", args.geoip_db), args.runs)
    cmd = None if args.skip_mtail else mtail_cmd(log)
    mtail = run_tool("mtail", cmd, args.mtail_runs) if cmd else None
    if cmd is None:
        print("mtail skipped" + ("" if args.skip_mtail else " (not installed)"))
    rows = [("storagenode-exporter report", plain)]
    if with_geo:
        rows.append(("report --geoip-db", geo))
    rows.append(("mtail -one_shot (bench/storagenode.mtail)", mtail))
    print_table(args.lines, log.stat().st_size, rows)
    bad = cross_check(log, counts, OUT / "exporter.prom" if plain else None,
                      OUT / "mtail.prom" if mtail else None)
    lines = [f"{case} ({log.name}):", *verdicts(case, args.lines, plain, geo, mtail)]
    return lines, int(bad or plain is None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=[*CASES, "all"], default="all")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mtail-runs", type=int, default=1,
                    help="mtail takes ~30 s a run: once by default")
    ap.add_argument("--peers", type=int, default=4_000_000,
                    help="the geo case's pool of client addresses")
    ap.add_argument("--geoip-db", default=str(ROOT / "exporter" / "data" / "demo-geoip.mmdb"))
    ap.add_argument("--skip-mtail", action="store_true")
    args = ap.parse_args(argv)
    hot_path_note()
    busy_note()
    summary, rc = [], 0
    for case in CASES if args.case == "all" else [args.case]:
        lines, bad = run_case(case, args)
        summary += lines
        rc = rc or bad
    print("\nsummary (issue 15 goals):")
    print("\n".join(summary))
    busy_note()
    return rc


if __name__ == "__main__":
    sys.exit(main())
