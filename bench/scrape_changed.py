#!/usr/bin/env python3
"""/metrics when every node changed between scrapes, in one process (issue 15).

Why: an idle fleet's scrape reuses each node's cached block, but a busy fleet changes every
node between two scrapes (Prometheus scrapes every 15-60 s, a node logs several lines a
second), so every block is rendered again. This builds 1, 10 and 50 nodes the way the
exporter does (NodeState + NodeRunner, the registry of exporter/app.py: log collector, build
info, process collector), feeds each `--history` lines of a v1.146 node (all series of a busy
node exist), then before every scrape feeds `--lines` more lines into every node (not timed)
and times the whole /metrics WSGI app as Prometheus requests it (its Accept header,
Accept-Encoding: gzip): p50/p99 wall and CPU ms, samples, bytes. `--idle` scrapes with no
lines in between are printed beside it.

    python3 bench/scrape_changed.py [--nodes 1,10,50] [--history 5000] [--lines 20]
                                    [--scrapes 30] [--profile N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, ProcessCollector

from exporter.app import BuildInfoCollector
from exporter.collector import LogCollector
from exporter.http import _metrics_app
from exporter.runner import NodeRunner
from exporter.simulate.loggen import LogGenerator
from exporter.state import NodeState
from logstream.source import Source

GOAL_MS = {50: 50.0}
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "",
           "HTTP_ACCEPT": PROMETHEUS_ACCEPT, "HTTP_ACCEPT_ENCODING": "gzip"}


def fleet(n: int, history: int) -> tuple[list[NodeRunner], list[LogGenerator]]:
    runners, gens = [], []
    start = time.time() - 3600
    for i in range(n):
        source = Source()
        source.stats.up = True
        runner = NodeRunner(f"n{i + 1}", source, NodeState(f"n{i + 1}"))
        gen = LogGenerator(era="v1.146", seed=1000 + i, started=True)
        feed(runner, gen, history, start)
        runners.append(runner)
        gens.append(gen)
    return runners, gens


def feed(runner: NodeRunner, gen: LogGenerator, count: int, start: float | None = None) -> None:
    lines = [line.rstrip("\n") for line in gen.lines(count, start=start)]
    runner.state.feed(lines, None)
    runner.source.stats.bytes_read += sum(len(line) + 1 for line in lines)


def scrape(app) -> tuple[float, float, bytes]:
    """(wall s, CPU s, gzip body) of one /metrics request."""
    got = {}

    def start_response(status, headers):
        got["headers"] = dict(headers)

    c0, t0 = time.thread_time(), time.perf_counter()
    body = b"".join(app(dict(ENVIRON), start_response))
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    assert got["headers"].get("Content-Encoding") == "gzip", got
    return wall, cpu, body


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def measure(n: int, args) -> dict:
    runners, gens = fleet(n, args.history)
    collector = LogCollector(runners)
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(BuildInfoCollector())
    ProcessCollector(registry=registry)
    app = _metrics_app(registry, collector)
    scrape(app)  # warm: every block cached once
    out: dict = {}
    for mode in ("changed", "idle"):
        walls, cpus = [], []
        for _ in range(args.scrapes):
            if mode == "changed":
                for runner, gen in zip(runners, gens, strict=True):
                    feed(runner, gen, args.lines)
            wall, cpu, body = scrape(app)
            walls.append(wall * 1000)
            cpus.append(cpu * 1000)
        text = gzip.decompress(body)
        out[mode] = {"p50": statistics.median(walls), "p99": pct(walls, 0.99),
                     "cpu": statistics.median(cpus), "bytes": len(text),
                     "samples": sum(1 for x in text.splitlines() if x and x[:1] != b"#")}
    if args.profile == n:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        for _ in range(5):
            for runner, gen in zip(runners, gens, strict=True):
                feed(runner, gen, args.lines)
            prof.enable()
            scrape(app)
            prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="1,10,50", help="comma-separated node counts")
    ap.add_argument("--history", type=int, default=5000, help="lines fed to each node first")
    ap.add_argument("--lines", type=int, default=20, help="lines fed to each node per scrape")
    ap.add_argument("--scrapes", type=int, default=30)
    ap.add_argument("--profile", type=int, default=0, help="cProfile 5 scrapes at N nodes")
    args = ap.parse_args(argv)
    rows = [(n, measure(n, args)) for n in (int(x) for x in args.nodes.split(","))]
    print(f"\n/metrics in-process ({args.history:,} history lines a node, {args.lines} new "
          f"lines in every node before each changed scrape, {args.scrapes} scrapes, "
          "Prometheus' Accept + gzip):")
    header = (f"{'nodes':>5} {'case':<8} {'p50 ms':>8} {'p99 ms':>8} {'CPU p50 ms':>10} "
              f"{'samples':>8} {'KiB':>6}")
    print(header)
    print("-" * len(header))
    rc = 0
    for n, r in rows:
        for mode, m in r.items():
            print(f"{n:>5} {mode:<8} {m['p50']:>8.1f} {m['p99']:>8.1f} {m['cpu']:>10.1f} "
                  f"{m['samples']:>8,} {m['bytes'] / 1024:>6.0f}")
    for n, r in rows:
        if n in GOAL_MS:
            ok = r["changed"]["p50"] < GOAL_MS[n]
            rc |= not ok
            print(f"{'PASS' if ok else 'FAIL'} {n} nodes, all changed: p50 "
                  f"{r['changed']['p50']:.1f} ms (goal < {GOAL_MS[n]:g} ms)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return rc


if __name__ == "__main__":
    sys.exit(main())
