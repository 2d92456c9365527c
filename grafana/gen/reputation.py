"""Storj / Reputation and capacity: am I at risk, and when am I full?"""

from __future__ import annotations

from gen import alerts
from gen.age import age_columns, joined
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
)
from gen.panels import (
    NODE_VAR,
    SATELLITE_VAR,
    dashboard,
    gauge,
    row,
    stat,
    timeseries,
)
from gen.tables import Column, keyed_table


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


def _flag(title: str, metric: str, alert: str | None = None) -> Column:
    mapping = alerts.is_one(alert) if alert else YES_NO
    return Column(title, f"max by (node, satellite) ({metric}{{{NS}}})", mappings=mapping)


def _score(title: str, score: str, alert: str) -> Column:
    return Column(
        title,
        f"max by (node, satellite) (storagenode_satellite_{score}_score{{{NS}}})",
        "percentunit",
        thresholds=alerts.low_is_bad(alert),
        decimals=3,
    )


#: a satellite vets a node once it has passed this many audits (storj/storj
#: docs/blueprints/audit-scaling.md: "A node is considered vetted when it receives a total of
#: 100 audits"); the node API has no audit counts, so progress comes from the log
VETTING_AUDITS = 100


def vetting_progress() -> Column:
    """1 where the satellite vetted the node, else the log's successful audits / 100."""
    vetted = f"max by (node, satellite) (storagenode_satellite_vetted{{{NS}}}) == 1"
    audits = (
        "sum by (node, satellite) (storagenode_transfers_total"
        f'{{{NS}, action="GET_AUDIT", result="success"}})'
    )
    return Column(
        "Vetting",
        f"({vetted}) or clamp_max({audits} / {VETTING_AUDITS}, 1)",
        "percentunit",
        thresholds=steps((None, "orange"), (1, "green")),
        decimals=0,
    )


def satellite_table() -> dict:
    return keyed_table(
        "Satellites",
        "Per node and satellite: when the node joined and its age in calendar months, "
        "vetting, suspension and disqualification, and the three scores coloured at the "
        "alert thresholds. Vetting progress on a satellite that has not vetted the node yet "
        f"is the successful audits the exporter counted in the log out of the "
        f"{VETTING_AUDITS} a satellite needs: audits from before the exporter started count "
        "only if the old logs were read (`backfill`, `--from-start`).",
        "node",
        "Node",
        [
            *age_columns(NS),
            _flag("Vetted", "storagenode_satellite_vetted"),
            vetting_progress(),
            _flag("Suspended", "storagenode_satellite_suspended", "StoragenodeSuspended"),
            _flag("Disqualified", "storagenode_satellite_disqualified", "StoragenodeDisqualified"),
            _score("Audit", "audit", "StoragenodeAuditScoreLow"),
            _score("Suspension", "suspension", "StoragenodeSuspensionScoreLow"),
            _score("Online", "online", "StoragenodeOnlineScoreLow"),
        ],
        also=(("satellite", "Satellite"),),
        h=8,
    )


def _audits(reason: str) -> str:
    """Audits that failed (or were canceled) with these reasons in the range, 0 when none:
    the errors counter has a series only once a reason happened."""
    errors = (
        "round(sum by (node) (increase(storagenode_transfer_errors_total"
        f'{{{N}, action="GET_AUDIT", {reason}}}[{RANGE}])))'
    )
    return f"{errors} or on (node) (0 * sum by (node) (storagenode_log_lines_total{{{N}}}))"


def audit_risk_table() -> dict:
    missing = alerts.fires_from_one("StoragenodeAuditFailed")
    return keyed_table(
        "Audit risk",
        "Audits in the time range per node, from the log. Missing pieces (`file does not "
        "exist`) are failed audits: each lowers the audit score, and 0.96 disqualifies. A "
        "timeout puts the piece in containment: the satellite asks again and counts a "
        "failure only if the node keeps failing. Other errors (disk, database, ...) lower "
        "the suspension score, which recovers once they stop.",
        "node",
        "Node",
        [
            Column(
                "Audits",
                "round(sum by (node) (increase(storagenode_transfers_total"
                f'{{{N}, action="GET_AUDIT"}}[{RANGE}])))',
            ),
            Column("Missing pieces", _audits('reason="file_not_found"'), thresholds=missing),
            Column(
                "Timeouts",
                _audits('reason="timeout"'),
                thresholds=alerts.steps_from_one("orange"),
            ),
            Column(
                "Other errors",
                _audits('reason!~"file_not_found|timeout"'),
                thresholds=alerts.steps_from_one("orange"),
            ),
            Column(
                "Canceled",
                "round(sum by (node) (increase(storagenode_transfers_total"
                f'{{{N}, action="GET_AUDIT", result="canceled"}}[{RANGE}])))',
            ),
            Column(
                "Lowest audit score",
                f"min by (node) (storagenode_satellite_audit_score{{{N}}})",
                "percentunit",
                thresholds=alerts.low_is_bad("StoragenodeAuditScoreLow"),
                decimals=3,
            ),
        ],
        h=6,
    )


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
        satellite_table(),
        row("Audit risk"),
        audit_risk_table(),
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
        row("Age and uptime"),
        stat(
            "Node age",
            "Days since the node joined its first satellite.",
            [q(f"(time() - min by (node) ({joined(NS)})) / 86400", "{{node}}", instant=True)],
            "d",
            w=12,
            decimals=0,
            text_mode="value_and_name",
        ),
        stat(
            "Uptime",
            "Time since the storagenode process started (node API).",
            [q(f"time() - max by (node) (storagenode_start_time_seconds{{{N}}})", "{{node}}")],
            "s",
            w=12,
            text_mode="value_and_name",
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
