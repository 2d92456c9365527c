"""Storj / Reputation and capacity: am I at risk, and when am I full?"""

from __future__ import annotations

from gen import alerts
from gen.common import (
    DQ_AUDIT,
    GREEN,
    NS,
    RANGE,
    SUSPENSION,
    YES_NO,
    N,
    q,
    steps,
    table_q,
)
from gen.panels import (
    NODE_VAR,
    SATELLITE_VAR,
    bargauge,
    dashboard,
    gauge,
    row,
    stat,
    table,
    timeseries,
)


def score_panel(title: str, score: str, limit: float, verb: str, soft_min: float) -> dict:
    """A satellite score per node and satellite, with the satellite's limit as a dashed line."""
    return timeseries(
        title,
        f"Per satellite; the satellite {verb} the node below {limit} (dashed line).",
        [
            q(
                f"max by (node, satellite) (storagenode_satellite_{score}_score{{{NS}}})",
                "{{node}} {{satellite}}",
            )
        ],
        "percentunit",
        w=8,
        thresholds=steps((None, "red"), (limit, "green")),
        threshold_style="dashed",
        maximum=1,
        soft_min=soft_min,
    )


def days_until_full(matchers: str, window: str) -> str:
    """Days per node, else 0 for a full node, else -1 for one whose used space does not grow
    (mapped to text: Grafana would show "No data" for an empty result)."""
    free = f"max by (node) (storagenode_disk_free_bytes{{{matchers}}})"
    growth = f"max by (node) (deriv(storagenode_disk_used_bytes{{{matchers}}}[{window}])) * 86400"
    return f"({free} / ({growth} > 0) > 0) or ({free} <= 0) * 0 or {free} * 0 - 1"


DAYS_UNTIL_FULL_MAPPINGS = [
    {
        "type": "range",
        "options": {
            "from": -0.5,
            "to": 0.5,
            "result": {"text": "full", "color": "red", "index": 0},
        },
    },
    {
        "type": "range",
        "options": {
            "from": -1.5,
            "to": -0.5,
            "result": {"text": "not growing", "color": "green", "index": 1},
        },
    },
]


def reputation_capacity() -> dict:
    used_ratio = (
        f"max by (node) (storagenode_disk_used_bytes{{{N}}} / "
        f"storagenode_disk_allocated_bytes{{{N}}})"
    )
    items = [
        row("Scores"),
        stat(
            "Disqualified on",
            "Per node: the number of satellites that disqualified it.",
            [q(f"sum by (node) (storagenode_satellite_disqualified{{{NS}}})", "{{node}}")],
            thresholds=steps((None, "green"), (1, "red")),
            text_mode="value_and_name",
            w=8,
        ),
        stat(
            "Suspended on",
            "Per node: the number of satellites on which it is suspended.",
            [q(f"sum by (node) (storagenode_satellite_suspended{{{NS}}})", "{{node}}")],
            thresholds=steps((None, "green"), (1, "orange")),
            text_mode="value_and_name",
            w=8,
        ),
        stat(
            "Vetted on",
            "Per node: the number of satellites on which it is vetted.",
            [q(f"sum by (node) (storagenode_satellite_vetted{{{NS}}})", "{{node}}")],
            thresholds=GREEN,
            text_mode="value_and_name",
            w=8,
        ),
        score_panel("Audit score", "audit", DQ_AUDIT, "disqualifies", soft_min=0.9),
        score_panel("Suspension score", "suspension", SUSPENSION, "suspends", soft_min=0.5),
        score_panel("Online score", "online", SUSPENSION, "suspends", soft_min=0.5),
        table(
            "Satellite status",
            "Disqualified, suspended and vetted flags per node and satellite.",
            [
                table_q(f"max by (node, satellite) (storagenode_satellite_disqualified{{{NS}}})"),
                table_q(f"max by (node, satellite) (storagenode_satellite_suspended{{{NS}}})"),
                table_q(f"max by (node, satellite) (storagenode_satellite_vetted{{{NS}}})"),
            ],
            w=24,
            rename={
                "node": "Node",
                "satellite": "Satellite",
                "Value #A": "Disqualified",
                "Value #B": "Suspended",
                "Value #C": "Vetted",
            },
            mappings=YES_NO,
        ),
        row("Capacity"),
        timeseries(
            "Disk space",
            "Used (trash included), trash, free and allocated space from the node API.",
            [
                q(f"max by (node) (storagenode_disk_used_bytes{{{N}}})", "{{node}} used"),
                q(f"max by (node) (storagenode_disk_trash_bytes{{{N}}})", "{{node}} trash"),
                q(f"max by (node) (storagenode_disk_free_bytes{{{N}}})", "{{node}} free"),
                q(
                    f"max by (node) (storagenode_disk_allocated_bytes{{{N}}})",
                    "{{node}} allocated",
                ),
            ],
            "bytes",
        ),
        gauge(
            "Disk used",
            "Used space (trash included) / allocated space.",
            [q(used_ratio, "{{node}}")],
            "percentunit",
            thresholds=alerts.free_ratio_used_steps(),
        ),
        stat(
            "Days until full",
            "Free space divided by the growth of used space over the dashboard's time range; "
            '"full" when no space is free, "not growing" when used space is flat or shrinks.',
            [q(days_until_full(N, RANGE), "{{node}}", instant=True)],
            "d",
            w=6,
            h=8,
            thresholds=steps((None, "red"), (7, "orange"), (30, "green")),
            text_mode="value_and_name",
            mappings=DAYS_UNTIL_FULL_MAPPINGS,
            decimals=0,
        ),
        timeseries(
            "Used space growth per day",
            "Slope of used space over the last 6 hours, extrapolated to a day.",
            [
                q(
                    f"max by (node) (deriv(storagenode_disk_used_bytes{{{N}}}[6h])) * 86400",
                    "{{node}}",
                )
            ],
            "bytes",
        ),
        timeseries(
            "Overused and reclaimable",
            "Space used beyond the allocation, and space the node could reclaim.",
            [
                q(
                    f"max by (node) (storagenode_disk_overused_bytes{{{N}}})",
                    "{{node}} overused",
                ),
                q(
                    f"max by (node) (storagenode_disk_reclaimable_bytes{{{N}}})",
                    "{{node}} reclaimable",
                ),
            ],
            "bytes",
        ),
        bargauge(
            "Node age per satellite",
            "Days since the node joined each satellite (held back amounts and vetting depend on "
            "it).",
            [
                q(
                    "(time() - max by (satellite) "
                    f"(storagenode_satellite_joined_timestamp_seconds{{{NS}}})) / 86400",
                    "{{satellite}}",
                    instant=True,
                )
            ],
            "d",
            w=24,
        ),
    ]
    return dashboard(
        "storj-reputation-capacity",
        "Storj / Reputation and capacity",
        "Audit, suspension and online scores per satellite with their thresholds, "
        "disqualification and vetting, disk use and a days-until-full forecast.",
        [NODE_VAR, SATELLITE_VAR],
        items,
    )
