#!/usr/bin/env python3
"""The lines the C hot path leaves to Python: what `parse_line` and `report` cost on them.

Why (issue 15): on real logs a few percent of the lines are no common line (failed transfers,
cancels with a reason, orders, contact, housekeeping, updater lines) and they take a large
share of `report`'s time. This script takes a log, keeps the lines the C scan hands to
`NodeState._line` (or, with `--grep`, the lines the bench's grep filter keeps:
not `\\t(INFO|DEBUG)\\tpiecestore\\t(download started|…)\\t`), and prints

* the message mix of those lines (the most frequent `level logger message`);
* `parse_line` µs a line on them (best of `--repeat` passes, and by message with `--by-message`);
* `parse_line` + `NodeState.apply` µs a line (pure Python, no hot path);
* `report` CPU seconds (user+sys of the child, median of `--runs`) on a file of those lines,
  and on the whole log with `--whole`.

    python3 bench/other_lines.py LOG [--grep] [--repeat 5] [--runs 3] [--whole] [--by-message]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter import parser, state  # noqa: E402

_GREP = re.compile(r"\t(INFO|DEBUG)\tpiecestore\t(download started|downloaded|upload started"
                   r"|uploaded|upload canceled|download canceled)\t")


def python_lines(log: Path) -> list[str]:
    """The lines the C scan passes to NodeState._line, in order."""
    if state.NATIVE_SCAN is None:
        sys.exit("the C hot path is not built: nothing to compare against")
    seen: list[str] = []
    node = state.NodeState("bench")
    original = node._line

    def grab(line: str, read_time: float | None) -> None:
        seen.append(line)
        original(line, read_time)

    node._line = grab  # type: ignore[method-assign]
    with open(log, "rb") as f:
        rest = b""
        while chunk := f.read(1 << 20):
            chunk = rest + chunk
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest = chunk
                continue
            node.feed_block(chunk[:cut], None)
            rest = chunk[cut + 1:]
        if rest:
            node.feed_block(rest, None)
    return seen


def grep_lines(log: Path) -> list[str]:
    with open(log, encoding="utf-8", errors="replace") as f:
        return [line.rstrip("\n") for line in f if not _GREP.search(line)]


def best(fn, lines: list[str], repeat: int) -> float:
    """Best µs a line of `fn` over `lines`, in CPU time (the machine may be shared)."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn(lines)
        times.append(time.process_time() - t0)
    return min(times) / max(1, len(lines)) * 1e6


def parse_all(lines: list[str]) -> None:
    parse = parser.parse_line
    for line in lines:
        parse(line)


def parse_apply(lines: list[str]) -> None:
    node = state.NodeState("bench", native=False)
    parse, apply = parser.parse_line, node.apply
    for line in lines:
        event = parse(line)
        if event is not None:
            apply(event, None)


def report_cpu(log: Path, runs: int) -> tuple[float, float]:
    """Median user+sys CPU and wall seconds of `report` on `log`."""
    cmd = [sys.executable, "-m", "exporter", "report", "--node", f"bench:{log}",
           "--format", "prometheus", "--no-progress"]
    cpus, walls = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"report failed (exit {proc.returncode}): {' '.join(cmd)}")
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpus), statistics.median(walls)


def key(line: str) -> str:
    parts = line.split("\t")
    return "\t".join(parts[1:4]) if len(parts) >= 5 else "\t".join(parts[:3])[:80]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--grep", action="store_true", help="the grep filter, not the C scan's")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--whole", action="store_true", help="also `report` on the whole log")
    ap.add_argument("--by-message", action="store_true", help="parse_line µs by message")
    ap.add_argument("--out", type=Path, default=Path("/tmp/other-lines.log"),
                    help="where the selected lines are written for `report`")
    args = ap.parse_args()

    lines = grep_lines(args.log) if args.grep else python_lines(args.log)
    with open(args.log, "rb") as f:
        total = sum(1 for _ in f)
    print(f"{args.log.name}: {len(lines):,} of {total:,} lines to Python "
          f"({len(lines) / max(1, total):.1%}; {'grep filter' if args.grep else 'C scan'})")
    mix = collections.Counter(key(line) for line in lines)
    for k, n in mix.most_common(12):
        print(f"  {n:8,}  {k[:100]!s}")
    args.out.write_text("".join(line + "\n" for line in lines))

    print(f"parse_line:          {best(parse_all, lines, args.repeat):6.2f} µs a line")
    print(f"parse_line + apply:  {best(parse_apply, lines, args.repeat):6.2f} µs a line")
    if args.by_message:
        groups: dict[str, list[str]] = collections.defaultdict(list)
        for line in lines:
            groups[key(line)].append(line)
        for k, n in mix.most_common(25):
            print(f"  {best(parse_all, groups[k], args.repeat):6.2f} µs  {n:7,}  {k[:90]}")
    if args.runs:
        cpu, wall = report_cpu(args.out, args.runs)
        print(f"report on {args.out}: cpu {cpu:.3f} s, wall {wall:.3f} s (median of {args.runs})")
        if args.whole:
            cpu, wall = report_cpu(args.log, args.runs)
            print(f"report on {args.log.name}: cpu {cpu:.3f} s, wall {wall:.3f} s "
                  f"({total / cpu:,.0f} lines per CPU second)")
        empty = args.out.with_suffix(".empty.log")
        empty.write_text("")
        cpu, wall = report_cpu(empty, args.runs)
        print(f"report on an empty log (startup): cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()
