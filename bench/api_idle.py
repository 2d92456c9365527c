"""Idle cost of node API polling: threads and CPU of the real exporter with N `--api` nodes,
against the simulated node API (answering) or an unreachable port (issue 15).

    python3 bench/api_idle.py --nodes 1,10,50 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.getcwd())
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


def measure(nodes: int, url: str, seconds: float, settle: float) -> tuple[int, float]:
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
        count = threads(proc.pid)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        return count, cpu
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
    args = p.parse_args()
    sim = SimulatedNodeApi("v1.146").start()
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        print(f"{'nodes':>5} {'API':>12} {'threads':>7} {'CPU %':>6}")
        for n in (int(x) for x in args.nodes.split(",")):
            for kind, url in (("simulated", sim.url), ("unreachable", dead)):
                count, cpu = measure(n, url, args.seconds, args.settle)
                print(f"{n:>5} {kind:>12} {count:>7} {cpu:>6.2f}", flush=True)
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
