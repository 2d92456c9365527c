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

from exporter.exposition import header

_HEADERS: dict[tuple[str, str, str], str] = {}  # (name, help, type) -> the HELP/TYPE lines


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class TextFamily:
    """Stands in for a Gauge/CounterMetricFamily in the collector's renderers: `add_metric`
    writes the sample line. A second sample with the same labels is dropped, as
    collector._Gauge does (one family here holds one node's samples, and node names are
    unique, so the same samples are dropped)."""

    __slots__ = ("_labels", "_sample", "_seen", "header", "lines")

    def __init__(self, name: str, documentation: str, labels: Iterable[str],
                 kind: str = "gauge") -> None:
        key = (name, documentation, kind)
        if key not in _HEADERS:
            _HEADERS[key] = header(Metric(name, documentation, kind))
        self.header = _HEADERS[key]
        self._sample = name + "_total" if kind == "counter" else name
        self._labels = list(labels)
        self.lines: list[str] = []
        self._seen: set[tuple[str, ...]] = set()

    def add_metric(self, labels, value, timestamp=None) -> None:
        key = tuple(labels)
        if key in self._seen:
            return
        self._seen.add(key)
        pairs = ",".join(f'{name}="{_escape(v)}"' for name, v in
                         sorted(zip(self._labels, key, strict=True)))
        label_part = f"{{{pairs}}}" if pairs else ""
        self.lines.append(f"{self._sample}{label_part} {floatToGoString(value)}\n")

    @property
    def text(self) -> str:
        return "".join(self.lines)


class NodeBlock:
    """One node's families while its renderers run: `main` in the order they first asked for
    them (an empty one too: as in collect(), that fixes where the family first appears in the
    scrape), then the poller's own `api` families, in a fixed order. `done()` keeps only the
    text. `key` and `names`: what it was written from (collector.py)."""

    def __init__(self, key: tuple, api: Iterable[tuple[str, str, list[str], str]]) -> None:
        self.key = key
        self.names: tuple[tuple[str, str], ...] = ()  # (satellite ID, the name shown)
        self.main: dict[str, TextFamily] = {}
        self.api = {name: TextFamily(name, doc, labels, kind) for name, doc, labels, kind in api}
        self.headers: dict[str, str] = {}  # main family -> its HELP/TYPE lines
        self.api_headers: dict[str, str] = {}  # the same of the api families
        self.texts: dict[str, str] = {}  # family -> this node's sample lines, if any

    def gauge(self, name: str, documentation: str, labels: list[str]) -> TextFamily:
        family = self.main.get(name)
        if family is None:
            family = self.main[name] = TextFamily(name, documentation, labels)
        return family

    def done(self) -> NodeBlock:
        for families, headers in ((self.main, self.headers), (self.api, self.api_headers)):
            for name, family in families.items():
                headers[name] = family.header
                if family.lines:
                    self.texts[name] = family.text
        self.main, self.api = {}, {}
        return self


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
