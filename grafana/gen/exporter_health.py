"""Storj / Exporter health: can I trust the numbers?"""

from __future__ import annotations

from gen.common import (
    RI,
    UP_DOWN,
    N,
    q,
    steps,
)
from gen.panels import (
    NODE_VAR,
    dashboard,
    row,
    stat,
    timeseries,
)


def exporter_health() -> dict:
    job = 'job="storagenode"'
    items = [
        stat(
            "Exporter scrape",
            "Is Prometheus scraping the exporter (job storagenode)?",
            [q(f"min(up{{{job}}})")],
            mappings=UP_DOWN,
            color_mode="background",
            thresholds=steps((None, "red"), (1, "green")),
            w=6,
        ),
        stat(
            "Log sources up",
            "Readable or connected log sources.",
            [q(f"sum(storagenode_log_source_up{{{N}}})")],
            thresholds=steps((None, "red"), (1, "green")),
            w=6,
        ),
        stat(
            "Scrape duration",
            "How long the last scrape of the exporter took.",
            [q(f"max(scrape_duration_seconds{{{job}}})")],
            "s",
            thresholds=steps((None, "green"), (1, "orange"), (5, "red")),
            w=6,
            graph=True,
        ),
        stat(
            "Samples per scrape",
            "Samples exposed by the exporter (watch for label cardinality).",
            [q(f"sum(scrape_samples_scraped{{{job}}})")],
            w=6,
            graph=True,
        ),
        row("Log sources"),
        timeseries(
            "Log source up",
            "1 while the node's log is readable or the forwarder is connected.",
            [q(f"max by (node) (storagenode_log_source_up{{{N}}})", "{{node}}")],
            w=8,
            maximum=1,
            minimum=0,
        ),
        timeseries(
            "Lines parsed by level",
            "Parsed log lines per second.",
            [
                q(
                    f"sum by (level) (rate(storagenode_log_lines_total{{{N}}}[{RI}]))",
                    "{{level}}",
                )
            ],
            "cps",
            w=8,
        ),
        timeseries(
            "Unparsed and oversized lines",
            "Lines that are not storagenode log lines, and lines over the length limit.",
            [
                q(
                    f"sum by (node) (rate(storagenode_log_unparsed_lines_total{{{N}}}[{RI}]))",
                    "{{node}} unparsed",
                ),
                q(
                    f"sum by (node) (rate(storagenode_log_oversized_lines_total{{{N}}}[{RI}]))",
                    "{{node}} oversized",
                ),
            ],
            "cps",
            w=8,
        ),
        timeseries(
            "Log delay",
            "Now minus the timestamp of the newest parsed line.",
            [
                q(
                    f"time() - max by (node) (storagenode_log_last_line_timestamp_seconds{{{N}}})",
                    "{{node}}",
                )
            ],
            "s",
            w=8,
        ),
        timeseries(
            "Bytes read",
            "Bytes read from each log source per second.",
            [
                q(
                    f"sum by (node) (rate(storagenode_log_source_bytes_read_total{{{N}}}[{RI}]))",
                    "{{node}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Rotations, truncations, reconnects",
            "Rename rotations followed, copytruncate truncations and forwarder reconnects.",
            [
                q(
                    "sum by (node) (increase(storagenode_log_source_rotations_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} rotations",
                ),
                q(
                    "sum by (node) (increase(storagenode_log_source_truncations_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} truncations",
                ),
                q(
                    "sum by (node) (increase(storagenode_log_source_reconnects_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} reconnects",
                ),
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Unmatched transfer starts",
            "`started` lines dropped from the pairing table because no finished line came.",
            [
                q(
                    "sum by (node) (increase(storagenode_transfer_starts_expired_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}}",
                )
            ],
            bars=True,
            w=24,
        ),
        row("Node API"),
        timeseries(
            "API errors",
            "Failed or malformed answers of the node's dashboard API.",
            [
                q(
                    "sum by (node, endpoint) (increase(storagenode_api_errors_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} {{endpoint}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "API failures by reason",
            "The failures of API errors by reason: `timeout`, `connection` (refused, reset, "
            "DNS), `http_status` (not 200), `too_large` (over the body cap), `malformed` (not "
            "the expected JSON). A reason appears once it happened.",
            [
                q(
                    "sum by (node, endpoint, reason) (increase(storagenode_api_failures_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} {{endpoint}} {{reason}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "API request duration",
            "Duration of the last request per endpoint (the payout endpoint can be slow).",
            [
                q(
                    f"max by (node, endpoint) (storagenode_api_request_duration_seconds{{{N}}})",
                    "{{node}} {{endpoint}}",
                )
            ],
            "s",
        ),
        row("OTLP"),
        timeseries(
            "OTLP log export",
            "Nodes that push their logs over OTLP/HTTP (`NAME:otlp`, storagenode-modular "
            "v1.159+): export requests by outcome, log records applied per node, and records "
            "refused (no node attribute or path, unknown node). Only exported when an OTLP "
            "listener runs (docs/otlp.md).",
            [
                q(
                    f"sum by (result) (rate(storagenode_otlp_requests_total[{RI}]))",
                    "requests {{result}}",
                ),
                q(
                    f"sum by (node) (rate(storagenode_otlp_log_records_total{{{N}}}[{RI}]))",
                    "{{node}} records",
                ),
                q(
                    f"sum by (reason) (rate(storagenode_otlp_rejected_log_records_total[{RI}]))",
                    "rejected {{reason}}",
                ),
            ],
            "ops",
            w=24,
        ),
        row("Exporter process"),
        timeseries(
            "Scrape duration over time",
            "Time Prometheus needed to scrape the exporter.",
            [q(f"scrape_duration_seconds{{{job}}}", "{{instance}}")],
            "s",
            w=8,
        ),
        timeseries(
            "Exporter memory",
            "Resident memory of the exporter process.",
            [q(f"process_resident_memory_bytes{{{job}}}", "{{instance}}")],
            "bytes",
            w=8,
        ),
        timeseries(
            "Exporter CPU",
            "CPU seconds per second used by the exporter process.",
            [q(f"rate(process_cpu_seconds_total{{{job}}}[{RI}])", "{{instance}}")],
            "percentunit",
            w=8,
        ),
        row("Versions and sources"),
        stat(
            "Exporter version",
            "Version of storagenode-exporter and whether its compiled hot path is in use.",
            [
                q(
                    "max by (version, hotpath) (storagenode_exporter_build_info)",
                    "{{version}} ({{hotpath}})",
                    instant=True,
                )
            ],
            text_mode="name",
            color_mode="none",
            w=6,
        ),
        timeseries(
            "Since the last successful API poll",
            "Per node and endpoint: time since the node API last answered.",
            [
                q(
                    "time() - max by (node, endpoint) "
                    f"(storagenode_api_last_success_timestamp_seconds{{{N}}})",
                    "{{node}} {{endpoint}}",
                )
            ],
            "s",
            w=6,
        ),
        stat(
            "GeoIP database age",
            "Days since the GeoIP database was built; an old one places addresses wrongly.",
            [
                q(
                    "(time() - max by (database) "
                    "(storagenode_geo_database_build_timestamp_seconds)) / 86400",
                    "{{database}}",
                )
            ],
            "d",
            w=6,
            thresholds=steps((None, "green"), (45, "orange"), (90, "red")),
            decimals=0,
        ),
        timeseries(
            "GeoIP database reload failures",
            "Failed reloads of a changed GeoIP database per second (the old one stays in use).",
            [
                q(
                    "sum by (database) "
                    f"(rate(storagenode_geo_database_reload_failures_total[{RI}]))",
                    "{{database}}",
                )
            ],
            w=6,
        ),
    ]
    return dashboard(
        "storj-exporter-health",
        "Storj / Exporter health",
        "Is the exporter itself healthy: log sources, unparsed lines, rotations and "
        "reconnects, node API errors and latency, scrape duration and resources.",
        [NODE_VAR],
        items,
    )
