"""Idle cost of node API polling: threads and CPU of the real exporter with N `--api` nodes,
against the simulated node API (answering) or an unreachable port (issue 15), then
`--scrapes` scrapes of /metrics as Prometheus asks (OpenMetrics or text, gzip): p50/p99 wall
time, the exporter's CPU ms per scrape (/proc utime+stime over the scrapes: a loaded machine
stretches the wall time, not the CPU) and the samples of the last scrape.

    python3 bench/api_idle.py --nodes 1,10,50 --seconds 15 [--scrapes 30]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import scrape

from exporter.simulate.nodeapi import SimulatedNodeApi


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("Threads:"))


def scrapes(pid: int, port: int, count: int) -> dict:
    """`count` scrapes one after the other: wall p50/p99 ms (all of them), CPU ms a scrape,
    samples, and the first scrape's ms (the first after the polls: every block written)."""
    times, body = [], b""
    c0 = cpu_seconds(pid)
    for _ in range(count):
        seconds, body = scrape(port)
        times.append(seconds * 1000)
    cpu = (cpu_seconds(pid) - c0) * 1000 / count
    first = times[0]
    times.sort()
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {"first": first, "p50": statistics.median(times),
            "p99": times[min(count - 1, int(count * 0.99))], "cpu": cpu, "samples": samples}


def measure(nodes: int, url: str, seconds: float, settle: float,
            count: int) -> tuple[int, float, dict]:
    port = free_port()
    args = [a for i in range(nodes) for a in ("--api", f"n{i + 1}={url}")]
    proc = subprocess.Popen([sys.executable, "-m", "exporter", *args, "--web.listen-address",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(settle)  # the first polls of every endpoint are done
        threads_now = threads(proc.pid)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        return threads_now, cpu, scrapes(proc.pid, port, count) if count else {}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # threads stuck in requests at shutdown
            proc.kill()
            proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", default="1,10,50")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--scrapes", type=int, default=30, help="scrapes after the idle spell")
    args = p.parse_args()
    sim = SimulatedNodeApi("v1.146").start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        print(f"{'nodes':>5} {'API':>12} {'threads':>7} {'CPU %':>6} {'scrape p50 ms':>13} "
              f"{'p99 ms':>7} {'CPU ms/scrape':>13} {'samples':>7} {'first ms':>8}")
        for n in (int(x) for x in args.nodes.split(",")):
            for kind, url in (("simulated", sim.url), ("unreachable", dead)):
                count, cpu, s = measure(n, url, args.seconds, args.settle, args.scrapes)
                scraped = (f" {s['p50']:>13.1f} {s['p99']:>7.1f} {s['cpu']:>13.1f} "
                           f"{s['samples']:>7} {s['first']:>8.1f}" if s else "")
                print(f"{n:>5} {kind:>12} {count:>7} {cpu:>6.2f}{scraped}", flush=True)
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
