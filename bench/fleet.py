#!/usr/bin/env python3
"""Many nodes in one exporter: idle CPU, threads, RSS and scrape latency at 1, 10 and 50 nodes.

Why: issue 15 — an operator with dozens of nodes runs one exporter for all of them, and
Prometheus scrapes it every 15-60 s. For each node count this starts the real exporter
(`python -m exporter --node n1:FILE ... --web.listen-address 127.0.0.1:PORT`) on empty logs,
appends `--history` lines of a v1.146 node to every log (all series of a busy node exist),
waits until every line is counted, then measures over `--idle-seconds` with no writes: CPU
(/proc/PID/stat utime+stime), threads and RSS (/proc/PID/status); then `--scrapes` scrapes of
/metrics as Prometheus asks (OpenMetrics, gzip): p50/p99 latency, samples, bytes, RSS after.
mtail (if installed) follows the same logs with bench/storagenode.mtail and is measured the
same way; its program has no node label, so its exposition stays one node's size.
`--changed N` then appends N lines to every log before each of `--scrapes` more scrapes (a
busy fleet: every node's block is written again), waits `--changed-wait` seconds for the
exporter to read them and times the scrape; the scrape's bytes_read shows whether every node
had read its lines (the p50/p99 count only such scrapes). bench/scrape_changed.py measures
the same in one process, without HTTP and the tailers.

    python3 bench/fleet.py [--nodes 1,10,50] [--history 5000] [--idle-seconds 10]
                           [--scrapes 30] [--skip-mtail] [--changed 20 [--changed-wait 1.5]]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live import cpu_seconds, free_port, memory_mib, stop, wait_up
from run import BENCH, OUT, ROOT, busy_note, make_out

from exporter.simulate.loggen import LogGenerator

GOALS = {10: (15.0, None), 50: (50.0, 60.0)}  # nodes -> (scrape p50 ms, RSS MiB)
GOAL_IDLE_PERCENT = 0.5
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
_LINES = re.compile(r"^storagenode_log_lines_total\{([^}]*)\} (\S+)$", re.M)
_READ = re.compile(r'^storagenode_log_source_bytes_read_total\{node="([^"]*)"\} (\S+)$', re.M)


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def scrape(port: int) -> tuple[float, bytes]:
    """One scrape as Prometheus does it: (seconds, decoded body)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
        "Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    return time.perf_counter() - t0, body


def lines_counted(port: int) -> float:
    return sum(float(v) for _, v in _LINES.findall(scrape(port)[1].decode(errors="replace")))


def write_history(logs: list[Path], lines: int) -> list[LogGenerator]:
    gens = []
    for i, log in enumerate(logs):
        gen = LogGenerator(era="v1.146", seed=1000 + i, started=True)
        with open(log, "a", encoding="utf-8") as f:
            f.writelines(gen.lines(lines, start=time.time() - 3600))
        gens.append(gen)
    return gens


def changed_scrapes(pid: int, port: int, logs: list[Path], gens: list[LogGenerator],
                    args) -> dict:
    """Scrapes after `args.changed` new lines in every log: p50/p99 ms and the median CPU ms
    of the exporter process (less noisy on a loaded machine) of the scrapes in which every
    node had read its log to the end, and how many those were."""
    times, cpu = [], []
    for _ in range(args.scrapes):
        for log, gen in zip(logs, gens, strict=True):
            with open(log, "a", encoding="utf-8") as f:
                f.writelines(gen.lines(args.changed))
        time.sleep(args.changed_wait)
        c0 = cpu_seconds(pid)
        seconds, body = scrape(port)
        used = cpu_seconds(pid) - c0
        read = {name: float(v) for name, v in _READ.findall(body.decode(errors="replace"))}
        if all(read.get(f"n{i + 1}") == log.stat().st_size for i, log in enumerate(logs)):
            times.append(seconds * 1000)
            cpu.append(used * 1000)
    times.sort()
    if not times:
        return {"changed_n": 0}
    return {"changed_n": len(times), "changed_p50": statistics.median(times),
            "changed_p99": times[min(len(times) - 1, int(len(times) * 0.99))],
            "changed_cpu": statistics.median(cpu)}


def measure(name: str, cmd: list[str], port: int, logs: list[Path], args) -> dict | None:
    for log in logs:
        log.write_text("")
    stderr = open(OUT / f"fleet-{name}.stderr", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        try:
            wait_up(port, proc, timeout=60)
        except SystemExit as exc:  # exited or never answered: see the stderr file
            print(f"  {name}: {exc} (see {OUT / f'fleet-{name}.stderr'})")
            return None
        time.sleep(1.0)
        gens = write_history(logs, args.history)
        written = args.history * len(logs)
        deadline, last, stable = time.monotonic() + 120, -1.0, 0
        while (counted := lines_counted(port)) < written and stable < 6:
            if time.monotonic() > deadline or proc.poll() is not None:
                print(f"  {name}: counted {counted:g} of {written} lines: giving up")
                return None
            stable = stable + 1 if counted == last else 0
            last = counted
            time.sleep(0.5)
        if counted != written:
            print(f"  {name}: counted {counted:g} of {written} lines written")
        time.sleep(2.0)  # let the catch-up settle
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        rss_idle, _ = memory_mib(proc.pid)
        n_threads = threads(proc.pid)
        times, body = [], b""
        for _ in range(args.scrapes):
            seconds, body = scrape(port)
            times.append(seconds * 1000)
        rss, peak = memory_mib(proc.pid)
        changed = (changed_scrapes(proc.pid, port, logs, gens, args)
                   if args.changed and name.startswith("exporter") else {})
    finally:
        stop(proc)
        stderr.close()
    times.sort()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {
        "idle": idle, "threads": n_threads, "rss_idle": rss_idle, "rss": rss, "peak": peak,
        "p50": statistics.median(times), "p99": times[min(len(times) - 1,
                                                           int(len(times) * 0.99))],
        "samples": samples, "bytes": len(body), **changed,
    }


def exporter_cmd(logs: list[Path], port: int) -> list[str]:
    cmd = [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}"]
    for i, log in enumerate(logs):
        cmd += ["--node", f"n{i + 1}:{log}"]
    return cmd


def mtail_cmd(logs: list[Path], port: int) -> list[str] | None:
    mtail = shutil.which("mtail")
    if mtail is None:
        return None
    return [mtail, "-progs", str(BENCH), "-logs", ",".join(map(str, logs)),
            "-address", "127.0.0.1", "-port", str(port), "-logtostderr"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="1,10,50", help="comma-separated node counts")
    ap.add_argument("--history", type=int, default=5000, help="lines written to each log")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--scrapes", type=int, default=30)
    ap.add_argument("--skip-mtail", action="store_true")
    ap.add_argument("--changed", type=int, default=0,
                    help="then scrapes after N new lines in every log (exporter only)")
    ap.add_argument("--changed-wait", type=float, default=1.5,
                    help="seconds between the new lines and the scrape")
    args = ap.parse_args(argv)
    make_out()
    (OUT / "fleet").mkdir(exist_ok=True)
    busy_note()
    rows = []
    for n in (int(x) for x in args.nodes.split(",")):
        logs = [OUT / "fleet" / f"node{i + 1}.log" for i in range(n)]
        tools = [("exporter", exporter_cmd)]
        if not args.skip_mtail:
            tools.append(("mtail", mtail_cmd))
        for name, build in tools:
            port = free_port()
            cmd = build(logs, port)
            if cmd is None:
                print("mtail not installed: skipped")
                continue
            print(f"{n} nodes, {name}: {len(cmd)} arguments, {args.history:,} lines a log ...",
                  flush=True)
            rows.append((n, name, measure(f"{name}-{n}", cmd, port, logs, args)))
    print(f"\nmany nodes ({args.history:,} history lines a node, idle over "
          f"{args.idle_seconds:g} s, {args.scrapes} scrapes with OpenMetrics + gzip):")
    header = (f"{'nodes':>5} {'tool':<9} {'idle CPU %':>10} {'threads':>7} {'RSS MiB':>8} "
              f"{'after scrapes':>13} {'scrape p50 ms':>13} {'p99 ms':>7} {'samples':>8} "
              f"{'KiB':>6}")
    print(header)
    print("-" * len(header))
    rc = 0
    for n, name, r in rows:
        if r is None:
            print(f"{n:>5} {name:<9} (failed)")
            rc = 1
            continue
        print(f"{n:>5} {name:<9} {r['idle']:>10.2f} {r['threads']:>7} {r['rss_idle']:>8.1f} "
              f"{r['rss']:>13.1f} {r['p50']:>13.1f} {r['p99']:>7.1f} {r['samples']:>8,} "
              f"{r['bytes'] / 1024:>6.0f}")
    if args.changed:
        print(f"\nscrapes after {args.changed} new lines in every log ({args.scrapes} scrapes, "
              f"{args.changed_wait:g} s after the lines; counted: every node had read them):")
        for n, name, r in rows:
            if r is not None and "changed_n" in r:
                if r["changed_n"]:
                    print(f"{n:>5} {name:<9} p50 {r['changed_p50']:.1f} ms, p99 "
                          f"{r['changed_p99']:.1f} ms, CPU p50 {r['changed_cpu']:.0f} ms "
                          f"({r['changed_n']} of {args.scrapes})")
                else:
                    print(f"{n:>5} {name:<9} no scrape with every node read: raise "
                          "--changed-wait")
    print("\ngoals (issue 15):")
    for n, name, r in rows:
        if r is None or name != "exporter":
            continue
        if n in GOALS:
            p50, rss = GOALS[n]
            ok = "PASS" if r["p50"] < p50 else "FAIL"
            print(f"  {ok} {n} nodes: scrape p50 {r['p50']:.1f} ms (goal < {p50:g} ms)")
            if rss is not None:
                ok = "PASS" if r["rss"] < rss else "FAIL"
                print(f"  {ok} {n} nodes: RSS after scrapes {r['rss']:.1f} MiB (goal < {rss:g})")
        if n == 50:
            ok = "PASS" if r["idle"] < GOAL_IDLE_PERCENT else "FAIL"
            print(f"  {ok} {n} nodes: idle CPU {r['idle']:.2f} % of a core (goal < "
                  f"{GOAL_IDLE_PERCENT:g} %), {r['threads']} threads (goal: not growing with "
                  "nodes)")
    print(f"  load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return rc


if __name__ == "__main__":
    sys.exit(main())
