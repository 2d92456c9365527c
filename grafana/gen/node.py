"""Storj / Node: what is this node doing, and what goes wrong?"""

from __future__ import annotations

from gen.common import (
    COLOR_CELL,
    NS,
    RANGE,
    RATE_STEPS,
    RI,
    UP_DOWN,
    N,
    q,
    steps,
    success_ratio,
    table_q,
)
from gen.housekeeping import housekeeping_row, lost_pieces_stat
from gen.panels import (
    ONE_NODE_VAR,
    SATELLITE_VAR,
    bargauge,
    dashboard,
    heatmap,
    row,
    stat,
    table,
    timeseries,
)


def node() -> dict:
    ev = f"sum by (event) (increase(storagenode_events_total{{{N}, event=~"
    items = [
        row("Status"),
        stat(
            "Node API",
            "Was the last poll of the node's dashboard API successful?",
            [q(f"min(storagenode_up{{{N}}})")],
            mappings=UP_DOWN,
            color_mode="background",
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            "Version",
            "Version reported by the node API.",
            [q(f"max by (version) (storagenode_info{{{N}}})", "{{version}}", instant=True)],
            text_mode="name",
            color_mode="none",
        ),
        stat(
            "QUIC",
            "Is QUIC reachable according to the node?",
            [q(f"min(storagenode_quic_ok{{{N}}})")],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "misconfigured", "color": "orange", "index": 0},
                        "1": {"text": "OK", "color": "green", "index": 1},
                    },
                }
            ],
            color_mode="background",
            thresholds=steps((None, "orange"), (1, "green")),
        ),
        stat(
            "Last satellite contact",
            "Time since the node was last pinged by a satellite (the most recent ping of any "
            "satellite).",
            [q(f"max(time() - max by (node) (storagenode_last_pinged_timestamp_seconds{{{N}}}))")],
            "s",
            thresholds=steps((None, "green"), (3600, "orange"), (4 * 3600, "red")),
        ),
        stat(
            "Newest log line",
            "Age of the newest parsed log line (stale logs mean a stopped node or a broken "
            "log source).",
            [
                q(
                    "max(time() - max by (node) "
                    f"(storagenode_log_last_line_timestamp_seconds{{{N}}}))"
                )
            ],
            "s",
            thresholds=steps((None, "green"), (600, "orange"), (3600, "red")),
        ),
        stat(
            "Transfers in flight",
            "Started transfers without a finished line yet (needs debug logs).",
            [q(f"sum(storagenode_transfers_in_flight{{{N}}})")],
            graph=True,
        ),
        lost_pieces_stat(),
        stat(
            "Available space",
            "Space left for pieces: the node's own view from the newest `upload started` line "
            "(updated with every upload; DEBUG level since v1.116), and the node API's free "
            "space (polled every minute).",
            [
                q(f"max(storagenode_available_space_bytes{{{N}}})", "log (upload started)"),
                q(f"max(storagenode_disk_free_bytes{{{N}}})", "node API (free)"),
            ],
            "bytes",
            text_mode="value_and_name",
            color_mode="none",
            w=12,
        ),
        row("Transfers"),
        timeseries(
            "Transfers by action and result",
            "Finished piece transfers per second.",
            [
                q(
                    f"sum by (action, result) (rate(storagenode_transfers_total{{{NS}}}[{RI}]))",
                    "{{action}} {{result}}",
                )
            ],
            "ops",
        ),
        timeseries(
            "Success rate by action",
            "Share of finished transfers that succeeded.",
            [q(success_ratio(NS, "action", RI), "{{action}}")],
            "percentunit",
            maximum=1,
        ),
        table(
            "Success rate by satellite and action",
            "Successful / all finished transfers in the time range.",
            [table_q(success_ratio(NS, "satellite, action", RANGE))],
            "percentunit",
            rename={"satellite": "Satellite", "action": "Action", "Value": "Success rate"},
            thresholds=RATE_STEPS,
            cell=COLOR_CELL,
            decimals=2,
        ),
        bargauge(
            "Transfers by satellite",
            "Finished transfers per satellite in the time range.",
            [
                q(
                    "round(sum by (satellite) "
                    f"(increase(storagenode_transfers_total{{{NS}}}[{RANGE}])))",
                    "{{satellite}}",
                    instant=True,
                )
            ],
        ),
        timeseries(
            "Canceled and failed by satellite",
            "Transfers per second that did not succeed. `unknown`: the line names no "
            "satellite (v0.x lines, a v1.86-v1.98 race-lost cancel whose started line the "
            "exporter did not see; those also have action `unknown`).",
            [
                q(
                    "sum by (satellite, result) (rate(storagenode_transfers_total"
                    f'{{{NS}, result!="success"}}[{RI}]))',
                    "{{satellite}} {{result}}",
                )
            ],
            "ops",
            w=24,
        ),
        row("Ingress and egress"),
        timeseries(
            "Ingress by satellite",
            "Bytes received per second.",
            [
                q(
                    f"sum by (satellite) (rate(storagenode_ingress_bytes_total{{{NS}}}[{RI}]))",
                    "{{satellite}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Egress by satellite",
            "Bytes sent per second: successful downloads, and what a canceled or failed one "
            "says it sent (its Size is the requested size since v1.99).",
            [
                q(
                    f"sum by (satellite) (rate(storagenode_egress_bytes_total{{{NS}}}[{RI}]))",
                    "{{satellite}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Traffic by action",
            "Bytes per second by transfer kind; \"requested, not sent\" is the requested size "
            "of canceled and failed downloads, not counted as egress.",
            [
                q(
                    f"sum by (action) (rate(storagenode_ingress_bytes_total{{{NS}}}[{RI}]))",
                    "{{action}} in",
                ),
                q(
                    f"sum by (action) (rate(storagenode_egress_bytes_total{{{NS}}}[{RI}]))",
                    "{{action}} out",
                ),
                q(
                    "sum by (action) (rate(storagenode_transfer_requested_bytes_total"
                    f"{{{NS}}}[{RI}]))",
                    "{{action}} requested, not sent",
                ),
            ],
            "Bps",
            w=8,
        ),
        row("Durations and sizes"),
        heatmap(
            "Transfer duration (successful)",
            "Started-to-finished time of successful transfers (needs log.level debug).",
            [
                q(
                    "sum by (le) (increase(storagenode_transfer_duration_seconds_bucket"
                    f'{{{N}, result="success"}}[{RI}]))',
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            "s",
        ),
        timeseries(
            "Transfer duration p50 / p95",
            "Quantiles of the successful transfer duration by action (needs log.level debug).",
            [
                q(
                    "histogram_quantile(0.5, sum by (le, action) (rate("
                    f'storagenode_transfer_duration_seconds_bucket{{{N}, result="success"}}'
                    f"[{RI}])))",
                    "{{action}} p50",
                ),
                q(
                    "histogram_quantile(0.95, sum by (le, action) (rate("
                    f'storagenode_transfer_duration_seconds_bucket{{{N}, result="success"}}'
                    f"[{RI}])))",
                    "{{action}} p95",
                ),
            ],
            "s",
        ),
        heatmap(
            "Piece size (successful transfers)",
            "Size distribution of successfully transferred pieces.",
            [
                q(
                    f"sum by (le) (increase(storagenode_transfer_size_bytes_bucket{{{N}}}[{RI}]))",
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            "bytes",
        ),
        timeseries(
            "Average piece size by action",
            "Mean size of successfully transferred pieces.",
            [
                q(
                    f"sum by (action) (rate(storagenode_transfer_size_bytes_sum{{{N}}}[{RI}])) "
                    "/ sum by (action) (rate(storagenode_transfer_size_bytes_count"
                    f"{{{N}}}[{RI}]))",
                    "{{action}}",
                )
            ],
            "bytes",
        ),
        timeseries(
            "Transfers in flight by action",
            "Started transfers without a finished line yet (needs log.level debug).",
            [q(f"sum by (action) (storagenode_transfers_in_flight{{{N}}})", "{{action}}")],
            w=24,
        ),
        row("Errors"),
        bargauge(
            "Top error reasons",
            "Failed transfers in the time range by normalised reason.",
            [
                q(
                    "topk(10, round(sum by (action, reason) (increase("
                    f"storagenode_transfer_errors_total{{{N}}}[{RANGE}]))))",
                    "{{action}} {{reason}}",
                    instant=True,
                )
            ],
            color="continuous-YlRd",
        ),
        timeseries(
            "Errors by reason",
            "Failed transfers per second by normalised reason.",
            [
                q(
                    f"sum by (reason) (rate(storagenode_transfer_errors_total{{{N}}}[{RI}]))",
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        bargauge(
            "Cancel reasons",
            "Canceled transfers in the time range whose line gives a reason: the `reason` of "
            "`download canceled` (v1.113+) or its error, `race_lost` (v1.86+ race-lost lines), "
            "`speed_too_low` (the node cut a slow upload); `upload canceled` lines give none.",
            [
                q(
                    "topk(10, round(sum by (action, reason) (increase("
                    f"storagenode_transfer_cancel_reasons_total{{{N}}}[{RANGE}]))))",
                    "{{action}} {{reason}}",
                    instant=True,
                )
            ],
            color="continuous-YlRd",
        ),
        timeseries(
            "Warnings and errors logged",
            "Log lines per second at warn level and above.",
            [
                q(
                    "sum by (level) (rate(storagenode_log_lines_total"
                    f'{{{N}, level=~"warn|error|dpanic|panic|fatal"}}[{RI}]))',
                    "{{level}}",
                )
            ],
            "cps",
        ),
        row("Events"),
        timeseries(
            "Garbage collection and trash",
            "Bloom filters received, retain runs and trash emptying.",
            [
                q(
                    f'{ev}"bloomfilter_received|retain_.+|trash_empty_.+"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Filewalkers",
            "Used-space, garbage-collection and trash filewalkers, expired piece collection.",
            [
                q(
                    f'{ev}".+_filewalker_.+|lazyfilewalker_failed|expired_pieces_collected"}}'
                    f"[{RI}]))",
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Pings and orders",
            "Satellite contact and order settlement.",
            [
                q(
                    f'{ev}"ping_satellite_failed|pingme_failed|quic_misconfigured|'
                    f'clock_out_of_sync|orders_.+"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Problems",
            "Database, disk, fatal and upload-rejection events.",
            [
                q(
                    f'{ev}"database_.+|fatal_error|disk_space_warning|storage_dir_check_failed|'
                    "upload_rejected|upload_internal_error|file_found_in_trash|scores_worsened|"
                    f'graceful_exit_failed|compaction_failed|version_outdated"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
        ),
        table(
            "Events in range",
            "Every log event counted in the time range.",
            [
                table_q(
                    f"round(sum by (event) (increase(storagenode_events_total{{{N}}}[{RANGE}])))"
                )
            ],
            rename={"event": "Event", "Value": "Count"},
            sort_by="Count",
            decimals=0,
        ),
        *housekeeping_row(),
        row("Hot pieces"),
        table(
            "Most downloaded pieces",
            "The most requested pieces (approximate GET counts from a bounded sketch).",
            [table_q(f"topk(10, max by (piece_id) (storagenode_top_piece_downloads{{{N}}}))")],
            w=24,
            rename={"piece_id": "Piece", "Value": "Downloads"},
            sort_by="Downloads",
            decimals=0,
        ),
        row("Uptime and contact"),
        stat(
            "Uptime",
            "Time since the node process started (from the node API).",
            [q(f"time() - max(storagenode_start_time_seconds{{{N}}})")],
            "s",
            w=12,
        ),
        stat(
            "Last QUIC ping",
            "Time since a satellite last pinged the node over QUIC (UDP).",
            [
                q(
                    "max(time() - max by (node) "
                    f"(storagenode_last_quic_pinged_timestamp_seconds{{{N}}}))"
                )
            ],
            "s",
            w=12,
            thresholds=steps((None, "green"), (3600, "orange"), (4 * 3600, "red")),
        ),
    ]
    return dashboard(
        "storj-node",
        "Storj / Node",
        "One node in depth: transfers and success rates per action and satellite, traffic, "
        "durations and sizes, errors, log events and hot pieces.",
        [ONE_NODE_VAR, SATELLITE_VAR],
        items,
    )
