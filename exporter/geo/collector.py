"""Every node's geo window at scrape time: as prometheus_client families (`collect`) or as the
text generate_latest writes of them (`text`, for `report --geoip-db`, which then needs no
prometheus_client). Both come from one list of (Family, samples)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from exporter.families import Family, header
from exporter.nodetext import escape, go_float

from .recorder import GeoRecorder

_GEO_LABELS = ("node", "action", "geohash", "country")
TRANSFERS = Family(
    "storagenode_geo_transfers", "gauge",
    "Finished transfers in the sliding geo window, by peer location (geohash cell, ISO country; "
    "country private/unknown/other for non-public, unlocated, overflow).", _GEO_LABELS)
BYTES = Family("storagenode_geo_bytes", "gauge",
               "Bytes of the finished transfers in the sliding geo window, by peer location.",
               _GEO_LABELS)
RATIO = Family("storagenode_geo_private_traffic_ratio", "gauge",
               "Share of the transfers in the geo window that came from private addresses.",
               ("node",))
PROXY = Family(
    "storagenode_geo_docker_proxy_suspected", "gauge",
    "1 if nearly all transfers in the geo window come from one private address (Docker "
    "userland proxy: use host networking or userland-proxy false).", ("node",))
OVERFLOW = Family(
    "storagenode_geo_overflow_transfers", "counter",
    'Transfers counted under country="other" because the per-node key limit was hit.',
    ("node",))
BUILD = Family(
    "storagenode_geo_database_build_timestamp_seconds", "gauge",
    "Build time of the GeoIP database in use (GeoLite2's licence requires keeping it current).",
    ("database", "database_type"))
RELOAD_FAILURES = Family(
    "storagenode_geo_database_reload_failures", "counter",
    "Replaced GeoIP database files that could not be opened (the old one stays in use).",
    ("database",))

Samples = list[tuple[tuple[str, ...], float]]


class GeoCollector:
    """Yields storagenode_geo_transfers / storagenode_geo_bytes (labels node, action, geohash,
    country) plus the Docker-proxy detection and database health metrics. Label sets of buckets
    that left the window simply are not yielded any more."""

    def __init__(self, recorders: dict[str, GeoRecorder]) -> None:
        self.recorders = recorders

    def describe(self) -> list:
        return []  # no collection at registration time

    def collect(self) -> Iterator:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for family, samples in self.families():
            kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
            metric = kind(family.name, family.documentation, labels=family.labels)
            for labels, value in samples:
                metric.add_metric(labels, value)
            yield metric

    def text(self) -> str:
        """What generate_latest writes of `collect()`'s families."""
        return "".join(_family_text(family, samples) for family, samples in self.families())

    def families(self) -> list[tuple[Family, Samples]]:
        transfers: Samples = []
        nbytes: Samples = []
        ratio: Samples = []
        proxy: Samples = []
        overflow: Samples = []
        locators = {}
        for node, rec in list(self.recorders.items()):
            counts, private_ratio, suspected = rec.snapshot()
            for (action, geohash, country), (n, b) in counts.items():
                labels = (node, action, geohash, country)
                transfers.append((labels, n))
                nbytes.append((labels, b))
            ratio.append(((node,), private_ratio))
            proxy.append(((node,), 1.0 if suspected else 0.0))
            overflow.append(((node,), rec.overflowed))
            locators[id(rec.locator)] = rec.locator
        out = [(TRANSFERS, transfers), (BYTES, nbytes), (RATIO, ratio), (PROXY, proxy),
               (OVERFLOW, overflow)]
        if locators:
            out.extend(_database_families(locators.values()))
        return out


def _database_families(locators: Iterable) -> list[tuple[Family, Samples]]:
    build: Samples = []
    failures: Samples = []
    for loc in locators:
        name = os.path.basename(loc.path)
        build.append(((name, loc.database_type), loc.build_epoch))
        failures.append(((name,), loc.reload_failures))
    return [(BUILD, build), (RELOAD_FAILURES, failures)]


def _family_text(family: Family, samples: Samples) -> str:
    """generate_latest's text of one family: labels sorted by name, a counter's samples
    named `_total`."""
    name = family.name + "_total" if family.type == "counter" else family.name
    lines = [header(family)]
    for labels, value in samples:
        pairs = ",".join(f'{k}="{escape(v)}"'
                         for k, v in sorted(zip(family.labels, labels, strict=True)))
        lines.append(f"{name}{{{pairs}}} {go_float(value)}\n")
    return "".join(lines)
