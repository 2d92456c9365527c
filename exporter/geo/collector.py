"""prometheus_client collector rendering every node's geo window at scrape time."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .recorder import GeoRecorder

_GEO_LABELS = ["node", "action", "geohash", "country"]


class GeoCollector:
    """Yields storagenode_geo_transfers / storagenode_geo_bytes (labels node, action, geohash,
    country) plus the Docker-proxy detection and database health metrics. Label sets of buckets
    that left the window simply are not yielded any more."""

    def __init__(self, recorders: dict[str, GeoRecorder]) -> None:
        self.recorders = recorders

    def describe(self) -> list[Metric]:
        return []  # no collection at registration time

    def collect(self) -> Iterator[Metric]:
        transfers = GaugeMetricFamily(
            "storagenode_geo_transfers",
            "Finished transfers in the sliding geo window, by peer location (geohash cell, "
            "ISO country; country private/unknown/other for non-public, unlocated, overflow).",
            labels=_GEO_LABELS,
        )
        nbytes = GaugeMetricFamily(
            "storagenode_geo_bytes",
            "Bytes of the finished transfers in the sliding geo window, by peer location.",
            labels=_GEO_LABELS,
        )
        ratio = GaugeMetricFamily(
            "storagenode_geo_private_traffic_ratio",
            "Share of the transfers in the geo window that came from private addresses.",
            labels=["node"],
        )
        proxy = GaugeMetricFamily(
            "storagenode_geo_docker_proxy_suspected",
            "1 if nearly all transfers in the geo window come from one private address (Docker "
            "userland proxy: use host networking or userland-proxy false).",
            labels=["node"],
        )
        overflow = CounterMetricFamily(
            "storagenode_geo_overflow_transfers",
            'Transfers counted under country="other" because the per-node key limit was hit.',
            labels=["node"],
        )
        locators = {}
        for node, rec in list(self.recorders.items()):
            counts, private_ratio, suspected = rec.snapshot()
            for (action, geohash, country), (n, b) in counts.items():
                labels = [node, action, geohash, country]
                transfers.add_metric(labels, n)
                nbytes.add_metric(labels, b)
            ratio.add_metric([node], private_ratio)
            proxy.add_metric([node], 1.0 if suspected else 0.0)
            overflow.add_metric([node], rec.overflowed)
            locators[id(rec.locator)] = rec.locator
        yield from (transfers, nbytes, ratio, proxy, overflow)
        if locators:
            yield from _database_metrics(locators.values())


def _database_metrics(locators) -> Iterator[Metric]:
    build = GaugeMetricFamily(
        "storagenode_geo_database_build_timestamp_seconds",
        "Build time of the GeoIP database in use (GeoLite2's licence requires keeping it current).",
        labels=["database", "database_type"],
    )
    failures = CounterMetricFamily(
        "storagenode_geo_database_reload_failures",
        "Replaced GeoIP database files that could not be opened (the old one stays in use).",
        labels=["database"],
    )
    for loc in locators:
        name = os.path.basename(loc.path)
        build.add_metric([name, loc.database_type], loc.build_epoch)
        failures.add_metric([name], loc.reload_failures)
    yield build
    yield failures
