"""The /metrics body of a text-format scrape: the log families as text, then the registry.

prometheus_client spends ~13 µs a sample turning metric families into text; at 50 nodes
(~28k samples) that is most of a scrape. The log families are therefore written directly
(exporter/nodetext.py, one block per node and family that the collector keeps until that
node's state changes) in the byte-identical format of `prometheus_client.generate_latest`,
and joined under their headers (exporter/families.py). The node API families are written as
text too, each node's block kept until its poll results change (exporter/nodeapi/text.py):
while a text scrape collects the registry (`writing_text()`), that collector yields its text as
one `Prerendered`, which `body()` puts where its families would be (after the process metrics).
Everything else on /metrics (build info, process, geo) still comes from the registry, and
OpenMetrics-only clients get prometheus_client's own path (exporter/http.py).
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
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


def parts(registry) -> list[bytes | Prerendered]:
    """generate_latest(registry) in parts: the text of the families between Prerendered
    ones, and those where they were yielded."""
    out: list[bytes | Prerendered] = []
    pending: list[Metric] = []
    with _text_scrape():
        for family in registry.collect():
            if isinstance(family, Prerendered):
                out.extend((generate_latest(_Families(pending)), family))
                pending = []
            else:
                pending.append(family)
    out.append(generate_latest(_Families(pending)))
    return out


def rest(registry) -> bytes:
    """generate_latest(registry), with the Prerendered texts put where they were yielded."""
    return b"".join(p.data if isinstance(p, Prerendered) else p for p in parts(registry))


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
    """gzip of "log text + the rest" where the deflated bytes of the log text and of each
    Prerendered part are reused while that part is unchanged (an idle fleet): every part is
    deflated raw and ended with a full flush (byte-aligned, no back-references across it), so
    the parts and a final empty block concatenate into one valid deflate stream of one gzip
    member; the CRC of the whole is continued from the cached CRC of the log part."""

    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime

    def __init__(self) -> None:
        self._cached: tuple[str | None, bytes, int, int] = (None, b"", 0, 0)
        self._kept: dict[int, tuple[Prerendered, bytes]] = {}  # id -> (part, deflated)

    def compress(self, log: str, rest: bytes | list[bytes | Prerendered]) -> bytes:
        """`log` is LogCollector.text(): the same object while no node changed; `rest` the
        bytes after it or their `parts()`."""
        text, deflated, crc, size = self._cached
        if text is not log:
            data = log.encode()
            deflated = _deflated(data)
            crc, size = zlib.crc32(data), len(data)
            self._cached = (log, deflated, crc, size)
        out, kept = [self.HEADER, deflated], {}
        for part in [rest] if isinstance(rest, bytes) else rest:
            if isinstance(part, Prerendered):
                data, hit = part.data, self._kept.get(id(part))
                if hit is None or hit[0] is not part:
                    hit = (part, _deflated(data))
                kept[id(part)] = hit
                out.append(hit[1])
            else:
                data = part
                out.append(_deflated(data))
            crc, size = zlib.crc32(data, crc), size + len(data)
        self._kept = kept
        out.append(zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush())
        out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(out)


def _deflated(data: bytes) -> bytes:
    """Raw deflate of `data` ended with a full flush: a stream's part that others may follow."""
    raw = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(data) + raw.flush(zlib.Z_FULL_FLUSH)


def body(collector, registry, gz: Gzip | None) -> tuple[bytes, list[tuple[str, str]]]:
    """The /metrics body: the log families first (the LogCollector is registered first), then
    the rest of the registry (`parts`), collected while the LogCollector yields nothing. `gz`:
    gzip it."""
    log = collector.text()
    with collector.elsewhere():
        others = parts(registry)
    headers = [("Content-Type", CONTENT_TYPE)]
    if gz is None:
        return b"".join([log.encode(), *(p.data if isinstance(p, Prerendered) else p
                                         for p in others)]), headers
    headers.append(("Content-Encoding", "gzip"))
    return gz.compress(log, others), headers
