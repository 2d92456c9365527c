#!/usr/bin/env python3
"""Benchmark: `storagenode-exporter report --format prometheus` vs Debian's mtail on one log.

Why: the issue sets throughput targets (>= 300,000 lines/s on one core, >= 8x mtail, peak
RSS < 60 MB, live tailing of 500 lines/s under 1 % of a core) and the numbers must be
reproducible on any machine. This script generates a realistic log once (cached in
bench/out/), warms the page cache, runs both tools N times, measures wall time, user+sys
CPU and peak RSS of each child (os.wait4), prints a table next to the anchor numbers of
reference/performance-anchors.md, and cross-checks the transfer counts of the exporter,
mtail and the generator (plus grep). Stdlib only.

    python3 bench/run.py [--lines 1000000] [--era v1.99] [--runs 3]
                         [--exporter-args "--geoip-db X"] [--skip-mtail] [--live-seconds 30]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"


def make_out() -> None:
    """bench/out/ holds big generated files: keep it out of git without touching .gitignore."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / ".gitignore").write_text("*\n")

# reference/performance-anchors.md, Part B.2 (2-vCPU EPYC VM, same 1M-line v1.99 log shape)
ANCHORS = (
    ("anchor: mtail full program (rc50)", 37_271, 26.83, 18.3),
    ("anchor: py dict+Collector+tail regex", 246_913, 4.05, 23.6),
)
TARGET_LINES_PER_S = 300_000
TARGET_RATIO = 8.0
TARGET_RSS_MIB = 60.0
SATELLITE_NAMES = {
    "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S": "us1",
    "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs": "eu1",
    "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6": "ap1",
    "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE": "saltlake",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# ---- log -----------------------------------------------------------------------------------


def generate(lines: int, era: str, seed: int, started: bool,
             peers: int = 4096) -> tuple[Path, dict]:
    """The benchmark log and the generator's own counts, generated once per parameter set."""
    make_out()
    # The generator's source is part of the cache key: a changed generator, a new log.
    sources = sorted((ROOT / "exporter" / "simulate" / "loggen").glob("*.py"))
    version = hashlib.sha256(b"".join(f.read_bytes() for f in sources)).hexdigest()[:8]
    prefix = (f"node-{era}-{lines}-s{seed}{'' if started else '-nostart'}"
              f"{'' if peers == 4096 else f'-p{peers}'}")
    stem = f"{prefix}.{version}"
    log, counts = OUT / f"{stem}.log", OUT / f"{stem}.counts.json"
    if not (log.exists() and counts.exists()):
        for stale in OUT.glob(f"{prefix}.*"):
            stale.unlink()
        print(f"generating {log.name} ({lines:,} lines, era {era}) ...", flush=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "exporter.simulate.loggen", "--era", era,
               "--lines", str(lines),
               "--seed", str(seed), "--peers", str(peers),
               "--counts", str(counts) + ".tmp", str(log) + ".tmp"]
        if not started:
            cmd.insert(-1, "--no-started")
        subprocess.run(cmd, cwd=ROOT, check=True)
        os.replace(str(log) + ".tmp", log)
        os.replace(str(counts) + ".tmp", counts)
        print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return log, json.loads(counts.read_text())


def warm(path: Path) -> None:
    """Read the file once so every run starts with it in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


def site_packages() -> list[str]:
    """Where the exporter's dependencies are installed (their bytecode is compiled too)."""
    try:
        import prometheus_client
    except ImportError:  # the exporter child will say what is missing
        return []
    return [str(Path(prometheus_client.__file__).parents[1])]


# ---- measuring -----------------------------------------------------------------------------


def measure(cmd: list[str], stdout: Path, stderr: Path) -> dict:
    """Run one command to completion: wall s, user s, sys s, peak RSS MiB, exit status."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024.0, "rc": proc.returncode,
    }


def run_tool(name: str, cmd: list[str], runs: int) -> dict | None:
    print(f"running {name} x{runs}: {shlex.join(cmd)}", flush=True)
    results = []
    for i in range(runs):
        r = measure(cmd, OUT / f"{name}.prom", OUT / f"{name}.stderr")
        print(f"  run {i + 1}: wall {r['wall']:.2f} s, cpu {r['user'] + r['sys']:.2f} s, "
              f"rss {r['rss_mib']:.1f} MiB, rc {r['rc']}", flush=True)
        if r["rc"] != 0:
            tail = (OUT / f"{name}.stderr").read_text(errors="replace")[-2000:]
            print(f"  {name} failed (exit {r['rc']}):\n{tail}", file=sys.stderr)
            return None
        results.append(r)
    return {
        "wall": statistics.median(r["wall"] for r in results),
        "wall_min": min(r["wall"] for r in results),
        "wall_max": max(r["wall"] for r in results),
        "user": statistics.median(r["user"] for r in results),
        "sys": statistics.median(r["sys"] for r in results),
        "cpu": statistics.median(r["user"] + r["sys"] for r in results),
        "rss_mib": max(r["rss_mib"] for r in results),
    }


# ---- cross-check ---------------------------------------------------------------------------


def parse_prom(path: Path) -> list[tuple[str, dict[str, str], float]]:
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            labels = dict(_LABEL.findall(m.group(2) or ""))
            samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def totals(samples, metric: str, keys: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for name, labels, value in samples:
        if name != metric or not value:
            continue
        labels = dict(labels)
        if "satellite_id" in labels:  # mtail labels satellites by ID
            labels["satellite"] = SATELLITE_NAMES.get(labels["satellite_id"],
                                                      labels["satellite_id"])
        if "level" in labels:
            labels["level"] = labels["level"].lower()
        key = tuple(labels.get(k, "") for k in keys)
        out[key] = out.get(key, 0.0) + value
    return out


def grep_counts(log: Path) -> dict[str, int] | None:
    """Finished transfers by result, counted by grep (independent of Python and mtail)."""
    if shutil.which("grep") is None:
        return None
    patterns = {
        "success": r"\t(uploaded|downloaded)\t",
        "canceled": r"\t(upload|download) canceled[^\t]*\t",
        "failed": r"\t(upload|download) failed\t",
    }
    out = {}
    for result, pattern in patterns.items():
        proc = subprocess.run(["grep", "-c", "-P", r"\tpiecestore" + pattern, str(log)],
                              capture_output=True, text=True)
        out[result] = int(proc.stdout.strip() or 0)
    return out


def compare(title: str, columns: dict[str, dict], keys: list) -> int:
    """Print the rows where the sources disagree; return their number."""
    names = [n for n, d in columns.items() if d is not None]
    bad = 0
    for key in keys:
        values = [columns[n].get(key, 0) for n in names]
        if max(values) != min(values):
            bad += 1
            shown = ", ".join(f"{n}={v:g}" for n, v in zip(names, values, strict=True))
            print(f"  MISMATCH {title} {'/'.join(key)}: {shown}")
    print(f"  {title}: {len(keys)} series compared across {', '.join(names)}: "
          f"{'all equal' if not bad else f'{bad} differ'}")
    return bad


def cross_check(log: Path, counts: dict, exporter: Path | None, mtail: Path | None) -> int:
    print("\ncross-check (non-zero series; exporter vs mtail vs generator):")
    exp = parse_prom(exporter) if exporter else None
    mt = parse_prom(mtail) if mtail else None
    gen_ar = {tuple(k.split("/")): float(v) for k, v in counts["transfers"].items()}
    gen_sar = {tuple(k.split("/")): float(v)
               for k, v in counts["transfers_by_satellite"].items()}
    gen_levels = {(k,): float(v) for k, v in counts["lines"].items()}
    cols = {
        "exporter": totals(exp, "storagenode_transfers_total", ("action", "result"))
        if exp else None,
        "mtail": totals(mt, "storagenode_transfers_total", ("action", "result"))
        if mt else None,
        "generator": gen_ar,
    }
    keys = sorted(set().union(*(c for c in cols.values() if c is not None)))
    bad = compare("transfers_total by action/result", cols, keys)
    cols = {
        "exporter": totals(exp, "storagenode_transfers_total",
                           ("satellite", "action", "result")) if exp else None,
        "mtail": totals(mt, "storagenode_transfers_total", ("satellite", "action", "result"))
        if mt else None,
        "generator": gen_sar,
    }
    keys = sorted(set().union(*(c for c in cols.values() if c is not None)))
    bad += compare("transfers_total by satellite/action/result", cols, keys)
    grep = grep_counts(log)
    if grep is not None:
        by_result: dict[tuple[str, ...], float] = {}
        for (_, result), n in gen_ar.items():
            by_result[(result,)] = by_result.get((result,), 0) + n
        cols = {"generator": by_result, "grep": {(k,): float(v) for k, v in grep.items()}}
        if exp:
            cols["exporter"] = totals(exp, "storagenode_transfers_total", ("result",))
        bad += compare("finished transfers by result", cols, sorted(by_result))
    cols = {
        "exporter": totals(exp, "storagenode_log_lines_total", ("level",)) if exp else None,
        "mtail": totals(mt, "storagenode_log_lines_total", ("level",)) if mt else None,
        "generator": gen_levels,
    }
    bad += compare("log_lines_total by level", cols, sorted(gen_levels))
    if exp and mt:
        for metric, keys_ in (
            ("storagenode_ingress_bytes_total", ("action", "result")),
            ("storagenode_egress_bytes_total", ("action", "result")),
            ("storagenode_transfer_errors_total", ("action", "reason")),
            ("storagenode_transfer_size_bytes_count", ("action",)),
            ("storagenode_transfer_size_bytes_sum", ("action",)),
        ):
            cols = {"exporter": totals(exp, metric, keys_), "mtail": totals(mt, metric, keys_)}
            keys = sorted(set(cols["exporter"]) | set(cols["mtail"]))
            bad += compare(metric.removeprefix("storagenode_"), cols, keys)
        events = counts["events"]
        for event in ("upload_rejected", "database_locked"):
            e = totals(exp, "storagenode_events_total", ("event",)).get((event,), 0)
            m = totals(mt, "storagenode_events_total", ("event",)).get((event,), 0)
            g = events.get(event, 0)
            status = "equal" if e == m == g else "MISMATCH"
            print(f"  events_total {event}: exporter={e:g} mtail={m:g} generator={g} {status}")
            bad += status != "equal"
        # Durations: mtail pairs by piece ID only, the exporter by piece, action and remote
        # address, so pieces downloaded twice at once pair differently; shown, not counted.
        de = totals(exp, "storagenode_transfer_duration_seconds_count", ("action", "result"))
        dm = totals(mt, "storagenode_transfer_duration_seconds_count", ("action", "result"))
        diff = sum(abs(de.get(k, 0) - dm.get(k, 0)) for k in set(de) | set(dm))
        print(f"  transfer_duration_seconds_count: exporter {sum(de.values()):g}, "
              f"mtail {sum(dm.values()):g} (differ by {diff:g}; pairing keys differ, "
              f"see bench/README.md)")
    return bad


# ---- report --------------------------------------------------------------------------------


def print_table(lines: int, size: int, rows: list[tuple[str, dict | None]]) -> None:
    print(f"\nresults: {lines:,} lines, {size / 1e6:.1f} MB, medians of the runs")
    header = (f"{'tool':<40} {'wall s':>7} {'min':>6} {'max':>6} {'CPU s':>6} "
              f"{'user':>6} {'sys':>5} {'RSS MiB':>8} {'lines/s':>10} {'lines/CPU-s':>11}")
    print(header)
    print("-" * len(header))
    for name, r in rows:
        if r is None:
            print(f"{name:<40} {'(not run)':>7}")
            continue
        print(f"{name:<40} {r['wall']:>7.2f} {r['wall_min']:>6.2f} {r['wall_max']:>6.2f} "
              f"{r['cpu']:>6.2f} {r['user']:>6.2f} {r['sys']:>5.2f} {r['rss_mib']:>8.1f} "
              f"{lines / r['wall']:>10,.0f} {lines / max(r['cpu'], 1e-9):>11,.0f}")
    for name, rate, wall, rss in ANCHORS:
        print(f"{name:<40} {wall:>7.2f} {'':>6} {'':>6} {'':>6} {'':>6} {'':>5} {rss:>8.1f} "
              f"{rate:>10,}")


def verdict(lines: int, exporter: dict | None, mtail: dict | None) -> None:
    print("\ntargets:")
    if exporter is None:
        print("  exporter did not run")
        return
    rate = lines / exporter["wall"]
    ok = "PASS" if rate >= TARGET_LINES_PER_S else "FAIL"
    print(f"  {ok} exporter {rate:,.0f} lines/s (target >= {TARGET_LINES_PER_S:,}; "
          f"{lines / exporter['cpu']:,.0f} lines per CPU second)")
    ok = "PASS" if exporter["rss_mib"] < TARGET_RSS_MIB else "FAIL"
    print(f"  {ok} exporter peak RSS {exporter['rss_mib']:.1f} MiB (target < {TARGET_RSS_MIB:g})")
    if mtail is not None:
        ratio = mtail["wall"] / exporter["wall"]
        cpu_ratio = mtail["cpu"] / exporter["cpu"]
        ok = "PASS" if ratio >= TARGET_RATIO else "FAIL"
        print(f"  {ok} exporter/mtail throughput ratio {ratio:.1f}x by wall time "
              f"({cpu_ratio:.1f}x by CPU time; target >= {TARGET_RATIO:g}x)")
    else:
        print("  (mtail not run: no ratio)")


def busy_note() -> None:
    try:
        load = os.getloadavg()
    except OSError:
        return
    cpus = os.cpu_count() or 1
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {cpus} CPUs", end="")
    print("  <- the machine is busy; numbers are pessimistic" if load[0] > 0.5 * cpus else "")


def hot_path_note() -> None:
    """Which log reader the exporter child will use (the C extension or pure Python), after
    compiling the Python modules to bytecode, as an install does: from a source checkout run
    with PYTHONDONTWRITEBYTECODE=1 (some sandboxes and CI images set it) every run would
    otherwise compile them again, ~0.1 s of CPU that no installed exporter pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "exporter", "logstream",
                    "forwarder", *site_packages()],
                   cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    probe = subprocess.run(
        [sys.executable, "-c", "from exporter.state import NATIVE_SCAN; "
         "print('c (exporter._hotpath)' if NATIVE_SCAN else 'pure Python')"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    print(f"exporter hot path: {probe.stdout.strip() or probe.stderr.strip()}"
          + ("" if "exporter._hotpath" in probe.stdout else
             "  <- build it with `pip install -e .` for the C path"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--era", default="v1.99")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-started", dest="started", action="store_false",
                    help="generate the log without `… started` lines")
    ap.add_argument("--peers", type=int, default=4096,
                    help="distinct client addresses in the log (bench/scale.py geo uses 4M)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--exporter-args", default="",
                    help='extra arguments for `report`, e.g. "--geoip-db X"')
    ap.add_argument("--skip-mtail", action="store_true")
    ap.add_argument("--live-seconds", type=float, default=0.0,
                    help="then run bench/live.py for this many seconds (0: skip)")
    args = ap.parse_args(argv)

    hot_path_note()
    busy_note()
    log, counts = generate(args.lines, args.era, args.seed, args.started, args.peers)
    size = log.stat().st_size
    warm(log)

    exporter_cmd = [sys.executable, "-m", "exporter", "report", "--node", f"bench:{log}",
                    "--format", "prometheus", *shlex.split(args.exporter_args)]
    exporter = run_tool("exporter", exporter_cmd, args.runs)

    mtail = None
    mtail_bin = shutil.which("mtail")
    if args.skip_mtail:
        print("mtail skipped (--skip-mtail)")
    elif mtail_bin is None:
        print("mtail not installed (apt-get install mtail): skipped")
    else:
        # mtail loads every *.mtail file of the directory: bench/storagenode.mtail only
        mtail_cmd = [mtail_bin, "-one_shot", "-one_shot_format", "prometheus",
                     "-progs", str(BENCH), "-logs", str(log), "-address", "127.0.0.1",
                     "-port", "0", "-logtostderr"]
        mtail = run_tool("mtail", mtail_cmd, args.runs)

    print_table(args.lines, size, [("storagenode-exporter report", exporter),
                                   ("mtail -one_shot (bench/storagenode.mtail)", mtail)])
    verdict(args.lines, exporter, mtail)
    bad = cross_check(log, counts, OUT / "exporter.prom" if exporter else None,
                      OUT / "mtail.prom" if mtail else None)
    busy_note()
    rc = 0 if exporter is not None and not bad else 1
    if args.live_seconds > 0:
        live = subprocess.run([sys.executable, str(BENCH / "live.py"), "--seconds",
                               str(args.live_seconds), "--exporter-args", args.exporter_args],
                              cwd=ROOT)
        rc = rc or live.returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
