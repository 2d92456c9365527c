"""Queries, field-config pieces, thresholds and label matchers shared by every dashboard."""

from __future__ import annotations

from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "dashboards"
SCHEMA_VERSION = 41  # Grafana 11.6
DS = {"type": "prometheus", "uid": "${datasource}"}
TAGS = ["storj", "storagenode"]

# Label matchers shared by the queries.
N = 'node=~"$node"'
NS = 'node=~"$node", satellite=~"$satellite"'
NA = 'node=~"$node", action=~"$action"'
RI = "$__rate_interval"
RANGE = "$__range"

# Score thresholds of the Storj satellites: disqualification below 0.96 audit score,
# suspension below 0.6 suspension (unknown-audit) score and below 0.6 online score.
DQ_AUDIT = 0.96
SUSPENSION = 0.6


# ---- queries --------------------------------------------------------------------------------


def q(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "time_series") -> dict:
    """One Prometheus query; the refId is assigned by the panel builder."""
    target = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }
    return target


def table_q(expr: str) -> dict:
    """Instant query returning one row per series (labels as columns, `Value`)."""
    return q(expr, instant=True, fmt="table")


# ---- field config pieces -------------------------------------------------------------------


def steps(*pairs: tuple[float | None, str]) -> dict:
    """Absolute thresholds; the first step's value is None (= -Infinity)."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


GREEN = steps((None, "green"))
UP_DOWN = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]
YES_NO = [
    {
        "type": "value",
        "options": {
            "0": {"text": "no", "index": 0},
            "1": {"text": "yes", "index": 1},
        },
    }
]


def defaults(
    unit: str = "short",
    *,
    thresholds: dict | None = None,
    color: str = "palette-classic",
    custom: dict | None = None,
    **extra,
) -> dict:
    out = {
        "unit": unit,
        "color": {"mode": color},
        "thresholds": thresholds or GREEN,
        "mappings": extra.pop("mappings", []),
    }
    out.update(extra)
    if custom is not None:
        out["custom"] = custom
    return {"defaults": out, "overrides": []}


def graph_custom(**kw) -> dict:
    custom = {
        "drawStyle": "line",
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "fillOpacity": 10,
        "gradientMode": "none",
        "showPoints": "never",
        "pointSize": 4,
        "spanNulls": False,
        "axisPlacement": "auto",
        "axisLabel": "",
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "scaleDistribution": {"type": "linear"},
        "stacking": {"mode": "none", "group": "A"},
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "thresholdsStyle": {"mode": "off"},
    }
    custom.update(kw)
    return custom


# Table cell renderers. Every key is spelled out: the cell option kinds overlap in the schema,
# and a bare {"type": ...} is ambiguous between them.
COLOR_CELL = {"type": "color-background", "mode": "gradient", "applyToRow": False}
GAUGE_CELL = {"type": "gauge", "mode": "gradient", "valueDisplayMode": "color"}

REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def success_ratio(matchers: str, by: str, window: str) -> str:
    return (
        f'sum by ({by}) (increase(storagenode_transfers_total{{{matchers}, result="success"}}'
        f"[{window}])) / sum by ({by}) (increase(storagenode_transfers_total{{{matchers}}}"
        f"[{window}]))"
    )


RATE_STEPS = steps((None, "red"), (0.9, "orange"), (0.97, "green"))
