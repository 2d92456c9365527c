"""One node's log metrics written as exposition text straight from its snapshot (issue 15).

A node whose state changed between scrapes is written again. Through prometheus_client that
cost ~4-5 ms a node (a Sample tuple and a label dict per sample, `add_metric`, then the
formatting), most of a scrape of a busy fleet. `NodeText` writes the same bytes as
`generate_latest` of exporter/collector.py's families (tests/test_exposition.py checks every
fixture) without them, nor prometheus_client (it renders from exporter/families.py): the label
part of each series (`name{a="x",node="n1"} `, labels sorted by name, values escaped) is built
once per node and kept, so a sample costs one dict lookup and one number. The series themselves
(which events, levels and housekeeping counters are shown at 0) come from the helpers here,
shared with the families of `collect()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import accumulate

from exporter.events import EVENT_NAMES
from exporter.families import Family
from exporter.housekeeping import HOUSE_BUCKETS, METRICS
from exporter.satellites import INVALID, OVERFLOW, SATELLITES, UNKNOWN
from exporter.state import ACTIONS, DURATION_BUCKETS, INGRESS_ACTIONS, SIZE_BUCKETS
from exporter.tallies import TimestampCache

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


def le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The `le` labels of a histogram's bucket lines."""
    return tuple(f'le="{le}"' for le in le_values(bounds))


def events(snap: dict) -> dict[str, int]:
    """The event counters, every known event shown (at 0 before its first line)."""
    return {**dict.fromkeys(EVENT_NAMES, 0), **snap["events"]}


def levels(snap: dict) -> dict[str, int]:
    """The line counters by level, every level shown."""
    return {**dict.fromkeys(LEVELS, 0), **snap["lines"]}


def house(snap: dict) -> dict[tuple, float]:
    """The housekeeping counters by (metric, *labels), with the ones shown at 0 added."""
    house = dict(snap["house"])
    for key in ZERO_HOUSE:
        house.setdefault(key, 0)
    for sat in {key[0] for key in snap["transfers"]} - {INVALID, OVERFLOW, UNKNOWN}:
        for metric in ZERO_PER_SATELLITE:
            house.setdefault((metric, sat), 0)
    return house


def shown(metric: str, labels: Iterable[str],
          name: Callable[[str], str] = SATELLITES.name) -> list[str]:
    """Housekeeping label values as exposed: a satellite label by its `name`."""
    labels = list(labels)
    if METRICS[metric][3][:1] == ("satellite",):
        return [name(labels[0]), *labels[1:]]
    return labels


# ---- numbers and labels as prometheus_client writes them --------------------------------------


#: label templates kept for all nodes at most (bounded by the label values of the states)
SHARED_MAX = 100_000
_EXPONENT = tuple(f"e+{n - 1:02d}" for n in range(16))  # by the number of digits


def number(value) -> str:
    """`floatToGoString(value)`, without its float() and checks for the common ints and floats;
    a value that is not a finite number raises (the collector then leaves the node out)."""
    if type(value) is int:
        if 0 <= value < 1_000_000:
            return f"{value}.0"
        if 0 < value < 10**15:  # exact as a float: Go's exponent form of its digits
            digits = str(value)
            tail = digits[1:].rstrip("0")
            return f"{digits[0]}{'.' if tail else ''}{tail}{_EXPONENT[len(digits)]}"
    elif type(value) is float:
        if -math.inf < value < 1_000_000:  # finite, and repr() has no exponent to rewrite
            return repr(value)
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
    elif not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return go_float(value)  # raises OverflowError for an int beyond a float


def go_float(value) -> str:
    """`prometheus_client.utils.floatToGoString` (compared in tests/test_exposition.py), here so
    the text path needs no prometheus_client: Go's exponent form from 1e7 up (repr() has it
    from 1e16), `+Inf`, `-Inf`, `NaN`."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def escape(value: str) -> str:
    """A label value as the text format quotes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def template(name: str, labels: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
    """`name{labels} ` (labels sorted by name, values escaped) cut where a label's value is
    None (`node`, `le`): the texts before, between and after those labels."""
    cut, text = [], f"{name}{{"
    for i, (key, value) in enumerate(sorted(labels, key=lambda kv: kv[0])):
        if value is None:
            cut.append(text + ("," if i else ""))
            text = ""
        else:
            text += f'{"," if i else ""}{key}="{escape(str(value))}"'
    return (*cut, text + "} ")


def series_names(families: dict[str, Family]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Family key -> (its sample name, or a histogram's base name; label names after
    `node`), from exporter/families.py (their label order)."""
    return {key: (f.name + "_total" if f.type == "counter" else f.name, f.labels[1:])
            for key, f in families.items()}


def _in_actions(keys: Iterable[str]) -> tuple[str, ...]:
    return ACTIONS  # sizes and in-flight: every action, in this order (a missing one raises)


class NodeText:
    """Writes one node's log families as text, keeping each series' label part between
    scrapes, in the order the series are written: per family {key: part}, re-sorted only when
    the keys changed. Kept per node and state object: the label values of a state's keys never
    change, except a satellite's name, which the node API may learn later (checked every
    write). The kept parts are bounded by the state's keys (exporter/state.py caps them); of
    the top pieces, whose IDs come and go, only the current ones are kept."""

    def __init__(self, node: str, names: dict[str, tuple[str, tuple[str, ...]]],
                 shared: dict[tuple, tuple[str, ...]]) -> None:
        self.node = node
        self._label = f'node="{escape(node)}"'
        self._names = names  # series_names() of the families, shared by every node
        #: (family, label values but node) -> template(): the same for every node, so kept once
        self._shared = shared
        self._kept: dict[str, dict] = {key: {} for key in names}
        self._sats: dict[str, str] = {}  # satellite ID -> the name in the kept parts
        #: family -> (its values last written, that text): an unchanged family is not written
        #: again (equal numbers give equal text; -0.0 cannot come from a state)
        self._last: dict[str, tuple[dict, str]] = {}
        #: histogram family -> {key: ((counts, sum), text)}: the same per histogram
        self._last_hist: dict[str, dict] = {key: {} for key in names}

    def write(self, snap: dict, stats, clock: TimestampCache) -> dict[str, str]:
        """Family key -> this node's sample lines, for the families it has samples of."""
        if any(SATELLITES.name(sat) != name for sat, name in self._sats.items()):
            self._kept = {key: {} for key in self._kept}  # a satellite got its name
            self._last_hist = {key: {} for key in self._kept}
            self._last.clear()
            self._sats.clear()
        out: dict[str, str] = {}
        sat, counters, one = self._sat, self._counters, self._one
        by_sat = lambda k: (sat(k[0]), k[1], k[2])  # noqa: E731 - (satellite, action, result)
        counters(out, "transfers", snap["transfers"], by_sat)
        moved = snap["bytes"]
        counters(out, "ingress", {k: v for k, v in moved.items() if k[1] in INGRESS_ACTIONS},
                 by_sat)
        counters(out, "egress", {k: v for k, v in moved.items() if k[1] not in INGRESS_ACTIONS},
                 by_sat)
        counters(out, "requested", snap.get("requested", {}), by_sat)
        self._histograms(out, "sizes", snap["sizes"], _one, _SIZE_LABELS, _in_actions)
        self._histograms(out, "durations", snap["durations"], _same, _DURATION_LABELS)
        counters(out, "errors", snap["errors"], _same)
        counters(out, "in_flight", snap["in_flight"], _one, _in_actions)
        one(out, "expired", snap["starts_expired"])
        counters(out, "events", events(snap), _one)
        self._top(out, snap["top_pieces"])
        counters(out, "lines", levels(snap), _one)
        one(out, "unparsed", snap["unparsed"])
        one(out, "up", 1 if stats.up else 0)
        if snap["last_timestamp"]:
            when = clock(snap["last_timestamp"])
            if when is not None:
                one(out, "last", when)
        for stat in SOURCE_STATS:
            one(out, f"source_{stat}", getattr(stats, stat))
        one(out, "oversized", stats.oversized_lines)
        counters(out, "cancels", snap["cancel_reasons"], _same)
        if snap["available_space"] is not None:
            one(out, "available", snap["available_space"])
        shown_house = lambda k: shown(k[0], k[1:], sat)  # noqa: E731 - (metric, *labels)
        for metric, values in _by_metric(house(snap)).items():
            counters(out, f"house_{metric}", values, shown_house)
        for metric, hists in _by_metric(snap["house_hists"]).items():
            self._histograms(out, f"house_{metric}", hists, shown_house, _HOUSE_LABELS)
        return out

    def _sat(self, sat: str) -> str:
        name = self._sats[sat] = SATELLITES.name(sat)
        return name

    def _part(self, family: str, values: Iterable[str]) -> tuple[str, ...]:
        """The template of a series: (before, after) its node label."""
        values = tuple(values)
        part = self._shared.get((family, values))
        if part is None:
            if len(self._shared) > SHARED_MAX:
                self._shared.clear()
            name, names = self._names[family]
            part = self._shared[(family, values)] = template(
                name, [("node", None), *zip(names, values, strict=True)])
        return part

    def _order(self, family: str, mapping: dict, make: Callable[[object], object],
               order: Callable) -> dict:
        """The kept parts of a family for the keys of `mapping`, in exposition order."""
        kept = self._kept[family]
        kept = self._kept[family] = {
            key: kept[key] if key in kept else make(key) for key in order(mapping.keys())}
        return kept

    def _unchanged(self, out: dict[str, str], family: str, mapping: dict) -> bool:
        """Whether the family's values are the ones its last text was written from (then that
        text is used again)."""
        last = self._last.get(family)
        if last is None or last[0] != mapping:
            return False
        if last[1]:
            out[family] = last[1]
        return True

    def _counters(self, out: dict[str, str], family: str, mapping: dict,
                  values: Callable[[tuple], Iterable[str]], order: Callable = sorted) -> None:
        """Counter or gauge samples by key; `values(key)`: the label values after `node`."""
        if self._unchanged(out, family, mapping):
            return
        kept = self._kept[family]
        if kept.keys() != mapping.keys():
            kept = self._order(family, mapping, lambda k: self._part(family, values(k)), order)
        node = self._label
        text = "".join([
            f"{a}{node}{b}{v}.0\n" if type(v) is int and 0 <= v < 1_000_000
            else f"{a}{node}{b}{number(v)}\n"
            for (a, b), v in zip(kept.values(), map(mapping.__getitem__, kept), strict=True)])
        self._last[family] = (mapping, text)
        if text:
            out[family] = text

    def _one(self, out: dict[str, str], family: str, value) -> None:
        """The one sample of a family labelled by `node` only."""
        kept = self._kept[family]
        part = kept.get(())
        if part is None:
            part = kept[()] = self._part(family, ())
        out[family] = f"{part[0]}{self._label}{part[1]}{number(value)}\n"

    def _top(self, out: dict[str, str], top: list[tuple[str, int]]) -> None:
        """The top pieces: their IDs come and go, so only the current ones are kept, here."""
        kept = self._kept["top"]
        name, names = self._names["top"]
        kept = self._kept["top"] = {
            piece: kept.get(piece) or template(name, [("node", None), (names[0], piece)])
            for piece, _ in top}
        node = self._label
        if top:
            out["top"] = "".join([f"{kept[piece][0]}{node}{kept[piece][1]}{number(count)}\n"
                                  for piece, count in top])

    def _histograms(self, out: dict[str, str], family: str, mapping: dict,
                    values: Callable[[tuple], Iterable[str]], les: tuple[str, ...],
                    order: Callable = sorted) -> None:
        """Histogram samples: cumulative buckets, then _count and _sum, as add_metric does."""
        if self._unchanged(out, family, mapping):
            return
        last = self._last.get(family)
        kept = self._kept[family]
        if kept.keys() != mapping.keys():
            kept = self._order(family, mapping, lambda k: self._hist_parts(family, values(k)),
                               order)
        before = self._last_hist[family] if last is not None else {}
        previous = last[1] if last is not None else ""
        now, pieces, at = {}, [], 0
        for key, parts in kept.items():
            hist = mapping[key]
            old = before.get(key)
            if old is not None and old[0] == hist:  # unchanged: its text out of the last one
                piece = previous[old[1]:old[2]]
            else:
                piece = _histogram(parts, les, self._label, hist)
            now[key] = (hist, at, at + len(piece))
            at += len(piece)
            pieces.append(piece)
        self._last_hist[family] = now
        text = "".join(pieces)
        self._last[family] = (mapping, text)
        if text:
            out[family] = text

    def _hist_parts(self, family: str, values: Iterable[str]) -> tuple[tuple[str, ...], ...]:
        """The templates of a histogram's bucket lines (cut at le and node, in this order as
        "le" < "node"), of its _count and of its _sum line."""
        values = tuple(values)
        parts = self._shared.get((family, values))
        if parts is None:
            base, names = self._names[family]
            labels = [("node", None), *zip(names, values, strict=True)]
            parts = self._shared[(family, values)] = (
                template(f"{base}_bucket", [*labels, ("le", None)]),
                template(f"{base}_count", labels), template(f"{base}_sum", labels))
        return parts


SIZE_LE, DURATION_LE, HOUSE_LE = map(le_values, (SIZE_BUCKETS, DURATION_BUCKETS, HOUSE_BUCKETS))
_SIZE_LABELS, _DURATION_LABELS, _HOUSE_LABELS = map(
    le_labels, (SIZE_BUCKETS, DURATION_BUCKETS, HOUSE_BUCKETS))


def _histogram(parts: tuple[tuple[str, ...], ...], les: tuple[str, ...], node: str,
               hist: tuple[list, float]) -> str:
    """One histogram's lines from its templates, its `le` labels, the node label and
    (bucket counts, sum)."""
    (b0, b1, b2), (c0, c1), (s0, s1) = parts
    counts, total = hist
    cumulative = list(accumulate(counts))
    pairs = zip(les, cumulative, strict=True)
    count = cumulative[-1]
    if type(count) is int and count < 1_000_000 and min(cumulative) >= 0:
        lines = [f"{b0}{le}{b1}{node}{b2}{c}.0\n" for le, c in pairs]
        lines.append(f"{c0}{node}{c1}{count}.0\n")
    else:
        lines = [f"{b0}{le}{b1}{node}{b2}{number(c)}\n" for le, c in pairs]
        lines.append(f"{c0}{node}{c1}{number(count)}\n")
    lines.append(f"{s0}{node}{s1}{number(total)}\n")
    return "".join(lines)


def _by_metric(mapping: dict[tuple, object]) -> dict[str, dict[tuple, object]]:
    """Housekeeping keys (metric, *labels) grouped by metric."""
    out: dict[str, dict[tuple, object]] = {}
    for key, value in mapping.items():
        out.setdefault(key[0], {})[key] = value
    return out


def _same(key: tuple) -> tuple:
    return key


def _one(key: str) -> tuple[str]:
    return (key,)
