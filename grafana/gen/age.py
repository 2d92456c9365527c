"""Node age on a satellite (from its joined date) and the held-back rate that follows from it.

The satellites hold back 75 % of the earnings in months 1-3 after joining, 50 % in months
4-6, 25 % in months 7-9 and nothing from month 10 on (storagenode payouts.GetHeldRate, which
counts calendar months between the joined date and now); half of the held amount is returned
after month 15, the rest at graceful exit.
"""

from __future__ import annotations

from gen.tables import Column


def joined(matchers: str) -> str:
    metric = "storagenode_satellite_joined_timestamp_seconds"
    return f"max by (node, satellite) ({metric}{{{matchers}}})"


def months_since_joined(matchers: str) -> str:
    """Calendar months between the joined date and now (0 in the month of joining)."""
    j = joined(matchers)
    return f"((scalar(year()) - year({j})) * 12 + (scalar(month()) - month({j})))"


def held_rate(matchers: str) -> str:
    """Percent held back this month: 75, 50, 25, then 0 (every three months 25 less)."""
    return f"clamp_min(75 - 25 * floor({months_since_joined(matchers)} / 3), 0)"


def age_columns(matchers: str) -> list[Column]:
    """Joined date and age in months per node and satellite."""
    return [
        Column("Joined", f"{joined(matchers)} * 1000", "dateTimeAsIso"),
        Column("Age (months)", months_since_joined(matchers), decimals=0),
    ]


def held_rate_column(matchers: str) -> Column:
    return Column("Held rate", held_rate(matchers), "percent", decimals=0)
