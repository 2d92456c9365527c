"""The /metrics body of a text-format scrape: the log families as text, then the registry.

prometheus_client spends ~13 µs a sample turning metric families into text; at 50 nodes
(~28k samples) that is most of a scrape. The log families are therefore written directly
(exporter/nodetext.py, one block per node and family that the collector keeps until that
node's state changes) in the byte-identical format of `prometheus_client.generate_latest`,
and joined here under their headers. The node API families are written as text too, each
node's block kept until its poll results change (exporter/nodeapi/text.py): while a text scrape
collects the registry (`writing_text()`), that collector yields its text as one `Prerendered`,
which `body()` puts where its families would be (after the process metrics). Everything else on
/metrics (build info, process, geo) still comes from the registry, and OpenMetrics-only clients
get prometheus_client's own path (exporter/http.py).
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

#: what Prometheus-text clients get (the type prometheus_client answers text/plain;version=0.0.4
#: with); OpenMetrics-only clients fall back to prometheus_client's own path (exporter/http.py)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
GZIP_LEVEL = 1  # ~6x faster than gzip's default 9 on a 2 MB exposition, ~15 % larger


_scrape = threading.local()


class Prerendered:
    """What a collector yields instead of its families during a text scrape: their text, as
    generate_latest writes them (kept by the collector while unchanged)."""

    __slots__ = ("data", "text")

    def __init__(self, text: str) -> None:
        self.text, self.data = text, text.encode()


def writing_text() -> bool:
    """Whether this thread collects the registry for body(): yield a Prerendered then."""
    return getattr(_scrape, "text", False)


@contextmanager
def _text_scrape() -> Iterator[None]:
    _scrape.text = True
    try:
        yield
    finally:
        _scrape.text = False


class _Families:
    """Collected families for generate_latest."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def rest(registry) -> bytes:
    """generate_latest(registry), with the Prerendered parts put where they were yielded."""
    parts, pending = [], []
    with _text_scrape():
        for family in registry.collect():
            if isinstance(family, Prerendered):
                parts.append(generate_latest(_Families(pending)))
                parts.append(family.data)
                pending = []
            else:
                pending.append(family)
    parts.append(generate_latest(_Families(pending)))
    return b"".join(parts)


def header(family: Metric) -> str:
    """The HELP and TYPE lines of a family, named as the text format names it."""
    name = family.name + "_total" if family.type == "counter" else family.name
    doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n"


def join(template: dict[str, Metric], blocks: Iterable[dict[str, str]]) -> str:
    """Every family's header once, then that family's block of each node, in node order."""
    blocks = list(blocks)
    out = []
    for key, family in template.items():
        out.append(header(family))
        out.extend(block[key] for block in blocks if key in block)
    return "".join(out)


def wants_text(accept: str | None) -> bool:
    """Whether the client takes the 0.0.4 text format (Prometheus always lists it; so do
    curl and browsers with */*). A client that asks for OpenMetrics only gets OpenMetrics."""
    if not accept:
        return True
    for part in accept.split(","):
        kind, *params = (p.strip().lower() for p in part.split(";"))
        if kind in ("text/plain", "*/*", "text/*"):
            for param in params:
                if param.startswith("q="):
                    try:
                        return float(param[2:]) > 0
                    except ValueError:
                        return False
            return True
    return False


class Gzip:
    """gzip of "log text + the rest" where the log text's deflated bytes are reused while it
    is unchanged (an idle fleet): the log part is deflated raw and ended with a full flush
    (byte-aligned, no back-references across it), the rest deflated by a fresh compressor, so
    the two concatenate into one valid deflate stream of one gzip member; the CRC of the whole
    is continued from the cached CRC of the log part."""

    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime

    def __init__(self) -> None:
        self._cached: tuple[str | None, bytes, int, int] = (None, b"", 0, 0)

    def compress(self, log: str, rest: bytes) -> bytes:
        """`log` is LogCollector.text(): the same object while no node changed."""
        text, deflated, crc, size = self._cached
        if text is not log:
            data = log.encode()
            raw = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
            deflated = raw.compress(data) + raw.flush(zlib.Z_FULL_FLUSH)
            crc, size = zlib.crc32(data), len(data)
            self._cached = (log, deflated, crc, size)
        raw = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        tail = raw.compress(rest) + raw.flush()
        trailer = struct.pack("<II", zlib.crc32(rest, crc), (size + len(rest)) & 0xFFFFFFFF)
        return b"".join((self.HEADER, deflated, tail, trailer))


def body(collector, registry, gz: Gzip | None) -> tuple[bytes, list[tuple[str, str]]]:
    """The /metrics body: the log families first (the LogCollector is registered first), then
    the rest of the registry (`rest`), collected while the LogCollector yields nothing. `gz`:
    gzip it."""
    log = collector.text()
    with collector.elsewhere():
        others = rest(registry)
    headers = [("Content-Type", CONTENT_TYPE)]
    if gz is None:
        return log.encode() + others, headers
    headers.append(("Content-Encoding", "gzip"))
    return gz.compress(log, others), headers
