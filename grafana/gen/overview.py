"""Storj / Overview: is every node fine?"""

from __future__ import annotations

from gen import alerts
from gen.common import (
    RANGE,
    RI,
    UP_DOWN,
    N,
    q,
    steps,
    success_ratio,
    table_q,
)
from gen.housekeeping import LOST, in_range
from gen.panels import (
    NODE_VAR,
    dashboard,
    row,
    stat,
    table,
    timeseries,
)
from gen.tables import NONE_IN_RANGE, Column, keyed_table

# The Node dashboard for the row's node, keeping the time range and the data source.
NODE_LINK = {
    "title": "Node dashboard for ${__data.fields.node}",
    "url": "/d/storj-node/storj-node?var-node=${__data.fields.node}&${__url_time_range}"
    "&${datasource:queryparam}",
    "targetBlank": False,
}


def _rate(action: str) -> str:
    return success_ratio(f'{N}, action="{action}"', "node", RANGE)


def node_columns() -> list[Column]:
    """The columns of "Nodes": every query is `... by (node)`, so the rows merge on node."""
    score = "min by (node) (storagenode_satellite_{}_score{{{}}})"
    return [
        Column("Version", f"max by (node, version) (storagenode_info{{{N}}})", label="version"),
        Column(
            "Up to date",
            f"max by (node) (storagenode_up_to_date{{{N}}})",
            mappings=alerts.is_zero("StoragenodeOutdated"),
        ),
        Column("API", f"max by (node) (storagenode_up{{{N}}})", mappings=UP_DOWN),
        Column("Uptime", f"time() - max by (node) (storagenode_start_time_seconds{{{N}}})", "s"),
        Column(
            "Last log line",
            f"time() - max by (node) (storagenode_log_last_line_timestamp_seconds{{{N}}})",
            "s",
            thresholds=alerts.age_steps("StoragenodeLogSilent", "warning"),
        ),
        Column("Used", f"max by (node) (storagenode_disk_used_bytes{{{N}}})", "bytes", total=True),
        Column("Free", f"max by (node) (storagenode_disk_free_bytes{{{N}}})", "bytes", total=True),
        Column(
            "Free %",
            f"max by (node) (storagenode_disk_free_bytes{{{N}}} / "
            f"(storagenode_disk_allocated_bytes{{{N}}} > 0))",
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeDiskAlmostFull"),
            decimals=1,
        ),
        Column(
            "Trash", f"max by (node) (storagenode_disk_trash_bytes{{{N}}})", "bytes", total=True
        ),
        Column(
            "Ingress (month)",
            f"sum by (node) (storagenode_month_ingress_bytes{{{N}}})",
            "bytes",
            total=True,
        ),
        Column(
            "Egress (month)",
            f"sum by (node) (storagenode_month_egress_bytes{{{N}}})",
            "bytes",
            total=True,
        ),
        Column(
            "Payout (month)",
            f'sum by (node) (storagenode_payout_estimated_dollars{{{N}, period="current_month"}})',
            "currencyUSD",
            decimals=2,
            total=True,
        ),
        Column(
            "Held back",
            f"sum by (node) (storagenode_payout_held_total_dollars{{{N}}})",
            "currencyUSD",
            decimals=2,
            total=True,
        ),
        Column(
            "Audit",
            score.format("audit", N),
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeAuditScoreLow"),
            decimals=2,
        ),
        Column(
            "Suspension",
            score.format("suspension", N),
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeSuspensionScoreLow"),
            decimals=2,
        ),
        Column(
            "Online",
            score.format("online", N),
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeOnlineScoreLow"),
            decimals=2,
        ),
        Column("Satellites", f"count by (node) (storagenode_satellite_info{{{N}}})"),
        Column("Vetted", f"sum by (node) (storagenode_satellite_vetted{{{N}}})"),
        Column(
            "Suspended",
            f"sum by (node) (storagenode_satellite_suspended{{{N}}})",
            thresholds=alerts.fires_from_one("StoragenodeSuspended"),
        ),
        Column(
            "Disqualified",
            f"sum by (node) (storagenode_satellite_disqualified{{{N}}})",
            thresholds=alerts.fires_from_one("StoragenodeDisqualified"),
        ),
        Column(
            "Download ok",
            _rate("GET"),
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeSuccessRateLow"),
            mappings=NONE_IN_RANGE,
            decimals=1,
        ),
        Column(
            "Upload ok",
            _rate("PUT"),
            "percentunit",
            thresholds=alerts.low_is_bad("StoragenodeSuccessRateLow"),
            mappings=NONE_IN_RANGE,
            decimals=1,
        ),
        Column(
            "Audit ok",
            _rate("GET_AUDIT"),
            "percentunit",
            thresholds=alerts.below_one("StoragenodeAuditFailed"),
            mappings=NONE_IN_RANGE,
            decimals=2,
        ),
        Column(
            "Lost pieces",
            in_range(LOST, "node", N),
            thresholds=alerts.fires_from_one("StoragenodeLostPieces"),
            decimals=0,
        ),
    ]


def node_table() -> dict:
    return keyed_table(
        "Nodes",
        "One row per node. Colours are the alert thresholds of prometheus/rules "
        "(orange: warning, red: critical). Ages and uptime are now; ingress, egress and payout "
        "are this UTC month from the node API; scores are the lowest over the node's "
        "satellites; success rates cover the time range (none: no such transfer in it). The "
        "footer sums space and money. Click a node for its dashboard.",
        "node",
        "Node",
        node_columns(),
        key_links=[NODE_LINK],
        h=8,
        sort_by="Node",
    )


def overview() -> dict:
    items = [
        row("Fleet"),
        stat(
            "Nodes up",
            "Nodes whose dashboard API answered the last poll.",
            [q(f"sum(storagenode_up{{{N}}})")],
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            "Log sources up",
            "Node logs that are readable or connected.",
            [q(f"sum(storagenode_log_source_up{{{N}}})")],
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            "Ingress",
            "Bytes received by all selected nodes (uploads and repair uploads).",
            [q(f"sum(rate(storagenode_ingress_bytes_total{{{N}}}[{RI}]))")],
            "Bps",
            graph=True,
        ),
        stat(
            "Egress",
            "Bytes sent by all selected nodes (downloads, audits, repair downloads).",
            [q(f"sum(rate(storagenode_egress_bytes_total{{{N}}}[{RI}]))")],
            "Bps",
            graph=True,
        ),
        stat(
            "Estimated payout (this month)",
            "Sum of the nodes' own payout estimates for the current month so far.",
            [q(f'sum(storagenode_payout_estimated_dollars{{{N}, period="current_month"}})')],
            "currencyUSD",
            decimals=2,
        ),
        stat(
            "Alerts firing",
            "Prometheus alerts firing now (all of them, not only for the selected nodes), "
            "without the Watchdog, which always fires and goes to a heartbeat receiver.",
            [q('count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)')],
            thresholds=steps((None, "green"), (1, "red")),
        ),
        row("Every node"),
        node_table(),
        row("Traffic"),
        timeseries(
            "Ingress by node",
            "Bytes received per second.",
            [q(f"sum by (node) (rate(storagenode_ingress_bytes_total{{{N}}}[{RI}]))", "{{node}}")],
            "Bps",
            w=8,
        ),
        timeseries(
            "Egress by node",
            "Bytes sent per second.",
            [q(f"sum by (node) (rate(storagenode_egress_bytes_total{{{N}}}[{RI}]))", "{{node}}")],
            "Bps",
            w=8,
        ),
        timeseries(
            "Success rate by node",
            "Share of finished downloads (GET) and uploads (PUT) that succeeded.",
            [
                q(success_ratio(f'{N}, action="GET"', "node", RI), "{{node}} download"),
                q(success_ratio(f'{N}, action="PUT"', "node", RI), "{{node}} upload"),
            ],
            "percentunit",
            w=8,
            maximum=1,
        ),
        row("Alerts"),
        table(
            "Firing alerts",
            "Alerts Prometheus is firing now (rules in prometheus/rules/). Empty when all is well: "
            "the Watchdog (dead man's switch, always firing, routed to a heartbeat receiver) "
            "is left out.",
            [table_q('ALERTS{alertstate="firing", alertname!="Watchdog"}')],
            w=24,
            h=6,
            exclude=("Time", "Value", "__name__", "alertstate"),
        ),
    ]
    return dashboard(
        "storj-overview",
        "Storj / Overview",
        "Every Storj node at a glance: up, version, disk, scores, success rates, traffic, "
        "payout and firing alerts.",
        [NODE_VAR],
        items,
    )
