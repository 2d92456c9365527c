"""Storj / Earnings: how much will I be paid?"""

from __future__ import annotations

from gen.age import age_columns, held_rate_column
from gen.common import (
    NS,
    N,
    q,
    table_q,
)
from gen.panels import (
    NODE_VAR,
    SATELLITE_VAR,
    bargauge,
    dashboard,
    row,
    stat,
    table,
    textbox_var,
    timeseries,
)
from gen.payouts import at_rest_table, paystubs_table, satellite_payout_table, unpaid_table
from gen.tables import Column, keyed_table

COMPONENTS = (("egress", "Egress"), ("repair_audit", "Repair and audit"), ("disk", "Storage"))
BY_SATELLITE = (("satellite", "Satellite"),)


def per_tb_stored(period: str) -> str:
    earned = (
        f'sum by (node) (storagenode_payout_estimated_component_dollars{{{N}, period="{period}"}})'
    )
    stored = (
        f"(max by (node) (storagenode_disk_used_bytes{{{N}}} - storagenode_disk_trash_bytes{{{N}}})"
        " > 0) / 1e12"
    )
    return f"{earned} / {stored}"


def payout_by_period() -> dict:
    """The node's estimate per node and month, split as a paystub is."""
    columns = [
        Column(
            title,
            "sum by (node, period) (storagenode_payout_estimated_component_dollars"
            f'{{{N}, component="{component}"}})',
            "currencyUSD",
            decimals=2,
        )
        for component, title in COMPONENTS
    ]
    columns += [
        Column(
            "Held back",
            f"sum by (node, period) (storagenode_payout_held_dollars{{{N}}})",
            "currencyUSD",
            decimals=2,
        ),
        Column(
            "Payout after held",
            "sum by (node, period) (storagenode_payout_estimated_dollars"
            f'{{{N}, period=~"current_month|previous_month"}})',
            "currencyUSD",
            decimals=2,
        ),
        Column(
            "Expected by month end",
            "label_replace(sum by (node, period) (storagenode_payout_estimated_dollars"
            f'{{{N}, period="current_month_expected"}}), "period", "current_month", "", "")',
            "currencyUSD",
            decimals=2,
        ),
    ]
    return keyed_table(
        "Payout by month",
        "The node's own estimate per month, as a paystub splits it: earnings by component "
        "before the held amount, the amount held back, and the payout after it "
        "(previous_month is the last full month; expected is the projection of this one). "
        "Older months: Paystubs below.",
        "node",
        "Node",
        columns,
        also=(("period", "Month"),),
        h=7,
    )


def held_table() -> dict:
    return keyed_table(
        "Held back per satellite",
        "What each satellite holds back (total held minus returned), how long the node has "
        "been on it, and the share of this month's earnings it holds back at that age "
        "(75 % in months 1-3, 50 % in 4-6, 25 % in 7-9, then none; half of the held amount "
        "is returned after month 15, the rest at graceful exit); **Returned**: what it paid back "
        "so far.",
        "node",
        "Node",
        [
            *age_columns(NS),
            held_rate_column(NS),
            Column(
                "Held back",
                f"sum by (node, satellite) (storagenode_payout_held_total_dollars{{{NS}}})",
                "currencyUSD",
                decimals=2,
                total=True,
            ),
            Column(
                "Returned",
                f"sum by (node, satellite) (storagenode_payout_held_returned_dollars{{{NS}}})",
                "currencyUSD",
                decimals=2,
                total=True,
            ),
        ],
        also=BY_SATELLITE,
        h=8,
    )


def satellite_breakdown() -> dict:
    def month(metric: str, kind: str) -> str:
        return f'sum by (node, satellite) (storagenode_{metric}{{{NS}, kind="{kind}"}})'

    return keyed_table(
        "Storage, egress and repair per satellite (this month)",
        "Per node and satellite, this UTC month from the node API: the average stored as the "
        "satellite tallied it, egress (paid) by kind, repair ingress, and the egress earnings "
        "at the `Egress $/TB` variable. The footer sums every satellite.",
        "node",
        "Node",
        [
            Column(
                "Stored (average)",
                f"sum by (node, satellite) (storagenode_month_storage_average_bytes{{{NS}}})",
                "bytes",
                total=True,
            ),
            Column("Egress", month("month_egress_bytes", "usage"), "bytes", total=True),
            Column("Repair egress", month("month_egress_bytes", "repair"), "bytes", total=True),
            Column("Audit egress", month("month_egress_bytes", "audit"), "bytes", total=True),
            Column("Repair ingress", month("month_ingress_bytes", "repair"), "bytes", total=True),
            Column(
                "Egress earnings",
                f"sum by (node, satellite) (storagenode_month_egress_bytes{{{NS}}}) / 1e12 "
                "* $egress_usd_per_tb",
                "currencyUSD",
                decimals=2,
                total=True,
            ),
        ],
        also=BY_SATELLITE,
        h=8,
    )


def earnings() -> dict:
    rate_var = textbox_var(
        "egress_usd_per_tb",
        "Egress $/TB",
        "2",
        "Payout per TB of egress (usage, repair and audit) used for the month-to-date "
        "estimate per satellite.",
    )
    items = [
        stat(
            "Estimated payout (this month)",
            "The nodes' own estimate for the current month so far.",
            [q(f'sum(storagenode_payout_estimated_dollars{{{N}, period="current_month"}})')],
            "currencyUSD",
            w=6,
            decimals=2,
            graph=True,
        ),
        stat(
            "Expected by month end",
            "The nodes' projection for the whole current month.",
            [
                q(
                    "sum(storagenode_payout_estimated_dollars"
                    f'{{{N}, period="current_month_expected"}})'
                )
            ],
            "currencyUSD",
            w=6,
            decimals=2,
        ),
        stat(
            "Previous month",
            "Estimated payout of the previous month.",
            [q(f'sum(storagenode_payout_estimated_dollars{{{N}, period="previous_month"}})')],
            "currencyUSD",
            w=6,
            decimals=2,
        ),
        stat(
            "Held back",
            "Amount held back by the satellites (released over time or at graceful exit).",
            [q(f"sum by (period) (storagenode_payout_held_dollars{{{N}}})", "{{period}}")],
            "currencyUSD",
            w=6,
            decimals=2,
            text_mode="value_and_name",
        ),
        timeseries(
            "Estimated payout over time",
            "Current-month estimate per node; it resets at the start of a month.",
            [
                q(
                    "sum by (node) (storagenode_payout_estimated_dollars"
                    f'{{{N}, period="current_month"}})',
                    "{{node}}",
                )
            ],
            "currencyUSD",
        ),
        payout_by_period(),
        bargauge(
            "Month-to-date egress by satellite",
            "Bytes sent this UTC month (usage, repair and audit), from the node API.",
            [
                q(
                    f"sum by (satellite) (storagenode_month_egress_bytes{{{NS}}})",
                    "{{satellite}}",
                    instant=True,
                )
            ],
            "bytes",
        ),
        bargauge(
            "Month-to-date ingress by satellite",
            "Bytes received this UTC month (ingress is not paid), from the node API.",
            [
                q(
                    f"sum by (satellite) (storagenode_month_ingress_bytes{{{NS}}})",
                    "{{satellite}}",
                    instant=True,
                )
            ],
            "bytes",
        ),
        bargauge(
            "Estimated egress earnings by satellite (month to date)",
            "Month-to-date egress times the $/TB in the `Egress $/TB` variable; storage payout "
            "is not included.",
            [
                q(
                    f"sum by (satellite) (storagenode_month_egress_bytes{{{NS}}}) / 1e12 "
                    "* $egress_usd_per_tb",
                    "{{satellite}}",
                    instant=True,
                )
            ],
            "currencyUSD",
            color="continuous-greens",
        ),
        table(
            "Month-to-date egress by satellite and kind",
            "Bytes sent this UTC month per satellite and kind (usage, repair, audit).",
            [table_q(f"sum by (satellite, kind) (storagenode_month_egress_bytes{{{NS}}})")],
            "bytes",
            rename={"satellite": "Satellite", "kind": "Kind", "Value": "Egress"},
            sort_by="Egress",
        ),
        timeseries(
            "Month-to-date traffic by kind",
            "Egress and ingress counters of the node API for the current month.",
            [
                q(
                    f"sum by (kind) (storagenode_month_egress_bytes{{{NS}}})",
                    "egress {{kind}}",
                ),
                q(
                    f"sum by (kind) (storagenode_month_ingress_bytes{{{NS}}})",
                    "ingress {{kind}}",
                ),
            ],
            "bytes",
            w=24,
        ),
        stat(
            "Held back in total",
            "Everything the satellites hold back from the node's payouts so far (node API).",
            [q(f"sum(storagenode_payout_held_total_dollars{{{NS}}})")],
            "currencyUSD",
            w=8,
            decimals=2,
        ),
        bargauge(
            "Payout components this month",
            "The node's own estimate for this month split by what is paid for.",
            [
                q(
                    "sum by (component) (storagenode_payout_estimated_component_dollars"
                    f'{{{N}, period="current_month"}})',
                    "{{component}}",
                    instant=True,
                )
            ],
            "currencyUSD",
            w=8,
        ),
        bargauge(
            "Average stored this month",
            "Average bytes stored this month per satellite, as the satellites report it.",
            [
                q(
                    f"sum by (satellite) (storagenode_month_storage_average_bytes{{{NS}}})",
                    "{{satellite}}",
                    instant=True,
                )
            ],
            "bytes",
            w=8,
        ),
        row("Held back"),
        held_table(),
        row("Previous months"),
        paystubs_table(),
        row("Per satellite"),
        satellite_payout_table(),
        row("Unpaid data"),
        unpaid_table(),
        at_rest_table(),
        row("Earnings per TB and per satellite"),
        stat(
            "Earnings per TB stored",
            "Estimated earnings before held amount (egress, repair and audit, storage) per TB "
            "the node stores now (used space without trash): the previous month in full and "
            "the current month so far.",
            [
                q(per_tb_stored("previous_month"), "{{node}} previous month", instant=True),
                q(per_tb_stored("current_month"), "{{node}} this month so far", instant=True),
            ],
            "currencyUSD",
            w=24,
            decimals=2,
            text_mode="value_and_name",
        ),
        satellite_breakdown(),
    ]
    return dashboard(
        "storj-earnings",
        "Storj / Earnings",
        "Estimated and held payout, and month-to-date traffic and egress earnings per satellite.",
        [NODE_VAR, SATELLITE_VAR, rate_var],
        items,
    )
