"""`storagenode-exporter backfill`: old logs -> Prometheus TSDB blocks of the log metrics.

Each node's logs (plain, `.gz`, `docker:PATH`; a rotated set is put in order by the first
timestamp in each file) go through the same parser and NodeState as the live exporter and
`report`. At every `--resolution` step of *log time* the node's log metrics are rendered by
the same LogCollector and written as OpenMetrics samples stamped with that time: the sample
at time T holds every line logged at or before T, which is what a scrape at T would have
shown. Samples are cut into 2-hour files aligned like Prometheus blocks, and each file is
turned into one block by `promtool tsdb create-blocks-from openmetrics` (promtool re-reads
its input once per 2-hour block, so one file per block keeps it linear).

What is not backfilled: metrics about how the exporter read the log
(`storagenode_log_source_*`, oversized lines), the top-pieces gauge (its piece_id label would
churn through thousands of series) and the geo gauges. See docs/state-and-backfill.md for
how the blocks meet the live exporter's series without double counting (`--until`).
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.utils import floatToGoString

from exporter import prefixes
from exporter.collector import LogCollector
from exporter.config import ConfigError, parse_node_flag
from exporter.nodetext import escape
from exporter.parser import parse_line
from exporter.report import Progress, open_log
from exporter.runner import NodeRunner
from exporter.state import NodeState
from exporter.tallies import TimestampCache
from logstream.docker import DockerJsonSource
from logstream.lines import LineSplitter
from logstream.source import Source

log = logging.getLogger("exporter.backfill")

BLOCK_MS = 2 * 3600 * 1000  # Prometheus's block range; blocks are aligned to its multiples
#: log gaps longer than this are not filled with flat samples (the series just pause)
MAX_GAP_MS = 3600 * 1000
CHUNK = 1 << 20
SKIPPED = frozenset({"storagenode_top_piece_downloads", "storagenode_log_oversized_lines"})
SKIPPED_PREFIX = "storagenode_log_source_"
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")


class BackfillError(Exception):
    """Something outside the arguments failed (promtool, the output directory)."""


# ---- arguments ------------------------------------------------------------------------------


def parse_duration(value: str) -> float:
    """`60s`, `1m`, `500ms`, `2h` or plain seconds -> seconds."""
    m = _DURATION.match(value.strip())
    if not m:
        raise ConfigError(f"--resolution {value}: expected a duration like 60s, 1m or 5m")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    seconds = float(m.group(1)) * scale
    if not 1 <= seconds <= 3600:
        raise ConfigError(f"--resolution {value}: must be between 1s and 1h")
    return seconds


def parse_time(value: str, flag: str = "--until") -> float:
    """RFC 3339 (`2026-11-20T08:00:00Z`, `...+01:00`) or Unix seconds -> Unix seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{flag} {value}: expected RFC 3339 time (2026-11-20T08:00:00Z) "
                          "or Unix seconds") from None
    if when.tzinfo is None:
        raise ConfigError(f"{flag} {value}: give a time zone (Z or +01:00)")
    return when.timestamp()


def parse_label(value: str) -> tuple[str, str]:
    name, sep, label_value = value.partition("=")
    if not sep or not _LABEL_NAME.match(name) or name.startswith("__"):
        raise ConfigError(f"--label {value}: expected NAME=VALUE with a Prometheus label name")
    if name in ("node", "satellite", "action", "result", "reason", "event", "level", "le"):
        raise ConfigError(f"--label {value}: {name} is a label of the log metrics already")
    return name, label_value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="storagenode-exporter backfill",
        description="Read old logs and write Prometheus TSDB blocks of the log metrics (one "
        "sample per --resolution of log time), through OpenMetrics and promtool. Move the "
        "blocks into Prometheus's data directory (see docs/state-and-backfill.md).",
    )
    p.add_argument("--node", action="append", required=True, metavar="NAME:PATH",
                   help="a node's log (plain, .gz or docker:PATH); repeat the same NAME for "
                   "rotated files, in any order")
    p.add_argument("--out", required=True, metavar="DIR", help="where the blocks are written")
    p.add_argument("--resolution", default="60s", type=parse_duration,
                   help="time between samples, in log time (default 60s)")
    p.add_argument("--until", type=parse_time, metavar="TIME",
                   help="only lines logged before TIME (RFC 3339 or Unix seconds), e.g. when "
                   "the live exporter started counting")
    p.add_argument("--label", action="append", default=[], type=parse_label,
                   metavar="NAME=VALUE", help="extra label on every series, e.g. the job and "
                   "instance labels Prometheus adds to the live series; repeatable")
    p.add_argument("--promtool", default="promtool", metavar="PATH",
                   help="promtool binary (default: promtool on PATH)")
    p.add_argument("--openmetrics-only", action="store_true",
                   help="write the OpenMetrics files into --out and stop (run promtool "
                   "elsewhere, e.g. in the Prometheus container)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return p


# ---- reading --------------------------------------------------------------------------------


def read_lines(spec: str, progress: Progress | None = None) -> Iterator[list[str]]:
    """Lists of complete lines of one log file; Docker json-file wrappers removed."""
    path, docker = spec, None
    if spec.startswith("docker:"):
        path = spec[len("docker:"):]
        docker = DockerJsonSource(path, watch=False)
    splitter = LineSplitter()
    done = 0
    with open_log(path) as fh:
        raw = getattr(fh, "fileobj", None) or fh
        while data := fh.read(CHUNK):
            lines = splitter.feed(data)
            done += len(lines)
            if progress is not None:
                progress.update(raw.tell(), done)
            yield docker.make_batch(lines).lines if docker else lines
        rest = splitter.flush()
        if rest:
            yield docker.make_batch(rest).lines if docker else rest


def line_time(line: str, clock: TimestampCache) -> float | None:
    """The log timestamp of a line in seconds, None if it has none."""
    if line[:1].isdigit():  # console encoder: the timestamp is the first column
        cut = line.find("\t", 0, 40)
        if cut > 0:
            return clock(line[:cut])
    elif line[:1] == "{":  # log.encoding: json
        event = parse_line(line)
        if event is not None and event[2]:
            return clock(event[2])
        return None
    bare = prefixes.strip(line)  # docker logs -t, compose, TrueNAS, journald (issue 13)
    return line_time(bare, clock) if bare is not None else None


def first_time(spec: str) -> float | None:
    """The first timestamp in a file (reads at most ~1 MiB): orders a rotated set."""
    clock = TimestampCache()
    for lines in read_lines(spec):
        for line in lines:
            when = line_time(line, clock)
            if when is not None:
                return when
        return None
    return None


def order_files(specs: list[str]) -> list[str]:
    keyed = [(first_time(s), i, s) for i, s in enumerate(specs)]
    keyed.sort(key=lambda k: (k[0] is None, k[0] or 0.0, k[1]))
    return [s for _, _, s in keyed]


class NodeReport:
    """What was read for one node, for the summary."""

    def __init__(self, name: str, files: list[str]) -> None:
        self.name, self.files = name, files
        self.lines = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.cut_at_until = False


def _first_stamped(lines: list[str], lo: int, hi: int, stamp) -> tuple[int, int] | None:
    """(index, ms) of the first line in lines[lo:hi] with a timestamp."""
    for k in range(lo, hi):
        t = stamp(lines[k])
        if t is not None:
            return k, t
    return None


def _first_crossing(lines: list[str], lo: int, crosses, stamp) -> tuple[int, int] | None:
    """(index, ms) of the first timestamped line from `lo` on for which crosses(ms) is true,
    by bisection: log times do not go down within a file, so only ~log2(n) lines of a
    chunk are looked at and the rest is fed in bulk."""
    best = None
    hi = len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        found = _first_stamped(lines, mid, hi, stamp)
        if found is None:
            hi = mid
        elif crosses(found[1]):
            best, hi = found, mid
        else:
            lo = found[0] + 1
    return best


def node_steps(report: NodeReport, step_ms: int, until_ms: int | None,
               show_progress: bool) -> Iterator[tuple[int, list]]:
    """(time in ms, metric families) at every step from the node's first to last line."""
    state = NodeState(report.name)
    collector = LogCollector([NodeRunner(report.name, Source(), state)])
    clock = TimestampCache()
    next_ms: int | None = None
    batch: list[str] = []

    def stamp(line: str) -> int | None:
        when = line_time(line, clock)
        return None if when is None else round(when * 1000)

    def crosses(ms: int) -> bool:
        return next_ms is None or ms > next_ms or (until_ms is not None and ms >= until_ms)

    def flush() -> None:
        if batch:
            state.feed(batch, None)
            report.lines += len(batch)
            batch.clear()

    for spec in report.files:
        path = spec[len("docker:"):] if spec.startswith("docker:") else spec
        progress = Progress(os.path.basename(path), os.path.getsize(path), show_progress)
        for lines in read_lines(spec, progress):
            pos = 0
            while (found := _first_crossing(lines, pos, crosses, stamp)) is not None:
                j, t_ms = found
                batch.extend(lines[pos:j])
                if until_ms is not None and t_ms >= until_ms:
                    report.cut_at_until = True
                    break
                if next_ms is None:
                    next_ms = t_ms - t_ms % step_ms
                    report.first_ms = t_ms
                if t_ms > next_ms:  # a boundary passed: the sample holds the lines <= it
                    flush()
                    while next_ms < t_ms:
                        yield next_ms, list(collector.collect())
                        next_ms += step_ms
                        if t_ms - next_ms > MAX_GAP_MS:  # a long pause: no flat filling
                            next_ms = t_ms - t_ms % step_ms
                batch.append(lines[j])
                report.last_ms = max(report.last_ms or t_ms, t_ms)
                pos = j + 1
            else:
                batch.extend(lines[pos:] if pos else lines)
                for k in range(len(lines) - 1, pos - 1, -1):
                    t_ms = stamp(lines[k])
                    if t_ms is not None:
                        report.last_ms = max(report.last_ms or t_ms, t_ms)
                        break
            if report.cut_at_until:
                break
        progress.update(progress.total, report.lines + len(batch), force=True)
        if report.cut_at_until:
            break
    flush()
    if next_ms is not None:
        final = next_ms if until_ms is None else min(next_ms, until_ms - 1)
        yield final, list(collector.collect())


# ---- writing --------------------------------------------------------------------------------


def _timestamp(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}" if ms % 1000 else str(ms // 1000)


class Chunk:
    """The samples of one 2-hour block, grouped the way OpenMetrics wants them: each family
    once, each series' points together and in time order."""

    def __init__(self, index: int, extra_labels: list[tuple[str, str]]) -> None:
        self.index = index
        self.extra = "".join(f'{k}="{escape(v)}",' for k, v in extra_labels)
        self.families: dict[str, tuple[str, str, dict[tuple, list[str]]]] = {}
        self._prefixes: dict[tuple, str] = {}
        self.samples = 0

    def add(self, ms: int, families: list) -> None:
        ts = " " + _timestamp(ms) + "\n"
        prefixes = self._prefixes
        for family in families:
            name = family.name
            if name in SKIPPED or name.startswith(SKIPPED_PREFIX) or not family.samples:
                continue
            entry = self.families.get(name)
            if entry is None:
                entry = self.families[name] = (family.type, family.documentation, {})
            series = entry[2]
            for sample in family.samples:
                labels = sample.labels
                key = (sample.name, *labels.items())
                prefix = prefixes.get(key)
                if prefix is None:
                    text = self.extra + ",".join(
                        f'{k}="{escape(v)}"' for k, v in labels.items())
                    prefix = prefixes[key] = f"{sample.name}{{{text.rstrip(',')}}} "
                group = tuple(kv for kv in labels.items() if kv[0] != "le")
                lines = series.get(group)
                if lines is None:
                    lines = series[group] = []
                lines.append(prefix + floatToGoString(sample.value) + ts)
                self.samples += 1

    def write(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for name, (kind, doc, series) in self.families.items():
                fh.write(f"# HELP {name} {escape(doc)}\n# TYPE {name} {kind}\n")
                for lines in series.values():
                    fh.write("".join(lines))
            fh.write("# EOF\n")


def run_promtool(promtool: str, om_path: str, out: str) -> None:
    try:
        done = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om_path, out],
            capture_output=True, text=True,
        )
    except OSError as exc:
        raise BackfillError(f"cannot run {promtool}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise BackfillError(f"{promtool} failed on {om_path}: "
                            f"{(done.stderr or done.stdout).strip()[-2000:]}")


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backfill(args: argparse.Namespace) -> list[NodeReport]:
    """Read every node's logs and write the blocks (or OpenMetrics files) into args.out."""
    by_node: dict[str, list[str]] = {}
    for value in args.node:
        name, spec = parse_node_flag(value)
        if spec.startswith("tcp://") or spec == "-":
            raise ConfigError(f"--node {value}: backfill reads files only")
        path = spec[len("docker:"):] if spec.startswith("docker:") else spec
        if not os.path.isfile(path):
            raise ConfigError(f"--node {value}: {path} is not a readable file")
        by_node.setdefault(name, []).append(spec)
    promtool = None
    if not args.openmetrics_only:
        promtool = shutil.which(args.promtool)
        if promtool is None:
            raise ConfigError(f"--promtool {args.promtool}: not found; install Prometheus's "
                              "promtool or use --openmetrics-only")
    os.makedirs(args.out, exist_ok=True)
    work = args.out if args.openmetrics_only else os.path.join(args.out, ".backfill-openmetrics")
    os.makedirs(work, exist_ok=True)
    step_ms = round(args.resolution * 1000)
    until_ms = round(args.until * 1000) if args.until is not None else None
    show = sys.stderr.isatty() and not args.no_progress
    reports = [NodeReport(name, order_files(specs)) for name, specs in by_node.items()]
    steps = heapq.merge(*(node_steps(r, step_ms, until_ms, show) for r in reports),
                        key=lambda item: item[0])
    chunk: Chunk | None = None
    written = 0

    def finish(chunk: Chunk) -> None:
        nonlocal written
        start = chunk.index * BLOCK_MS
        om = os.path.join(work, f"{_iso(start).replace(':', '')}.om")
        chunk.write(om)
        if promtool is not None:
            run_promtool(promtool, om, args.out)
            os.unlink(om)
        written += 1

    try:
        samples = 0
        for ms, families in steps:
            index = ms // BLOCK_MS
            if chunk is None or index != chunk.index:
                if chunk is not None:
                    samples += chunk.samples
                    finish(chunk)
                chunk = Chunk(index, args.label)
            chunk.add(ms, families)
        if chunk is not None:
            samples += chunk.samples
            finish(chunk)
    finally:
        if work != args.out:
            shutil.rmtree(work, ignore_errors=True)
    args.samples, args.blocks = samples if chunk else 0, written
    return reports


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    try:
        reports = backfill(args)
    except BackfillError as exc:
        print(f"storagenode-exporter backfill: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        raise ConfigError(f"cannot read or write {exc.filename}: {exc.strerror}") from exc
    for r in reports:
        cut = " (stopped at --until)" if r.cut_at_until else ""
        print(f"node {r.name}: {len(r.files)} file(s), {r.lines:,} lines, "
              f"{_iso(r.first_ms)} .. {_iso(r.last_ms)}{cut}")
    what = "OpenMetrics files" if args.openmetrics_only else "blocks"
    print(f"wrote {args.blocks} {what} ({args.samples:,} samples) to {args.out} in "
          f"{time.monotonic() - started:.1f} s")
    if not args.openmetrics_only and args.blocks:
        print("next: move the block directories into Prometheus's data directory "
              "(--storage.tsdb.path); it loads them within a minute or at its next start")
    return 0
