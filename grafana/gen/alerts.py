"""Colour thresholds read from the alert rules, so a cell turns orange or red where an alert
fires (prometheus/rules/storagenode-alerts.yml is the one place the numbers are written).

Generation fails with a clear message when a rule no longer has the shape read here, rather
than colouring on a number the alerts stopped using.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from gen.common import steps

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules" / "storagenode-alerts.yml"
_BELOW = re.compile(r"<\s*([0-9]*\.?[0-9]+)")
_WINDOW = re.compile(r"\[(\d+)([smh])\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600}


@cache
def _rules() -> tuple[dict, ...]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return tuple(r for g in doc["groups"] for r in g["rules"] if "alert" in r)


def _expr(alert: str, severity: str) -> str:
    exprs = [
        r["expr"]
        for r in _rules()
        if r["alert"] == alert and r.get("labels", {}).get("severity") == severity
    ]
    if len(exprs) != 1:
        raise LookupError(f"{RULES.name}: expected one {severity} rule {alert}, found {len(exprs)}")
    return exprs[0]


def below(alert: str, severity: str) -> float:
    """The number an alert compares with `<` (the first one in its expression)."""
    m = _BELOW.search(_expr(alert, severity))
    if not m:
        raise LookupError(f"{RULES.name}: {alert} ({severity}) has no `< number`")
    return float(m.group(1))


def window_seconds(alert: str, severity: str) -> float:
    """The first range window of an alert's expression, in seconds (e.g. `[30m]` -> 1800)."""
    m = _WINDOW.search(_expr(alert, severity))
    if not m:
        raise LookupError(f"{RULES.name}: {alert} ({severity}) has no range window")
    return float(int(m.group(1)) * _SECONDS[m.group(2)])


_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}


def colour(alert: str) -> str:
    """The colour of the (single) severity an alert has."""
    severities = {r["labels"]["severity"] for r in _rules() if r["alert"] == alert}
    if len(severities) != 1:
        raise LookupError(f"{RULES.name}: {alert} has severities {sorted(severities)}")
    return _COLOURS[severities.pop()]


def low_is_bad(alert: str) -> dict:
    """Red below the critical rule's number, orange below the warning's, else green."""
    warn = below(alert, "warning")
    try:
        crit = below(alert, "critical")
    except LookupError:
        return steps((None, "orange"), (warn, "green"))
    return steps((None, "red"), (crit, "orange"), (warn, "green"))


def free_ratio_used_steps() -> dict:
    """Used / allocated coloured where StoragenodeDiskAlmostFull fires on free / allocated."""
    warn = below("StoragenodeDiskAlmostFull", "warning")
    crit = below("StoragenodeDiskAlmostFull", "critical")
    return steps((None, "green"), (round(1 - warn, 6), "orange"), (round(1 - crit, 6), "red"))


def age_steps(alert: str, severity: str) -> dict:
    """An age in seconds: coloured from the alert's window on."""
    return steps((None, "green"), (window_seconds(alert, severity), colour(alert)))


def steps_from_one(colour_name: str) -> dict:
    return steps((None, "green"), (1, colour_name))


def fires_from_one(alert: str) -> dict:
    """A count where the alert fires on each one (`== 1`, any failed audit): any is bad."""
    return steps_from_one(colour(alert))


def is_one(alert: str) -> list[dict]:
    """A 0/1 flag whose 1 fires the alert (StoragenodeSuspended, StoragenodeDisqualified)."""
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "no", "color": "green", "index": 0},
                "1": {"text": "yes", "color": colour(alert), "index": 1},
            },
        }
    ]


def below_one(alert: str) -> dict:
    """A success rate where the alert fires on any failure (StoragenodeAuditFailed)."""
    return steps((None, colour(alert)), (1, "green"))


def is_zero(alert: str) -> list[dict]:
    """A 0/1 flag whose 0 fires the alert (StoragenodeOutdated on storagenode_up_to_date)."""
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": "no", "color": colour(alert), "index": 0},
                "1": {"text": "yes", "color": "green", "index": 1},
            },
        }
    ]
