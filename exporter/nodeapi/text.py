"""The node API families of one node written as text, kept until its poll results change.

Through prometheus_client an idle scrape of 50 `--api` nodes cost ~570 ms (~16k samples
made into metric families and formatted again on every scrape), though the values change only
when a poll lands (every 60 s and slower per endpoint). `NodeApiCollector.text`
(collector.py) runs the same renderers as `collect()` over a `NodeBlock`, whose families write
each sample line as `generate_latest` would, keeps the block while the node's snapshot, the
satellite names it shows and the wallet label are unchanged, and `join`s the blocks as
`generate_latest` orders `collect()`'s families (tests/test_nodeapi_text.py compares them).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter.families import header
from exporter.nodetext import number

_HEADERS: dict[tuple[str, str, str], str] = {}  # (name, help, type) -> the HELP/TYPE lines
_ESCAPED: dict[str, str] = {}  # label value -> escaped (nodes, satellites, periods, kinds...)
_ESCAPED_MAX = 10_000


def _escape(value: str) -> str:
    escaped = _ESCAPED.get(value)
    if escaped is None:
        if len(_ESCAPED) > _ESCAPED_MAX:
            _ESCAPED.clear()
        escaped = _ESCAPED[value] = (
            value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\""))
    return escaped


def _number(value) -> str:
    """floatToGoString (NaN, +Inf and -Inf too, as generate_latest writes them)."""
    try:
        return number(value)
    except ValueError:
        return floatToGoString(value)


class TextFamily:
    """Stands in for a Gauge/CounterMetricFamily in the collector's renderers: `add_metric`
    writes the sample line. A second sample with the same labels is dropped, as
    collector._Gauge does (one family here holds one node's samples, and node names are
    unique, so the same samples are dropped)."""

    __slots__ = ("_order", "_sample", "_seen", "header", "lines")

    def __init__(self, name: str, documentation: str, labels: Iterable[str],
                 kind: str = "gauge") -> None:
        key = (name, documentation, kind)
        if key not in _HEADERS:
            _HEADERS[key] = header(Metric(name, documentation, kind))
        self.header = _HEADERS[key]
        self._sample = name + "_total" if kind == "counter" else name
        #: (position of the label in add_metric's values, `name="`), sorted by label name
        self._order = sorted(((i, f'{label}="') for i, label in enumerate(labels)),
                             key=lambda item: item[1])
        self.lines: list[str] = []
        self._seen: set[tuple[str, ...]] = set()

    def add_metric(self, labels, value, timestamp=None) -> None:
        key = tuple(labels)
        if key in self._seen:
            return
        self._seen.add(key)
        if len(key) != len(self._order):
            raise ValueError(f"{self._sample}: {len(key)} label values for {len(self._order)}")
        pairs = '",'.join([f"{name}{_escape(key[i])}" for i, name in self._order])
        label_part = f'{{{pairs}"}}' if pairs else ""
        self.lines.append(f"{self._sample}{label_part} {_number(value)}\n")

    @property
    def text(self) -> str:
        return "".join(self.lines)


class Part:
    """The families one of the collector's renderers wrote for a node, kept under `key`, what
    that renderer read (collector.py): a poll that changes the node document leaves the
    payout part, most of a node's samples, as it was. Families in the order the renderer
    first asked for them, an empty one too (as in collect(), that fixes where the family first
    appears in the scrape); `families`: ones made up front, in this order (the poller's own).
    The renderers of a node write disjoint families, so dropping a duplicate sample within a
    part drops what collect() drops."""

    def __init__(self, key: tuple,
                 families: Iterable[tuple[str, str, list[str], str]] = ()) -> None:
        self.key = key
        self.failed = False  # the renderer raised: the parts after it are not written
        self.families = {name: TextFamily(name, doc, labels, kind)
                         for name, doc, labels, kind in families}
        self.headers: dict[str, str] = {}  # family -> its HELP/TYPE lines, in order
        self.texts: dict[str, str] = {}  # family -> the node's sample lines, if any

    def gauge(self, name: str, documentation: str, labels: list[str]) -> TextFamily:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = TextFamily(name, documentation, labels)
        return family

    def done(self) -> Part:
        """Keep only the text (the line lists and label sets go)."""
        for name, family in self.families.items():
            self.headers[name] = family.header
            if family.lines:
                self.texts[name] = family.text
        self.families = {}
        return self


class NodeBlock:
    """One node's text: its parts in the order they were written, then the poller's own
    families (`api`, after every other family in a scrape). `key` and `names`: the snapshot
    and the satellite names it was written from (collector.py)."""

    def __init__(self, key: tuple, names: tuple[tuple[str, str], ...], parts: list[Part],
                 api: Part) -> None:
        self.key, self.names, self.parts = key, names, parts
        self.headers: dict[str, str] = {}  # main family -> its HELP/TYPE lines
        self.api_headers = api.headers
        self.texts: dict[str, str] = {}
        for part in parts:
            for name, head in part.headers.items():
                self.headers.setdefault(name, head)
            for name, text in part.texts.items():
                self.texts[name] = self.texts.get(name, "") + text
        self.texts.update(api.texts)


def join(blocks: list[NodeBlock]) -> str:
    """The text generate_latest gives for collect()'s families: every family with a sample,
    in the order of first appearance over the nodes (the api families, last in every block,
    after all others), its header once, then its samples of each node in node order."""
    main: dict[str, str] = {}
    api: dict[str, str] = {}
    for block in blocks:
        for name, head in block.headers.items():
            main.setdefault(name, head)
        for name, head in block.api_headers.items():
            api.setdefault(name, head)
    out: list[str] = []
    for name, head in (*main.items(), *api.items()):
        texts = [text for block in blocks if (text := block.texts.get(name))]
        if texts:
            out.append(head)
            out.extend(texts)
    return "".join(out)
