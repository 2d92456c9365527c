"""Renders every node's log state at scrape time: as text for a text-format /metrics scrape
and `report --format prometheus` (`LogCollector.text`, each node's block by its
exporter/nodetext.py writer, kept while the node is unchanged; no prometheus_client needed), as
fresh metric families for prometheus_client (`collect`: OpenMetrics scrapes, report with geo
collectors, backfill). Both give the same bytes (tests/test_exposition.py).

Each node is rendered on its own and checked before its samples join the scrape: a value
that is not a finite number (it cannot come from a log line, see exporter/parser.py, but a
bug could put one there) drops that node's log metrics with one log line, and the other
nodes are served (issue 12).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar

from exporter.families import FAMILIES, join
from exporter.nodetext import (
    DURATION_LE,
    HOUSE_LE,
    SIZE_LE,
    SOURCE_STATS,
    NodeText,
    events,
    house,
    levels,
    series_names,
    shown,
)
from exporter.runner import NodeRunner
from exporter.satellites import SATELLITES
from exporter.state import ACTIONS, INGRESS_ACTIONS
from exporter.tallies import TimestampCache

if TYPE_CHECKING:
    from prometheus_client.core import Metric

log = logging.getLogger("exporter.collector")
T = TypeVar("T")


def _buckets(les: tuple[str, ...], counts: list[int]) -> list[tuple[str, int]]:
    return list(zip(les, accumulate(counts), strict=True))


class LogCollector:
    """prometheus_client custom collector over the nodes' NodeState objects."""

    def __init__(self, runners: Iterable[NodeRunner]) -> None:
        self.runners = list(runners)
        self._failing: set[str] = set()  # nodes whose last render failed (logged once)
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        #: node name -> (state id and source stats, _probe fields, {family key: sample text})
        self._cache: dict[str, tuple[tuple, dict, dict[str, str]]] = {}
        self._joined: str | None = None
        #: node name -> (its state, the NodeText writing it)
        self._writers: dict[str, tuple[object, NodeText]] = {}
        self._templates: dict[tuple, tuple[str, ...]] = {}  # NodeText's, for all nodes

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if getattr(self._local, "elsewhere", False):
            return  # the /metrics writer has written the log families already
        families = _families()
        clock = TimestampCache()
        for runner in self.runners:
            node = self._guarded(runner, lambda r=runner: _checked(r, r.state.snapshot(), clock))
            for name, family in (node or {}).items():
                families[name].samples.extend(family.samples)
        yield from families.values()

    def text(self) -> str:
        """The log families in the text format, each node's block written again (by its
        NodeText, exporter/nodetext.py) only when its counters or source stats changed since
        the last scrape."""
        clock = TimestampCache()
        blocks = []
        runners = list(self.runners)  # a reload may put in a new list meanwhile
        with self._cache_lock:
            changed = (self._joined is None
                       or [runner.name for runner in runners] != list(self._cache))
            for runner in runners:
                key = (id(runner.state), _stats_key(runner.source.stats))
                probe = _probe(runner.state)
                cached = self._cache.get(runner.name)
                if cached is None or cached[0] != key or cached[1] != probe:
                    writer = self._writers.get(runner.name)
                    if writer is None or writer[0] is not runner.state:
                        writer = self._writers[runner.name] = (
                            runner.state, NodeText(runner.name, NAMES, self._templates))
                    snap = runner.state.snapshot()
                    text = self._guarded(runner, lambda r=runner, w=writer[1], s=snap: w.write(
                        s, r.source.stats, clock))
                    # cached under the probe's fields of the snapshot the block shows: the
                    # dicts NodeText keeps too (no second copy), never older than the block
                    shown = {name: snap.get(name) for name in probe}
                    cached = self._cache[runner.name] = (key, shown, text or {})
                    changed = True
                blocks.append(cached[2])
            if changed:
                self._cache = {runner.name: self._cache[runner.name] for runner in runners}
                self._writers = {name: self._writers[name] for name in self._cache
                                 if name in self._writers}
                self._joined = join(FAMILIES, blocks)
            return self._joined  # the same object while nothing changed (exposition.Gzip)

    @contextmanager
    def elsewhere(self) -> Iterator[None]:
        """While the registry is collected for /metrics in this thread, yield nothing."""
        self._local.elsewhere = True
        try:
            yield
        finally:
            self._local.elsewhere = False

    def _guarded(self, runner: NodeRunner, render: Callable[[], T]) -> T | None:
        """`render()` of one node, or None (logged once) when it cannot be rendered."""
        try:
            out = render()
        except Exception as exc:  # one node must not fail the scrape
            if runner.name not in self._failing:
                self._failing.add(runner.name)
                log.error("node %s: its log metrics are left out of the scrape: %s",
                          runner.name, _short(exc))
            return None
        if runner.name in self._failing:
            self._failing.discard(runner.name)
            log.info("node %s: its log metrics are served again", runner.name)
        return out


def _checked(runner: NodeRunner, snap: dict, clock: TimestampCache) -> dict[str, Metric]:
    """One node's families; raises if a value is not a finite number."""
    node = _families()
    _render(runner, snap, node, clock)
    for family in node.values():
        for sample in family.samples:
            if not math.isfinite(float(sample.value)):
                raise ValueError(f"{sample.name} {sample.labels} is not finite")
    return node


def _probe(state) -> dict:
    """What tells a changed state from an unchanged one, cheaper than a snapshot: the counters
    and the in-flight starts, compared with the same fields of the snapshot the cached block
    was written from. The top pieces (a sort of up to 1,000, most of a snapshot's cost) only
    change with a line, and every line changes the line or unparsed counters."""
    with state.lock:
        return {**state.counters(), "in_flight": dict(state.in_flight)}


def _stats_key(stats) -> tuple:
    return (stats.up, stats.bytes_read, stats.rotations, stats.truncations, stats.reconnects,
            stats.oversized_lines)


def _short(exc: Exception) -> str:
    """An exception for one log line: type and at most 200 characters, escaped."""
    try:
        text = str(exc)
    except ValueError:  # str() of a huge int
        text = "?"
    return f"{type(exc).__name__}: {text[:200]!r}"


def _families() -> dict[str, Metric]:
    """Empty prometheus_client families of the log metrics (exporter/families.py), in
    exposition order; imported here, as the text path needs no prometheus_client."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    kinds = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
             "histogram": HistogramMetricFamily}
    return {key: kinds[f.type](f.name, f.documentation, labels=f.labels)
            for key, f in FAMILIES.items()}


#: NodeText's series names, for every node
NAMES = series_names(FAMILIES)


def _render(runner: NodeRunner, snap: dict, f: dict[str, Metric], clock: TimestampCache) -> None:
    """Add one node's samples (of its snapshot `snap`) to the families `f` (from _families);
    exporter/nodetext.py writes the same samples as text."""
    node = runner.name
    stats = runner.source.stats
    for (sat, action, result), value in sorted(snap["transfers"].items()):
        f["transfers"].add_metric([node, SATELLITES.name(sat), action, result], value)
    for (sat, action, result), value in sorted(snap["bytes"].items()):
        family = f["ingress"] if action in INGRESS_ACTIONS else f["egress"]
        family.add_metric([node, SATELLITES.name(sat), action, result], value)
    for (sat, action, result), value in sorted(snap.get("requested", {}).items()):
        f["requested"].add_metric([node, SATELLITES.name(sat), action, result], value)
    for action in ACTIONS:
        counts, total = snap["sizes"][action]
        f["sizes"].add_metric([node, action], _buckets(SIZE_LE, counts), total)
    for (action, result), (counts, total) in sorted(snap["durations"].items()):
        f["durations"].add_metric([node, action, result], _buckets(DURATION_LE, counts), total)
    for (action, reason), value in sorted(snap["errors"].items()):
        f["errors"].add_metric([node, action, reason], value)
    for action in ACTIONS:
        f["in_flight"].add_metric([node, action], snap["in_flight"][action])
    f["expired"].add_metric([node], snap["starts_expired"])
    for name, value in sorted(events(snap).items()):
        f["events"].add_metric([node, name], value)
    for piece, count in snap["top_pieces"]:
        f["top"].add_metric([node, piece], count)
    for level, value in sorted(levels(snap).items()):
        f["lines"].add_metric([node, level], value)
    f["unparsed"].add_metric([node], snap["unparsed"])
    f["up"].add_metric([node], 1 if stats.up else 0)
    if snap["last_timestamp"]:
        when = clock(snap["last_timestamp"])
        if when is not None:
            f["last"].add_metric([node], when)
    for name in SOURCE_STATS:
        f[f"source_{name}"].add_metric([node], getattr(stats, name))
    f["oversized"].add_metric([node], stats.oversized_lines)
    for (action, reason), value in sorted(snap["cancel_reasons"].items()):
        f["cancels"].add_metric([node, action, reason], value)
    if snap["available_space"] is not None:
        f["available"].add_metric([node], snap["available_space"])
    for (metric, *labels), value in sorted(house(snap).items()):
        f[f"house_{metric}"].add_metric([node, *shown(metric, labels)], value)
    for (metric, *labels), (counts, total) in sorted(snap["house_hists"].items()):
        f[f"house_{metric}"].add_metric([node, *shown(metric, labels)],
                                        _buckets(HOUSE_LE, counts), total)
