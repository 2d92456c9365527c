"""Storj / Earnings: how much will I be paid?"""

from __future__ import annotations

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
    stat,
    table,
    textbox_var,
    timeseries,
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
        table(
            "Payout by node",
            "Estimates per node and period.",
            [table_q(f"sum by (node, period) (storagenode_payout_estimated_dollars{{{N}}})")],
            "currencyUSD",
            rename={"node": "Node", "period": "Period", "Value": "Estimate"},
            decimals=2,
        ),
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
    ]
    return dashboard(
        "storj-earnings",
        "Storj / Earnings",
        "Estimated and held payout, and month-to-date traffic and egress earnings per satellite.",
        [NODE_VAR, SATELLITE_VAR, rate_var],
        items,
    )
