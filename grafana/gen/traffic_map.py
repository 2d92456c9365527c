"""Storj / Traffic map: where does the traffic come from?"""

from __future__ import annotations

from gen.common import (
    GAUGE_CELL,
    NA,
    RI,
    YES_NO,
    N,
    q,
    steps,
    table_q,
)
from gen.panels import (
    ACTION_VAR,
    NODE_VAR,
    bargauge,
    dashboard,
    geomap,
    stat,
    table,
    text,
    timeseries,
)


def traffic_map() -> dict:
    geo = f'{NA}, geohash!=""'
    items = [
        text(
            "About this map",
            "Where the selected nodes' customers and repair workers are, from the remote "
            "address of each finished transfer located with the GeoIP database given to the "
            "exporter (`--geoip-db`). Markers are geohash cells (precision 3 by default, about "
            "150 km) counted over the exporter's sliding geo window (10 minutes by default); "
            "marker size and colour follow the value. No IP address is stored or exported.",
        ),
        geomap(
            "Transfers by region",
            "Finished transfers in the geo window by geohash cell.",
            table_q(f"sum by (geohash) (storagenode_geo_transfers{{{geo}}})"),
            "short",
            location={"mode": "geohash", "geohash": "geohash"},
            layer_name="Transfers",
        ),
        geomap(
            "Bytes by region",
            "Bytes transferred in the geo window by geohash cell.",
            table_q(f"sum by (geohash) (storagenode_geo_bytes{{{geo}}})"),
            "bytes",
            location={"mode": "geohash", "geohash": "geohash"},
            layer_name="Bytes",
        ),
        geomap(
            "Transfers by country",
            "Finished transfers in the geo window by country (ISO 3166 code, Grafana's "
            "built-in countries gazetteer).",
            table_q(f'sum by (country) (storagenode_geo_transfers{{{NA}, country!=""}})'),
            "short",
            location={
                "mode": "lookup",
                "lookup": "country",
                "gazetteer": "public/gazetteer/countries.json",
            },
            layer_name="Countries",
        ),
        table(
            "Bytes by country",
            "Bytes transferred in the geo window by country.",
            [table_q(f'sum by (country) (storagenode_geo_bytes{{{NA}, country!=""}})')],
            "bytes",
            h=14,
            rename={"country": "Country", "Value": "Bytes"},
            sort_by="Bytes",
            cell=GAUGE_CELL,
        ),
        bargauge(
            "Top regions",
            "Geohash cells with the most bytes in the geo window.",
            [
                q(
                    f"topk(15, sum by (geohash, country) (storagenode_geo_bytes{{{geo}}}))",
                    "{{country}} {{geohash}}",
                    instant=True,
                )
            ],
            "bytes",
            h=10,
        ),
        bargauge(
            "Top countries by transfers",
            "Countries with the most finished transfers in the geo window.",
            [
                q(
                    f'topk(15, sum by (country) (storagenode_geo_transfers{{{NA}, country!=""}}))',
                    "{{country}}",
                    instant=True,
                )
            ],
            h=10,
        ),
        timeseries(
            "Transfers in the geo window by action",
            "Finished transfers counted in the sliding geo window.",
            [q(f"sum by (action) (storagenode_geo_transfers{{{NA}}})", "{{action}}")],
        ),
        timeseries(
            "Countries seen",
            "Number of distinct countries in the geo window.",
            [
                q(
                    f'count(count by (country) (storagenode_geo_transfers{{{NA}, country!=""}}))',
                    "countries",
                )
            ],
        ),
        stat(
            "Docker proxy suspected",
            "Yes when most peers come from one private address: Docker's userland proxy hides "
            "the real addresses, so the map cannot place them.",
            [q(f"max by (node) (storagenode_geo_docker_proxy_suspected{{{N}}})", "{{node}}")],
            mappings=YES_NO,
            thresholds=steps((None, "green"), (1, "orange")),
            text_mode="value_and_name",
            w=8,
        ),
        stat(
            "Private addresses",
            "Share of transfers from private or local addresses, which have no location.",
            [q(f"max by (node) (storagenode_geo_private_traffic_ratio{{{N}}})", "{{node}}")],
            "percentunit",
            text_mode="value_and_name",
            w=8,
        ),
        timeseries(
            "Transfers over the geo cell limit",
            "Transfers counted in the overflow cell because the geo window was full.",
            [q(f"sum(rate(storagenode_geo_overflow_transfers_total{{{N}}}[{RI}]))", "transfers")],
            w=8,
        ),
    ]
    return dashboard(
        "storj-traffic-map",
        "Storj / Traffic map",
        "Where traffic comes from: world maps of transfers and bytes by geohash cell and by "
        "country, per action. Needs --geoip-db (docs/geo.md). With a DB-IP database: IP "
        "Geolocation by DB-IP (https://db-ip.com).",
        [NODE_VAR, ACTION_VAR],
        items,
    )
