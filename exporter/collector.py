"""Renders every node's log state as fresh metric families at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter.events import EVENT_NAMES
from exporter.runner import NodeRunner
from exporter.satellites import SATELLITES
from exporter.state import ACTIONS, DURATION_BUCKETS, INGRESS_ACTIONS, SIZE_BUCKETS, TimestampCache

LEVELS = ("debug", "info", "warn", "error", "fatal")


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, int]]:
    out, total = [], 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
    return out


class LogCollector:
    """prometheus_client custom collector over the nodes' NodeState objects."""

    def __init__(self, runners: Iterable[NodeRunner]) -> None:
        self.runners = list(runners)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        node_l = ["node"]
        transfers = CounterMetricFamily(
            "storagenode_transfers", "Finished piece transfers.",
            labels=["node", "satellite", "action", "result"],
        )
        ingress = CounterMetricFamily(
            "storagenode_ingress_bytes", "Bytes received in piece uploads (Size of the line).",
            labels=["node", "satellite", "action", "result"],
        )
        egress = CounterMetricFamily(
            "storagenode_egress_bytes",
            "Bytes of piece downloads (Size of the line; since v1.99 the requested size).",
            labels=["node", "satellite", "action", "result"],
        )
        sizes = HistogramMetricFamily(
            "storagenode_transfer_size_bytes", "Size of successful transfers.",
            labels=["node", "action"],
        )
        durations = HistogramMetricFamily(
            "storagenode_transfer_duration_seconds",
            "Time from '... started' to the finished line (needs debug logs since v1.116).",
            labels=["node", "action", "result"],
        )
        errors = CounterMetricFamily(
            "storagenode_transfer_errors", "Failed transfers by normalised reason.",
            labels=["node", "action", "reason"],
        )
        in_flight = GaugeMetricFamily(
            "storagenode_transfers_in_flight", "Started transfers not finished yet.",
            labels=["node", "action"],
        )
        expired = CounterMetricFamily(
            "storagenode_transfer_starts_expired",
            "'... started' lines never matched by a finished line.", labels=node_l,
        )
        events = CounterMetricFamily(
            "storagenode_events", "Other log events (see docs/metrics.md).",
            labels=["node", "event"],
        )
        top = GaugeMetricFamily(
            "storagenode_top_piece_downloads",
            "Most requested pieces (GET, approximate lower-bound counts, top 10).",
            labels=["node", "piece_id"],
        )
        lines = CounterMetricFamily(
            "storagenode_log_lines", "Parsed log lines by level.", labels=["node", "level"]
        )
        unparsed = CounterMetricFamily(
            "storagenode_log_unparsed_lines", "Lines that are not storagenode log lines.",
            labels=node_l,
        )
        up = GaugeMetricFamily(
            "storagenode_log_source_up", "1 while the log source is readable.", labels=node_l
        )
        last = GaugeMetricFamily(
            "storagenode_log_last_line_timestamp_seconds",
            "Timestamp written in the newest parsed line.", labels=node_l,
        )
        source_counters = {
            name: CounterMetricFamily(f"storagenode_log_source_{name}", doc, labels=node_l)
            for name, doc in (
                ("bytes_read", "Bytes read from the log source."),
                ("rotations", "Rename rotations followed."),
                ("truncations", "Truncations (copytruncate) detected."),
                ("reconnects", "Reconnections of a streamed source."),
            )
        }
        oversized = CounterMetricFamily(
            "storagenode_log_oversized_lines",
            "Lines over the line length limit (also counted as unparsed).", labels=node_l,
        )
        clock = TimestampCache()
        for runner in self.runners:
            node = runner.name
            snap = runner.state.snapshot()
            stats = runner.source.stats
            for (sat, action, result), value in sorted(snap["transfers"].items()):
                transfers.add_metric([node, SATELLITES.name(sat), action, result], value)
            for (sat, action, result), value in sorted(snap["bytes"].items()):
                family = ingress if action in INGRESS_ACTIONS else egress
                family.add_metric([node, SATELLITES.name(sat), action, result], value)
            for action in ACTIONS:
                counts, total = snap["sizes"][action]
                sizes.add_metric([node, action], _buckets(SIZE_BUCKETS, counts), total)
            for (action, result), (counts, total) in sorted(snap["durations"].items()):
                durations.add_metric(
                    [node, action, result], _buckets(DURATION_BUCKETS, counts), total
                )
            for (action, reason), value in sorted(snap["errors"].items()):
                errors.add_metric([node, action, reason], value)
            for action in ACTIONS:
                in_flight.add_metric([node, action], snap["in_flight"][action])
            expired.add_metric([node], snap["starts_expired"])
            seen = snap["events"]
            for name in sorted({*EVENT_NAMES, *seen}):
                events.add_metric([node, name], seen.get(name, 0))
            for piece, count in snap["top_pieces"]:
                top.add_metric([node, piece], count)
            levels = snap["lines"]
            for level in sorted({*LEVELS, *levels}):
                lines.add_metric([node, level], levels.get(level, 0))
            unparsed.add_metric([node], snap["unparsed"])
            up.add_metric([node], 1 if stats.up else 0)
            if snap["last_timestamp"]:
                when = clock(snap["last_timestamp"])
                if when is not None:
                    last.add_metric([node], when)
            for name, family in source_counters.items():
                family.add_metric([node], getattr(stats, name))
            oversized.add_metric([node], stats.oversized_lines)
        yield from (
            transfers, ingress, egress, sizes, durations, errors, in_flight, expired, events,
            top, lines, unparsed, up, last, *source_counters.values(), oversized,
        )
