#!/usr/bin/env python3
"""Live-tailing cost: the real exporter following a log written at 500 lines/s.

Why: the target is "live tailing of 500 lines/s under 1 % of a core". This starts
`python -m exporter --node bench:FILE --web.listen-address 127.0.0.1:PORT` (it tails from
the end), measures its idle CPU for a few seconds, appends synthetic lines
(exporter.simulate.loggen.LogGenerator.tick, after a minute of unwritten history so transfers are
already in flight) in 10 small writes per second for N seconds, then reads
the exporter's utime+stime from /proc/PID/stat over the writing period, its RSS from
/proc/PID/status, scrapes /metrics and checks that storagenode_log_lines_total adds up to
the number of lines written. Linux only (procfs); stdlib only.

    python3 bench/live.py [--seconds 30] [--rate 500] [--era v1.146] [--writes-per-second 10]
                          [--exporter-args "..."]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import OUT, ROOT, make_out

from exporter.simulate.loggen import LogGenerator

TARGET_CORE_PERCENT = 1.0
TICKS = os.sysconf("SC_CLK_TCK")
_LINES = re.compile(r'^storagenode_log_lines_total\{([^}]*)\} (\S+)$', re.M)
_UNPARSED = re.compile(r'^storagenode_log_unparsed_lines_total\{([^}]*)\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB from /proc/PID/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def counted(text: str, node: str = "bench") -> tuple[float, float]:
    """(sum of storagenode_log_lines_total, storagenode_log_unparsed_lines_total)."""
    lines = sum(float(v) for labels, v in _LINES.findall(text) if f'node="{node}"' in labels)
    unparsed = sum(float(v) for labels, v in _UNPARSED.findall(text)
                   if f'node="{node}"' in labels)
    return lines, unparsed


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within 10 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_up(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"exporter exited early with status {proc.returncode}")
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"exporter did not answer on port {port} within {timeout:.0f} s")


def write_for(path: Path, gen: LogGenerator, seconds: float, rate: float, writes: int) -> int:
    """Append ~rate lines/s for `seconds` in `writes` writes a second; returns lines written."""
    written = 0
    start = time.monotonic()
    with open(path, "a", encoding="utf-8") as fh:
        for second in range(int(seconds)):
            batch = gen.tick(time.time(), rate)
            for i in range(writes):
                part = batch[i * len(batch) // writes:(i + 1) * len(batch) // writes]
                fh.writelines(part)
                fh.flush()
                written += len(part)
                pause = start + second + (i + 1) / writes - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=500.0, help="lines per second")
    ap.add_argument("--era", default="v1.146")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--writes-per-second", type=int, default=10,
                    help="split each second's lines into this many writes (a node writes "
                         "every line separately: try --writes-per-second 500)")
    ap.add_argument("--exporter-args", default="", help="extra arguments for the exporter")
    args = ap.parse_args(argv)

    make_out()
    log = OUT / "live.log"
    log.write_text("")
    port = free_port()
    cmd = [sys.executable, "-m", "exporter", "--node", f"bench:{log}",
           "--web.listen-address", f"127.0.0.1:{port}", *shlex.split(args.exporter_args)]
    print(f"starting {shlex.join(cmd)}", flush=True)
    stderr = open(OUT / "live-exporter.stderr", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_up(port, proc)
        time.sleep(1.0)  # let start-up work settle
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        print(f"idle: {idle:.2f} % of a core over {args.idle_seconds:g} s", flush=True)

        gen = LogGenerator(era=args.era, seed=args.seed, started=True)
        now = time.time()
        for i in range(60, 0, -1):  # a minute of history: transfers in flight, steady rate
            gen.tick(now - i, args.rate)
        print(f"writing {args.rate:g} lines/s for {args.seconds:g} s ...", flush=True)
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        written = write_for(log, gen, args.seconds, args.rate, args.writes_per_second)
        time.sleep(1.5)  # the last write is read and applied
        cpu = cpu_seconds(proc.pid) - c0
        elapsed = time.monotonic() - t0
        rss, peak = memory_mib(proc.pid)
        text = scrape(port)
        lines, unparsed = counted(text)
    finally:
        stop(proc)
        stderr.close()

    percent = cpu / elapsed * 100
    rate = written / args.seconds
    load = os.getloadavg()[0]
    print(f"\nlive tailing, era {args.era}: {written:,} lines written at {rate:.0f} lines/s")
    print(f"  exporter CPU {cpu:.2f} s over {elapsed:.1f} s = {percent:.2f} % of a core "
          f"(idle {idle:.2f} %; {cpu / max(written, 1) * 1e6:.0f} µs per line)")
    print(f"  exporter RSS {rss:.1f} MiB (peak {peak:.1f} MiB)")
    print(f"  load average {load:.2f} on {os.cpu_count()} CPUs")
    ok_lines = lines == written and unparsed == 0
    print(f"  {'PASS' if ok_lines else 'FAIL'} storagenode_log_lines_total = {lines:g} "
          f"(written {written}), unparsed {unparsed:g}")
    ok_cpu = percent < TARGET_CORE_PERCENT
    print(f"  {'PASS' if ok_cpu else 'FAIL'} CPU {percent:.2f} % of a core "
          f"(target < {TARGET_CORE_PERCENT:g} %)")
    return 0 if ok_lines and ok_cpu else 1


if __name__ == "__main__":
    sys.exit(main())
