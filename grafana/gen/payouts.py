"""Storj / Earnings: previous months (paystubs), payout per satellite and unpaid data.

All from the node API (docs/metrics.md): `storagenode_paystub_dollars` (one paystub per
satellite and month, `months_ago` 1-12), `storagenode_satellite_payout_*` (the estimate per
satellite) and `storagenode_satellite_storage_at_rest_*` (the newest day each satellite
tallied, v1.162 projections skipped).
"""

from __future__ import annotations

from gen.common import NS, N, steps
from gen.tables import Column, keyed_table

PAYSTUB = "storagenode_paystub_dollars"
SAT_PAYOUT = "storagenode_satellite_payout"
AT_REST = "storagenode_satellite_storage_at_rest"
USED_WITHOUT_TRASH = (
    f"max by (node) (storagenode_disk_used_bytes{{{N}}} - storagenode_disk_trash_bytes{{{N}}})"
)


def paystubs_table() -> dict:
    def kind(name: str) -> str:
        return f'sum by (node, months_ago) ({PAYSTUB}{{{NS}, kind="{name}"}})'

    return keyed_table(
        "Paystubs: previous months",
        "Per node and month (1 = last month), summed over the selected satellites: what was "
        "earned (storage, egress, repair and audit, with the surge), held back, returned from "
        "the held amount, and paid. A month appears once its paystub arrived, in the first "
        "half of the next month; the last 12 months are kept.",
        "node",
        "Node",
        [
            Column("Earned", kind("earned"), "currencyUSD", decimals=2, total=True),
            Column("Held back", kind("held"), "currencyUSD", decimals=2, total=True),
            Column("Returned", kind("disposed"), "currencyUSD", decimals=2, total=True),
            Column("Paid", kind("paid"), "currencyUSD", decimals=2, total=True),
        ],
        also=(("months_ago", "Months ago"),),
        h=10,
    )


def satellite_payout_table() -> dict:
    def est(period: str) -> str:
        return (
            f'sum by (node, satellite) ({SAT_PAYOUT}_estimated_dollars{{{NS}, period="{period}"}})'
        )

    def component(name: str) -> str:
        return (
            f"sum by (node, satellite) ({SAT_PAYOUT}_estimated_component_dollars"
            f'{{{NS}, period="current_month", component="{name}"}})'
        )

    money = {"unit": "currencyUSD", "decimals": 2}
    return keyed_table(
        "Payout per satellite (this month)",
        "The node's estimate per satellite (estimated-payout?id=): earnings this month so far "
        "by component before the held amount, the held rate the node applies at its age on "
        "that satellite, the amount held back, the payout after it, the projection for the "
        "whole month and last month's payout. Summed over satellites it is the node's estimate.",
        "node",
        "Node",
        [
            Column("Egress", component("egress"), total=True, **money),
            Column("Repair and audit", component("repair_audit"), total=True, **money),
            Column("Storage", component("disk"), total=True, **money),
            Column(
                "Held rate (node)",
                f"100 * max by (node, satellite) ({SAT_PAYOUT}_held_rate_ratio"
                f'{{{NS}, period="current_month"}})',
                "percent",
                decimals=0,
            ),
            Column(
                "Held back",
                f"sum by (node, satellite) ({SAT_PAYOUT}_held_dollars"
                f'{{{NS}, period="current_month"}})',
                total=True,
                **money,
            ),
            Column("Payout after held", est("current_month"), total=True, **money),
            Column("Expected by month end", est("current_month_expected"), total=True, **money),
            Column("Previous month", est("previous_month"), total=True, **money),
        ],
        also=(("satellite", "Satellite"),),
        h=8,
    )


def unpaid_table() -> dict:
    tally = f"sum by (node) ({AT_REST}_bytes{{{N}}})"
    return keyed_table(
        "Unpaid data",
        "The space the node uses for pieces (used minus trash, node API) against the sum of "
        "what the satellites last tallied (storageDaily at-rest bytes of the newest day each "
        "tallied; days the node only projected, flagged `calculated` since v1.162, are "
        "skipped). The gap is data no satellite pays for: garbage not collected yet, or "
        "pieces the satellites lost track of. The tally lags one or two days, and there is "
        "none on the first day(s) of a month: then the tally columns stay empty.",
        "node",
        "Node",
        [
            Column("Used without trash", USED_WITHOUT_TRASH, "bytes", total=True),
            Column("Satellites' tally", tally, "bytes", total=True),
            Column("Unpaid", f"{USED_WITHOUT_TRASH} - {tally}", "bytes", total=True),
            Column(
                "Unpaid %",
                f"({USED_WITHOUT_TRASH} - {tally}) / {USED_WITHOUT_TRASH}",
                "percentunit",
                decimals=1,
                thresholds=steps((None, "green"), (0.1, "orange"), (0.25, "red")),
            ),
            Column(
                "Oldest tally",
                f"(time() - min by (node) ({AT_REST}_timestamp_seconds{{{N}}})) / 86400",
                "d",
                decimals=1,
            ),
        ],
        w=12,
        h=7,
    )


def at_rest_table() -> dict:
    return keyed_table(
        "Satellites' tally (at rest)",
        "Per node and satellite: the average bytes stored on the newest day the satellite "
        "tallied this month, and that day.",
        "node",
        "Node",
        [
            Column(
                "At rest",
                f"sum by (node, satellite) ({AT_REST}_bytes{{{NS}}})",
                "bytes",
                total=True,
            ),
            Column(
                "Tallied day",
                f"max by (node, satellite) ({AT_REST}_timestamp_seconds{{{NS}}}) * 1000",
                "time:YYYY-MM-DD",
            ),
        ],
        also=(("satellite", "Satellite"),),
        w=12,
        h=7,
    )
