"""One node's log metrics written as exposition text straight from its snapshot (issue 15).

A node whose state changed between scrapes is written again. Through prometheus_client that
cost ~4-5 ms a node (a Sample tuple and a label dict per sample, `add_metric`, then the
formatting), most of a scrape of a busy fleet. `NodeText` writes the same bytes as
`generate_latest` of exporter/collector.py's families (tests/test_exposition.py checks every
fixture) without them: the label part of each series (`name{a="x",node="n1"} `, labels sorted
by name, values escaped) is built once per node and kept, so a sample costs one dict lookup
and one number. The series themselves (which events, levels and housekeeping counters are
shown at 0) come from the helpers here, shared with the families of `collect()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import accumulate

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter.events import EVENT_NAMES
from exporter.housekeeping import HOUSE_BUCKETS, METRICS
from exporter.satellites import INVALID, OVERFLOW, SATELLITES, UNKNOWN
from exporter.state import ACTIONS, DURATION_BUCKETS, INGRESS_ACTIONS, SIZE_BUCKETS, TimestampCache

LEVELS = ("debug", "info", "warn", "error", "fatal")
#: housekeeping counters shown at 0 before their first line (so increase() sees the first);
#: the lost-pieces ones for every satellite the node has transfers with
ZERO_HOUSE = (("gc_failures",), ("trash_empty_failures",))
ZERO_PER_SATELLITE = ("lost_pieces", "lost_pieces_failures")
SOURCE_STATS = ("bytes_read", "rotations", "truncations", "reconnects")


# ---- the series of a node, shared with collector._render --------------------------------------


def le_values(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The `le` label values of a histogram's buckets, as prometheus_client shows them."""
    return (*(repr(float(bound)) for bound in bounds), "+Inf")


def event_items(snap: dict) -> list[tuple[str, int]]:
    seen = snap["events"]
    return [(name, seen.get(name, 0)) for name in sorted({*EVENT_NAMES, *seen})]


def level_items(snap: dict) -> list[tuple[str, int]]:
    levels = snap["lines"]
    return [(level, levels.get(level, 0)) for level in sorted({*LEVELS, *levels})]


def house_items(snap: dict) -> list[tuple[tuple, float]]:
    """The housekeeping counters by (metric, *labels), with the ones shown at 0 added."""
    house = dict(snap["house"])
    for key in ZERO_HOUSE:
        house.setdefault(key, 0)
    for sat in {key[0] for key in snap["transfers"]} - {INVALID, OVERFLOW, UNKNOWN}:
        for metric in ZERO_PER_SATELLITE:
            house.setdefault((metric, sat), 0)
    return sorted(house.items())


def shown(metric: str, labels: Iterable[str],
          name: Callable[[str], str] = SATELLITES.name) -> list[str]:
    """Housekeeping label values as exposed: a satellite label by its `name`."""
    labels = list(labels)
    if METRICS[metric][3][:1] == ("satellite",):
        return [name(labels[0]), *labels[1:]]
    return labels


# ---- numbers and labels as prometheus_client writes them --------------------------------------


def number(value) -> str:
    """`floatToGoString(value)`, with ints written without a float() and repr(); a value that
    is not a finite number raises (the collector then leaves the node out, issue 12)."""
    if type(value) is int:
        if 0 <= value < 1_000_000:
            return f"{value}.0"
        if 0 < value < 10**15:  # exact as a float: Go's exponent form of its digits
            digits = str(value)
            return f"{(digits[0] + '.' + digits[1:]).rstrip('0.')}e+{len(digits) - 1:02d}"
    elif not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return floatToGoString(value)  # raises OverflowError for an int beyond a float


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def series(name: str, names: Iterable[str], values: Iterable[str]) -> str:
    """`name{labels} `: the part of a sample line before its value."""
    pairs = sorted(zip(names, values, strict=True))
    labels = ",".join([f'{k}="{_escape(str(v))}"' for k, v in pairs])
    return f"{name}{{{labels}}} " if labels else f"{name} "


class NodeText:
    """Writes one node's log families as text, keeping each series' label part between
    scrapes. Kept per node and state object: the label values of a state's keys never change,
    except a satellite's name, which the node API may learn later (checked every write). The
    kept parts are bounded by the state's keys (exporter/state.py caps them); the top pieces,
    whose IDs come and go, are not kept."""

    def __init__(self, node: str, template: dict[str, Metric]) -> None:
        self.node = node
        #: family key -> (sample name or histogram base name, label names after `node`)
        self._names = {key: (f.name + "_total" if f.type == "counter" else f.name,
                             tuple(f._labelnames[1:])) for key, f in template.items()}
        self._kept: dict[str, dict] = {key: {} for key in template}
        self._sats: dict[str, str] = {}  # satellite ID -> the name in the kept parts

    def write(self, snap: dict, stats, clock: TimestampCache) -> dict[str, str]:
        """Family key -> this node's sample lines, for the families it has samples of."""
        if any(SATELLITES.name(sat) != name for sat, name in self._sats.items()):
            self._kept = {key: {} for key in self._kept}  # a satellite got its name
            self._sats.clear()
        out: dict[str, list[str]] = {key: [] for key in self._kept}
        sat = self._sat
        by_sat = lambda k: (sat(k[0]), k[1], k[2])  # noqa: E731 - (satellite, action, result)
        self._counters(out, "transfers", sorted(snap["transfers"].items()), by_sat)
        moved = sorted(snap["bytes"].items())
        self._counters(out, "ingress", [kv for kv in moved if kv[0][1] in INGRESS_ACTIONS],
                       by_sat)
        self._counters(out, "egress", [kv for kv in moved if kv[0][1] not in INGRESS_ACTIONS],
                       by_sat)
        self._counters(out, "requested", sorted(snap.get("requested", {}).items()), by_sat)
        sizes = snap["sizes"]
        self._histograms(out, "sizes", [(a, sizes[a]) for a in ACTIONS], _one, SIZE_LE)
        self._histograms(out, "durations", sorted(snap["durations"].items()), _same,
                         DURATION_LE)
        self._counters(out, "errors", sorted(snap["errors"].items()), _same)
        in_flight = snap["in_flight"]
        self._counters(out, "in_flight", [(a, in_flight[a]) for a in ACTIONS], _one)
        self._counters(out, "expired", [((), snap["starts_expired"])], _same)
        self._counters(out, "events", event_items(snap), _one)
        out["top"] = [f"{self._part('top', (piece,))}{number(count)}\n"  # not kept: IDs churn
                      for piece, count in snap["top_pieces"]]
        self._counters(out, "lines", level_items(snap), _one)
        self._counters(out, "unparsed", [((), snap["unparsed"])], _same)
        self._counters(out, "up", [((), 1 if stats.up else 0)], _same)
        if snap["last_timestamp"]:
            when = clock(snap["last_timestamp"])
            if when is not None:
                self._counters(out, "last", [((), when)], _same)
        for stat in SOURCE_STATS:
            self._counters(out, f"source_{stat}", [((), getattr(stats, stat))], _same)
        self._counters(out, "oversized", [((), stats.oversized_lines)], _same)
        self._counters(out, "cancels", sorted(snap["cancel_reasons"].items()), _same)
        if snap["available_space"] is not None:
            self._counters(out, "available", [((), snap["available_space"])], _same)
        house = lambda k: shown(k[0], k[1:], sat)  # noqa: E731 - (metric, *labels)
        for key, value in house_items(snap):
            self._counters(out, f"house_{key[0]}", [(key, value)], house)
        for key, hist in sorted(snap["house_hists"].items()):
            self._histograms(out, f"house_{key[0]}", [(key, hist)], house, HOUSE_LE)
        return {key: "".join(lines) for key, lines in out.items() if lines}

    def _sat(self, sat: str) -> str:
        name = self._sats[sat] = SATELLITES.name(sat)
        return name

    def _part(self, family: str, values: Iterable[str]) -> str:
        name, names = self._names[family]
        return series(name, ("node", *names), (self.node, *values))

    def _counters(self, out: dict[str, list[str]], family: str, items: Iterable[tuple],
                  values: Callable[[tuple], Iterable[str]]) -> None:
        """Counter or gauge samples; `values(key)`: the label values after `node`."""
        kept = self._kept[family]
        lines = out[family]
        for key, value in items:
            part = kept.get(key)
            if part is None:
                part = kept[key] = self._part(family, values(key))
            if type(value) is int and 0 <= value < 1_000_000:
                lines.append(f"{part}{value}.0\n")
            else:
                lines.append(f"{part}{number(value)}\n")

    def _histograms(self, out: dict[str, list[str]], family: str, items: Iterable[tuple],
                    values: Callable[[tuple], Iterable[str]], les: tuple[str, ...]) -> None:
        """Histogram samples: cumulative buckets, then _count and _sum, as add_metric does."""
        kept = self._kept[family]
        lines = out[family]
        base, names = self._names[family]
        for key, (counts, total) in items:
            parts = kept.get(key)
            if parts is None:
                shown_values = list(values(key))
                buckets = tuple(
                    series(f"{base}_bucket", ("node", *names, "le"), (self.node, *shown_values, le))
                    for le in les)
                parts = kept[key] = (buckets,
                                     series(f"{base}_count", ("node", *names),
                                            (self.node, *shown_values)),
                                     series(f"{base}_sum", ("node", *names),
                                            (self.node, *shown_values)))
            buckets, count_part, sum_part = parts
            cumulative = list(accumulate(counts))
            pairs = zip(buckets, cumulative, strict=True)
            if (type(cumulative[-1]) is int and cumulative[-1] < 1_000_000
                    and min(cumulative) >= 0):
                lines.extend([f"{p}{c}.0\n" for p, c in pairs])
            else:
                lines.extend([f"{p}{number(c)}\n" for p, c in pairs])
            lines.append(f"{count_part}{number(cumulative[-1])}\n")
            lines.append(f"{sum_part}{number(total)}\n")


SIZE_LE = le_values(SIZE_BUCKETS)
DURATION_LE = le_values(DURATION_BUCKETS)
HOUSE_LE = le_values(HOUSE_BUCKETS)


def _same(key: tuple) -> tuple:
    return key


def _one(key: str) -> tuple[str]:
    return (key,)
