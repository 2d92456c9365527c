"""Storj / Overview: is every node fine?"""

from __future__ import annotations

from gen.common import (
    DISK_STEPS,
    DQ_AUDIT,
    RANGE,
    RATE_STEPS,
    RI,
    SCORE_STEPS,
    SUSPENSION,
    SUSPENSION_STEPS,
    UP_DOWN,
    YES_NO,
    N,
    q,
    steps,
    success_ratio,
    table_q,
)
from gen.panels import (
    NODE_VAR,
    dashboard,
    row,
    stat,
    table,
    timeseries,
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
            "Prometheus alerts firing now (all of them, not only for the selected nodes).",
            [q('count(ALERTS{alertstate="firing"}) or vector(0)')],
            thresholds=steps((None, "green"), (1, "red")),
        ),
        row("Every node"),
        stat(
            "Node API",
            "Was the last poll of the node's dashboard API successful?",
            [q(f"max by (node) (storagenode_up{{{N}}})", "{{node}}")],
            w=6,
            mappings=UP_DOWN,
            color_mode="background",
            text_mode="value_and_name",
            thresholds=steps((None, "red"), (1, "green")),
        ),
        table(
            "Versions",
            "Running and minimum allowed version of each node.",
            [
                table_q(f"max by (node, version, allowed_version) (storagenode_info{{{N}}})"),
                table_q(f"max by (node) (storagenode_up_to_date{{{N}}})"),
            ],
            w=10,
            h=4,
            exclude=("Time", "Value #A"),
            rename={
                "node": "Node",
                "version": "Version",
                "allowed_version": "Minimum allowed",
                "Value #B": "Up to date",
            },
            mappings=YES_NO,
        ),
        stat(
            "Disk used",
            "Used space (trash included) / allocated space, per node.",
            [
                q(
                    f"max by (node) (storagenode_disk_used_bytes{{{N}}} / "
                    f"storagenode_disk_allocated_bytes{{{N}}})",
                    "{{node}}",
                )
            ],
            "percentunit",
            w=8,
            thresholds=DISK_STEPS,
            text_mode="value_and_name",
            decimals=1,
        ),
        stat(
            "Lowest audit score",
            f"Lowest audit score over all satellites; disqualification below {DQ_AUDIT}.",
            [q(f"min by (node) (storagenode_satellite_audit_score{{{N}}})", "{{node}}")],
            "percentunit",
            w=8,
            thresholds=SCORE_STEPS,
            text_mode="value_and_name",
            decimals=2,
        ),
        stat(
            "Lowest suspension score",
            f"Lowest suspension score over all satellites; suspension below {SUSPENSION}.",
            [q(f"min by (node) (storagenode_satellite_suspension_score{{{N}}})", "{{node}}")],
            "percentunit",
            w=8,
            thresholds=SUSPENSION_STEPS,
            text_mode="value_and_name",
            decimals=2,
        ),
        stat(
            "Lowest online score",
            f"Lowest online score over all satellites; suspension below {SUSPENSION}.",
            [q(f"min by (node) (storagenode_satellite_online_score{{{N}}})", "{{node}}")],
            "percentunit",
            w=8,
            thresholds=SUSPENSION_STEPS,
            text_mode="value_and_name",
            decimals=2,
        ),
        stat(
            "Download success rate",
            "Successful GET transfers / all finished GET transfers in the time range.",
            [q(success_ratio(f'{N}, action="GET"', "node", RANGE), "{{node}}", instant=True)],
            "percentunit",
            w=8,
            thresholds=RATE_STEPS,
            text_mode="value_and_name",
            decimals=1,
        ),
        stat(
            "Upload success rate",
            "Successful PUT transfers / all finished PUT transfers in the time range.",
            [q(success_ratio(f'{N}, action="PUT"', "node", RANGE), "{{node}}", instant=True)],
            "percentunit",
            w=8,
            thresholds=RATE_STEPS,
            text_mode="value_and_name",
            decimals=1,
        ),
        stat(
            "Audit success rate",
            "Successful GET_AUDIT transfers / all finished audits in the time range; failed "
            "audits lower the audit score.",
            [
                q(
                    success_ratio(f'{N}, action="GET_AUDIT"', "node", RANGE),
                    "{{node}}",
                    instant=True,
                )
            ],
            "percentunit",
            w=8,
            thresholds=steps((None, "red"), (0.99, "green")),
            text_mode="value_and_name",
            decimals=2,
        ),
        stat(
            "Ingress in range",
            "Bytes received per node in the time range.",
            [
                q(
                    f"sum by (node) (increase(storagenode_ingress_bytes_total{{{N}}}[{RANGE}]))",
                    "{{node}}",
                    instant=True,
                )
            ],
            "bytes",
            w=8,
            text_mode="value_and_name",
        ),
        stat(
            "Egress in range",
            "Bytes sent per node in the time range.",
            [
                q(
                    f"sum by (node) (increase(storagenode_egress_bytes_total{{{N}}}[{RANGE}]))",
                    "{{node}}",
                    instant=True,
                )
            ],
            "bytes",
            w=8,
            text_mode="value_and_name",
        ),
        stat(
            "Estimated payout per node",
            "The node's own estimate for the current month so far.",
            [
                q(
                    "sum by (node) (storagenode_payout_estimated_dollars"
                    f'{{{N}, period="current_month"}})',
                    "{{node}}",
                )
            ],
            "currencyUSD",
            w=8,
            text_mode="value_and_name",
            decimals=2,
        ),
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
            "Alerts Prometheus is firing now (rules in prometheus/rules/). Empty when all is well.",
            [table_q('ALERTS{alertstate="firing"}')],
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
