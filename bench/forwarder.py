"""Forwarder cost and latency while a node writes N lines a second (default 500).

Starts the real `python -m forwarder` on a temporary log, appends realistic storagenode lines
one write each (as zap does) at a steady rate, and consumes them in this process with the
exporter's ForwarderSource feeding a real NodeState. Reports the forwarder's CPU (share of
one core, from /proc utime+stime), its RSS (current and peak), and the latency from a line's
write to the moment the exporter state has counted it.

    python bench/forwarder.py [--rate 500] [--seconds 20] [--docker]

Targets: < 2 % of a core, < 30 MB RSS, p99 latency < 100 ms on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.sources.forwarder import ForwarderSource  # noqa: E402
from exporter.state import NodeState  # noqa: E402

US1 = "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"
TOKEN = b"bench-token-0123456789abcdef"


def line(i: int, written: float) -> str:
    # the write time rides in the piece ID so the consumer can measure latency per line
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(written))
    return (
        f'{ts}\tINFO\tpiecestore\tdownloaded\t{{"Process": "storagenode", '
        f'"Piece ID": "T{written:.6f}X{i:030d}", "Satellite ID": "{US1}", '
        f'"Action": "GET", "Offset": 0, "Size": {1024 + i % 4096}, '
        f'"Remote Address": "198.51.100.{i % 250}:{20000 + i % 1000}"}}\n'
    )


def docker_wrap(text: str, written: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(written)) + f"{written % 1:.9f}"[1:]
    return json.dumps({"log": text, "stream": "stderr", "time": stamp + "Z"}) + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> tuple[int, int]:
    values = {}
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = row.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=500.0, help="lines per second")
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement length")
    ap.add_argument("--docker", action="store_true", help="Docker json-file log format")
    ap.add_argument("--poll-interval", default="0.05", help="forwarder --poll-interval")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fwd-bench-"))
    log = tmp / ("abc-json.log" if args.docker else "node.log")
    log.touch()
    token = tmp / "token"
    token.write_bytes(TOKEN)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = f"docker:{log}" if args.docker else str(log)
    fwd = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "--log", f"n1={spec}", "--listen",
         f"127.0.0.1:{port}", "--token-file", str(token), "--poll-interval", args.poll_interval],
        cwd=ROOT, stderr=open(tmp / "forwarder.log", "w"),  # noqa: SIM115
    )
    try:
        return run(args, fwd, port, log)
    finally:
        fwd.terminate()
        fwd.wait(10)


def run(args, fwd: subprocess.Popen, port: int, log: Path) -> int:
    deadline = time.monotonic() + 10
    while "listening on" not in (log.parent / "forwarder.log").read_text():
        if time.monotonic() > deadline or fwd.poll() is not None:
            print("forwarder did not start", file=sys.stderr)
            return 1
        time.sleep(0.05)

    state = NodeState("n1")
    src = ForwarderSource("127.0.0.1", port, "n1", token=TOKEN)
    stop = threading.Event()
    latencies: list[float] = []
    received = 0

    def consume() -> None:
        nonlocal received
        for batch in src.batches(stop):
            with state.lock:
                state.feed(batch.lines, batch.read_time)
            now = time.time()
            for text in batch.lines:
                at = text.find('"T')
                if at > 0:
                    latencies.append(now - float(text[at + 2:text.index("X", at)]))
            received += len(batch.lines)

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    while not src.stats.up:
        time.sleep(0.02)
    time.sleep(1.0)  # let the forwarder settle (imports, first connection)
    idle0, idle_t0 = cpu_seconds(fwd.pid), time.monotonic()
    time.sleep(5.0)
    idle_share = (cpu_seconds(fwd.pid) - idle0) / (time.monotonic() - idle_t0)

    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    interval = 1.0 / args.rate
    total_lines = int(args.rate * args.seconds)
    cpu0, wall0 = cpu_seconds(fwd.pid), time.monotonic()
    next_at = time.monotonic()
    peak_rss = 0
    for i in range(total_lines):
        now = time.time()
        text = line(i, now)
        os.write(fd, (docker_wrap(text, now) if args.docker else text).encode())
        if i % 500 == 0:
            peak_rss = max(peak_rss, rss_kb(fwd.pid)[0])
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)
    end = time.monotonic() + 5
    while received < total_lines and time.monotonic() < end:
        time.sleep(0.01)
    cpu1, wall1 = cpu_seconds(fwd.pid), time.monotonic()
    rss, hwm = rss_kb(fwd.pid)
    stop.set()

    cpu_share = (cpu1 - cpu0) / (wall1 - wall0)
    counted = sum(state.lines.values())
    print(f"format              {'docker json-file' if args.docker else 'plain'}")
    print(f"lines written       {total_lines} at {args.rate:g}/s for {args.seconds:g}s")
    print(f"lines counted       {counted} (received {received})")
    print(f"forwarder CPU       {cpu_share * 100:.2f} % of one core "
          f"(idle, connected: {idle_share * 100:.2f} %)")
    print(f"forwarder RSS       {rss / 1024:.1f} MiB now, {max(peak_rss, hwm) / 1024:.1f} MiB peak")
    if latencies:
        print(f"latency write->counted  p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms")
    ok = (counted == total_lines and cpu_share < 0.02 and hwm < 30 * 1024
          and latencies and percentile(latencies, 0.99) < 0.1)
    print("targets (<2 % CPU, <30 MB RSS, p99 <100 ms, all lines):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
