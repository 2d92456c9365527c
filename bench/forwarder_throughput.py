"""Forwarder throughput: how many lines a second go through the real forwarder at full speed.

Writes N realistic lines into a log first, starts the real `python -m forwarder` with a
token, and drains the whole file with the exporter's ForwarderSource (`from_start`), without
parsing, so the number is the cost of the forwarder and the protocol alone (framing, JSON,
per-frame authentication). Reports lines/s and the forwarder's CPU per million lines.

    python bench/forwarder_throughput.py [--lines 400000] [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.forwarder import TOKEN, cpu_seconds, line  # noqa: E402
from exporter.sources.forwarder import ForwarderSource  # noqa: E402


def once(tmp: Path, n: int) -> tuple[float, float]:
    """(lines/s, forwarder CPU seconds per million lines) for one drain of n lines."""
    log = tmp / "node.log"
    log.write_text("".join(line(i, 1.7e9 + i / 1000) for i in range(n)))
    (tmp / "token").write_bytes(TOKEN)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errlog = tmp / "forwarder.log"
    fwd = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "--log", f"n1={log}", "--listen",
         f"127.0.0.1:{port}", "--token-file", str(tmp / "token")],
        cwd=ROOT, stderr=open(errlog, "w"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 10
        while "listening on" not in errlog.read_text():
            if time.monotonic() > deadline or fwd.poll() is not None:
                raise SystemExit("forwarder did not start")
            time.sleep(0.05)
        src = ForwarderSource("127.0.0.1", port, "n1", token=TOKEN, from_start=True)
        stop = threading.Event()
        received = 0
        cpu0 = cpu_seconds(fwd.pid)
        began = time.monotonic()
        for batch in src.batches(stop):
            received += len(batch.lines)
            if received >= n:
                break
        wall = time.monotonic() - began
        cpu = cpu_seconds(fwd.pid) - cpu0
        stop.set()
        return n / wall, cpu / n * 1e6
    finally:
        fwd.terminate()
        fwd.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="fwd-tput-") as tmp:
            results.append(once(Path(tmp), args.lines))
    for rate, cpu in results:
        print(f"{rate:,.0f} lines/s, forwarder CPU {cpu:.2f} s per million lines")
    best = max(results)
    print(f"best: {best[0]:,.0f} lines/s ({args.lines} lines, {args.runs} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
