#!/usr/bin/env python3
"""Generate the Grafana dashboards in grafana/dashboards/*.json from plain Python dicts.

Dashboards are code so that they can be reviewed, tested (schema, PromQL parse, live queries)
and kept consistent with docs/metrics.md; the rendered JSON is committed so that Grafana's file
provisioning can load it without running anything.

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 if the committed JSON differs

Rules the builders enforce: every panel and query uses the `${datasource}` variable (never
`__inputs`), rate()/increase() use `$__rate_interval` or `$__range`, core panels only (the map is
the built-in Geomap panel, never the deprecated worldmap plugin).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
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


# ---- panels ------------------------------------------------------------------------------------


def _panel(kind: str, title: str, description: str, targets: list[dict], w: int, h: int) -> dict:
    for i, target in enumerate(targets):
        target["refId"] = chr(ord("A") + i)
    panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "_size": (w, h),
    }
    return panel


def timeseries(
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    *,
    w: int = 12,
    h: int = 8,
    thresholds: dict | None = None,
    threshold_style: str = "off",
    bars: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    soft_min: float | None = None,
) -> dict:
    panel = _panel("timeseries", title, description, targets, w, h)
    custom_kw: dict = {"thresholdsStyle": {"mode": threshold_style}}
    if bars:
        custom_kw.update(drawStyle="bars", fillOpacity=80)
    if soft_min is not None:
        custom_kw["axisSoftMin"] = soft_min
    extra = {}
    if minimum is not None:
        extra["min"] = minimum
    if maximum is not None:
        extra["max"] = maximum
    panel["fieldConfig"] = defaults(
        unit, thresholds=thresholds, custom=graph_custom(**custom_kw), **extra
    )
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    *,
    w: int = 4,
    h: int = 4,
    thresholds: dict | None = None,
    mappings: list | None = None,
    color_mode: str = "value",
    graph: bool = False,
    text_mode: str = "auto",
    no_value: str | None = None,
    decimals: int | None = None,
) -> dict:
    panel = _panel("stat", title, description, targets, w, h)
    extra: dict = {"mappings": mappings or []}
    if no_value is not None:
        extra["noValue"] = no_value
    if decimals is not None:
        extra["decimals"] = decimals
    panel["fieldConfig"] = defaults(unit, thresholds=thresholds, color="thresholds", **extra)
    panel["options"] = {
        "graphMode": "area" if graph else "none",
        "colorMode": color_mode,
        "justifyMode": "auto",
        "textMode": text_mode,
        "wideLayout": True,
        "showPercentChange": False,
        "reduceOptions": REDUCE_LAST,
        "percentChangeColorMode": "standard",
        "orientation": "auto",
    }
    return panel


def gauge(
    title: str,
    description: str,
    targets: list[dict],
    unit: str,
    *,
    w: int = 6,
    h: int = 8,
    thresholds: dict | None = None,
    minimum: float = 0,
    maximum: float = 1,
) -> dict:
    panel = _panel("gauge", title, description, targets, w, h)
    panel["fieldConfig"] = defaults(
        unit, thresholds=thresholds, color="thresholds", min=minimum, max=maximum
    )
    panel["options"] = {
        "showThresholdLabels": False,
        "showThresholdMarkers": True,
        "sizing": "auto",
        "minVizWidth": 75,
        "minVizHeight": 75,
        "reduceOptions": REDUCE_LAST,
        "orientation": "auto",
    }
    return panel


def bargauge(
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    *,
    w: int = 12,
    h: int = 8,
    thresholds: dict | None = None,
    color: str = "continuous-BlPu",
) -> dict:
    panel = _panel("bargauge", title, description, targets, w, h)
    panel["fieldConfig"] = defaults(unit, thresholds=thresholds, color=color, min=0)
    panel["options"] = {
        "displayMode": "gradient",
        "valueMode": "color",
        "namePlacement": "auto",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizWidth": 8,
        "minVizHeight": 16,
        "maxVizHeight": 300,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False, "calcs": []},
        "reduceOptions": REDUCE_LAST,
        "orientation": "horizontal",
    }
    return panel


def table(
    title: str,
    description: str,
    targets: list[dict],
    unit: str = "short",
    *,
    w: int = 12,
    h: int = 8,
    rename: dict[str, str] | None = None,
    exclude: tuple[str, ...] = ("Time",),
    sort_by: str | None = None,
    mappings: list | None = None,
    thresholds: dict | None = None,
    cell: dict | None = None,
    decimals: int | None = None,
) -> dict:
    """A table of instant queries; several queries are merged on their common labels."""
    panel = _panel("table", title, description, targets, w, h)
    custom: dict = {"align": "auto", "inspect": False}
    if cell is not None:
        custom["cellOptions"] = cell
    extra: dict = {"mappings": mappings or []}
    if decimals is not None:
        extra["decimals"] = decimals
    panel["fieldConfig"] = defaults(
        unit,
        thresholds=thresholds,
        color="thresholds",
        custom=custom,
        **extra,
    )
    options: dict = {
        "frameIndex": 0,
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": False, "reducer": ["sum"], "countRows": False},
    }
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    panel["options"] = options
    transformations = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(exclude, True),
                "indexByName": {},
                "renameByName": rename or {},
            },
        }
    )
    panel["transformations"] = transformations
    return panel


def heatmap(
    title: str, description: str, targets: list[dict], y_unit: str, *, w: int = 12, h: int = 8
) -> dict:
    panel = _panel("heatmap", title, description, targets, w, h)
    panel["fieldConfig"] = defaults(
        "short",
        custom={
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "scaleDistribution": {"type": "linear"},
        },
    )
    panel["options"] = {
        "calculate": False,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "fill": "dark-orange",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "reverse": False,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-09},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": y_unit},
        "selectionMode": "x",
    }
    return panel


def geomap(
    title: str,
    description: str,
    target: dict,
    unit: str,
    *,
    location: dict,
    layer_name: str,
    w: int = 12,
    h: int = 14,
) -> dict:
    """World map: one instant table query, a markers layer sized and coloured by `Value`."""
    panel = _panel("geomap", title, description, [target], w, h)
    panel["fieldConfig"] = defaults(unit, color="continuous-BlYlRd", thresholds=GREEN)
    panel["options"] = {
        "view": {"id": "zero", "lat": 20, "lon": 0, "zoom": 1, "allLayers": True},
        "controls": {
            "showZoom": True,
            "mouseWheelZoom": False,
            "showAttribution": True,
            "showScale": False,
            "showMeasure": False,
            "showDebug": False,
        },
        "basemap": {"type": "default", "name": "Basemap", "config": {}},
        "tooltip": {"mode": "details"},
        "layers": [
            {
                "type": "markers",
                "name": layer_name,
                "tooltip": True,
                "location": location,
                "config": {
                    "showLegend": True,
                    "style": {
                        "size": {"field": "Value", "min": 3, "max": 25, "fixed": 5},
                        "color": {"field": "Value", "fixed": "dark-green"},
                        "opacity": 0.6,
                        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                        "symbolAlign": {"horizontal": "center", "vertical": "center"},
                        "rotation": {"fixed": 0, "min": -360, "max": 360, "mode": "mod"},
                    },
                },
            }
        ],
    }
    return panel


def text(title: str, content: str, *, w: int = 24, h: int = 3) -> dict:
    panel = {
        "type": "text",
        "title": title,
        "datasource": DS,
        "options": {
            "mode": "markdown",
            "content": content,
            "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False},
        },
        "_size": (w, h),
    }
    return panel


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


# ---- variables ---------------------------------------------------------------------------------


def datasource_var() -> dict:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {"text": "Prometheus", "value": "prometheus"},
        "options": [],
        "refresh": 1,
        "regex": "",
        "hide": 0,
        "includeAll": False,
        "multi": False,
    }


def query_var(name: str, label: str, query: str) -> dict:
    """Multi-value label variable whose "All" is the regex `.*` (queries use `=~`)."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "definition": query,
        "current": {"text": ["All"], "value": ["$__all"]},
        "options": [],
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "hide": 0,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
    }


# `label_values()` takes a series selector, not an expression, so "nodes that have logs or an
# API" is a __name__ regex over both metrics rather than `a or b`.
NODE_VAR = query_var(
    "node", "Node", 'label_values({__name__=~"storagenode_log_lines_total|storagenode_up"}, node)'
)
SATELLITE_VAR = query_var(
    "satellite",
    "Satellite",
    'label_values({__name__=~"storagenode_transfers_total|storagenode_satellite_info", '
    'node=~"$node"}, satellite)',
)
ACTION_VAR = query_var(
    "action", "Action", 'label_values(storagenode_geo_transfers{node=~"$node"}, action)'
)


def textbox_var(name: str, label: str, value: str, description: str) -> dict:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": value,
        "current": {"text": value, "value": value},
        "options": [{"selected": True, "text": value, "value": value}],
        "hide": 0,
    }


# ---- dashboard ---------------------------------------------------------------------------------


def layout(items: list[dict]) -> list[dict]:
    """Assign ids and grid positions left to right, top to bottom (24 columns)."""
    panels: list[dict] = []
    x = y = row_h = 0
    for panel_id, item in enumerate(items, start=1):
        panel = dict(item)
        w, h = panel.pop("_size")
        if x + w > 24 or panel["type"] == "row":
            x, y, row_h = 0, y + row_h, 0
        out = {"id": panel_id, "gridPos": {"h": h, "w": w, "x": x, "y": y}}
        out.update(panel)
        panels.append(out)
        x += w
        row_h = max(row_h, h)
        if panel["type"] == "row":
            x, y, row_h = 0, y + h, 0
    return panels


def dashboard(
    uid: str, title: str, description: str, variables: list[dict], items: list[dict]
) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": "Storj dashboards",
                "type": "dashboards",
                "tags": ["storj"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "tooltip": "",
                "targetBlank": False,
            }
        ],
        "templating": {"list": [datasource_var(), *variables]},
        "panels": layout(items),
    }


# ---- the dashboards ------------------------------------------------------------------------


def _success_ratio(matchers: str, by: str, window: str) -> str:
    return (
        f'sum by ({by}) (increase(storagenode_transfers_total{{{matchers}, result="success"}}'
        f"[{window}])) / sum by ({by}) (increase(storagenode_transfers_total{{{matchers}}}"
        f"[{window}]))"
    )


SCORE_STEPS = steps((None, "red"), (DQ_AUDIT, "orange"), (0.98, "green"))
SUSPENSION_STEPS = steps((None, "red"), (SUSPENSION, "orange"), (0.9, "green"))
DISK_STEPS = steps((None, "green"), (0.9, "orange"), (0.97, "red"))
RATE_STEPS = steps((None, "red"), (0.9, "orange"), (0.97, "green"))


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
            [q(_success_ratio(f'{N}, action="GET"', "node", RANGE), "{{node}}", instant=True)],
            "percentunit",
            w=8,
            thresholds=RATE_STEPS,
            text_mode="value_and_name",
            decimals=1,
        ),
        stat(
            "Upload success rate",
            "Successful PUT transfers / all finished PUT transfers in the time range.",
            [q(_success_ratio(f'{N}, action="PUT"', "node", RANGE), "{{node}}", instant=True)],
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
                    _success_ratio(f'{N}, action="GET_AUDIT"', "node", RANGE),
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
                q(_success_ratio(f'{N}, action="GET"', "node", RI), "{{node}} download"),
                q(_success_ratio(f'{N}, action="PUT"', "node", RI), "{{node}} upload"),
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


def node() -> dict:
    ev = f"sum by (event) (increase(storagenode_events_total{{{N}, event=~"
    items = [
        row("Status"),
        stat(
            "Node API",
            "Was the last poll of the node's dashboard API successful?",
            [q(f"min(storagenode_up{{{N}}})")],
            mappings=UP_DOWN,
            color_mode="background",
            thresholds=steps((None, "red"), (1, "green")),
        ),
        stat(
            "Version",
            "Version reported by the node API.",
            [q(f"max by (version) (storagenode_info{{{N}}})", "{{version}}", instant=True)],
            text_mode="name",
            color_mode="none",
        ),
        stat(
            "QUIC",
            "Is QUIC reachable according to the node?",
            [q(f"min(storagenode_quic_ok{{{N}}})")],
            mappings=[
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "misconfigured", "color": "orange", "index": 0},
                        "1": {"text": "OK", "color": "green", "index": 1},
                    },
                }
            ],
            color_mode="background",
            thresholds=steps((None, "orange"), (1, "green")),
        ),
        stat(
            "Last satellite contact",
            "Time since the node was last pinged by a satellite.",
            [q(f"time() - max(storagenode_last_pinged_timestamp_seconds{{{N}}})")],
            "s",
            thresholds=steps((None, "green"), (3600, "orange"), (4 * 3600, "red")),
        ),
        stat(
            "Newest log line",
            "Age of the newest parsed log line (stale logs mean a stopped node or a broken "
            "log source).",
            [q(f"time() - max(storagenode_log_last_line_timestamp_seconds{{{N}}})")],
            "s",
            thresholds=steps((None, "green"), (600, "orange"), (3600, "red")),
        ),
        stat(
            "Transfers in flight",
            "Started transfers without a finished line yet (needs debug logs).",
            [q(f"sum(storagenode_transfers_in_flight{{{N}}})")],
            graph=True,
        ),
        row("Transfers"),
        timeseries(
            "Transfers by action and result",
            "Finished piece transfers per second.",
            [
                q(
                    f"sum by (action, result) (rate(storagenode_transfers_total{{{NS}}}[{RI}]))",
                    "{{action}} {{result}}",
                )
            ],
            "ops",
        ),
        timeseries(
            "Success rate by action",
            "Share of finished transfers that succeeded.",
            [q(_success_ratio(NS, "action", RI), "{{action}}")],
            "percentunit",
            maximum=1,
        ),
        table(
            "Success rate by satellite and action",
            "Successful / all finished transfers in the time range.",
            [table_q(_success_ratio(NS, "satellite, action", RANGE))],
            "percentunit",
            rename={"satellite": "Satellite", "action": "Action", "Value": "Success rate"},
            thresholds=RATE_STEPS,
            cell=COLOR_CELL,
            decimals=2,
        ),
        bargauge(
            "Transfers by satellite",
            "Finished transfers per satellite in the time range.",
            [
                q(
                    f"sum by (satellite) (increase(storagenode_transfers_total{{{NS}}}[{RANGE}]))",
                    "{{satellite}}",
                    instant=True,
                )
            ],
        ),
        timeseries(
            "Canceled and failed by satellite",
            "Transfers per second that did not succeed.",
            [
                q(
                    "sum by (satellite, result) (rate(storagenode_transfers_total"
                    f'{{{NS}, result!="success"}}[{RI}]))',
                    "{{satellite}} {{result}}",
                )
            ],
            "ops",
            w=24,
        ),
        row("Ingress and egress"),
        timeseries(
            "Ingress by satellite",
            "Bytes received per second.",
            [
                q(
                    f"sum by (satellite) (rate(storagenode_ingress_bytes_total{{{NS}}}[{RI}]))",
                    "{{satellite}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Egress by satellite",
            "Bytes sent per second.",
            [
                q(
                    f"sum by (satellite) (rate(storagenode_egress_bytes_total{{{NS}}}[{RI}]))",
                    "{{satellite}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Traffic by action",
            "Bytes per second by transfer kind.",
            [
                q(
                    f"sum by (action) (rate(storagenode_ingress_bytes_total{{{NS}}}[{RI}]))",
                    "{{action}} in",
                ),
                q(
                    f"sum by (action) (rate(storagenode_egress_bytes_total{{{NS}}}[{RI}]))",
                    "{{action}} out",
                ),
            ],
            "Bps",
            w=8,
        ),
        row("Durations and sizes"),
        heatmap(
            "Transfer duration (successful)",
            "Started-to-finished time of successful transfers (needs log.level debug).",
            [
                q(
                    "sum by (le) (increase(storagenode_transfer_duration_seconds_bucket"
                    f'{{{N}, result="success"}}[{RI}]))',
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            "s",
        ),
        timeseries(
            "Transfer duration p50 / p95",
            "Quantiles of the successful transfer duration by action (needs log.level debug).",
            [
                q(
                    "histogram_quantile(0.5, sum by (le, action) (rate("
                    f'storagenode_transfer_duration_seconds_bucket{{{N}, result="success"}}'
                    f"[{RI}])))",
                    "{{action}} p50",
                ),
                q(
                    "histogram_quantile(0.95, sum by (le, action) (rate("
                    f'storagenode_transfer_duration_seconds_bucket{{{N}, result="success"}}'
                    f"[{RI}])))",
                    "{{action}} p95",
                ),
            ],
            "s",
        ),
        heatmap(
            "Piece size (successful transfers)",
            "Size distribution of successfully transferred pieces.",
            [
                q(
                    f"sum by (le) (increase(storagenode_transfer_size_bytes_bucket{{{N}}}[{RI}]))",
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
            "bytes",
        ),
        timeseries(
            "Average piece size by action",
            "Mean size of successfully transferred pieces.",
            [
                q(
                    f"sum by (action) (rate(storagenode_transfer_size_bytes_sum{{{N}}}[{RI}])) "
                    "/ sum by (action) (rate(storagenode_transfer_size_bytes_count"
                    f"{{{N}}}[{RI}]))",
                    "{{action}}",
                )
            ],
            "bytes",
        ),
        timeseries(
            "Transfers in flight by action",
            "Started transfers without a finished line yet (needs log.level debug).",
            [q(f"sum by (action) (storagenode_transfers_in_flight{{{N}}})", "{{action}}")],
            w=24,
        ),
        row("Errors"),
        bargauge(
            "Top error reasons",
            "Failed transfers in the time range by normalised reason.",
            [
                q(
                    "topk(10, sum by (action, reason) (increase("
                    f"storagenode_transfer_errors_total{{{N}}}[{RANGE}])))",
                    "{{action}} {{reason}}",
                    instant=True,
                )
            ],
            color="continuous-YlRd",
        ),
        timeseries(
            "Errors by reason",
            "Failed transfers per second by normalised reason.",
            [
                q(
                    f"sum by (reason) (rate(storagenode_transfer_errors_total{{{N}}}[{RI}]))",
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        timeseries(
            "Warnings and errors logged",
            "Log lines per second at warn level and above.",
            [
                q(
                    "sum by (level) (rate(storagenode_log_lines_total"
                    f'{{{N}, level=~"warn|error|dpanic|panic|fatal"}}[{RI}]))',
                    "{{level}}",
                )
            ],
            "cps",
            w=24,
        ),
        row("Events"),
        timeseries(
            "Garbage collection and trash",
            "Bloom filters received, retain runs and trash emptying.",
            [
                q(
                    f'{ev}"bloomfilter_received|retain_.+|trash_empty_.+"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Filewalkers",
            "Used-space, garbage-collection and trash filewalkers, expired piece collection.",
            [
                q(
                    f'{ev}".+_filewalker_.+|lazyfilewalker_failed|expired_pieces_collected"}}'
                    f"[{RI}]))",
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Pings and orders",
            "Satellite contact and order settlement.",
            [
                q(
                    f'{ev}"ping_satellite_failed|pingme_failed|quic_misconfigured|'
                    f'clock_out_of_sync|orders_.+"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Problems",
            "Database, disk, fatal and upload-rejection events.",
            [
                q(
                    f'{ev}"database_.+|fatal_error|disk_space_warning|storage_dir_check_failed|'
                    "upload_rejected|upload_internal_error|file_found_in_trash|scores_worsened|"
                    f'graceful_exit_failed|compaction_failed|version_outdated"}}[{RI}]))',
                    "{{event}}",
                )
            ],
            bars=True,
        ),
        table(
            "Events in range",
            "Every log event counted in the time range.",
            [table_q(f"sum by (event) (increase(storagenode_events_total{{{N}}}[{RANGE}]))")],
            rename={"event": "Event", "Value": "Count"},
            sort_by="Count",
            decimals=0,
        ),
        row("Hot pieces"),
        table(
            "Most downloaded pieces",
            "The most requested pieces (approximate GET counts from a bounded sketch).",
            [table_q(f"topk(10, max by (piece_id) (storagenode_top_piece_downloads{{{N}}}))")],
            w=24,
            rename={"piece_id": "Piece", "Value": "Downloads"},
            sort_by="Downloads",
            decimals=0,
        ),
    ]
    return dashboard(
        "storj-node",
        "Storj / Node",
        "One node in depth: transfers and success rates per action and satellite, traffic, "
        "durations and sizes, errors, log events and hot pieces.",
        [NODE_VAR, SATELLITE_VAR],
        items,
    )


def traffic_map() -> dict:
    geo = f'{NA}, geohash!=""'
    items = [
        text(
            "About this map",
            "Where the selected nodes' customers and repair workers are, from the remote "
            "address of each finished transfer located with the GeoIP database given to the "
            "exporter (`--geoip-db`). Markers are geohash cells (precision 3 by default, about "
            "150 km) counted over the exporter's sliding geo window (10 minutes by default); "
            "marker size and colour follow the value. No IP address is stored or exported.",
        ),
        geomap(
            "Transfers by region",
            "Finished transfers in the geo window by geohash cell.",
            table_q(f"sum by (geohash) (storagenode_geo_transfers{{{geo}}})"),
            "short",
            location={"mode": "geohash", "geohash": "geohash"},
            layer_name="Transfers",
        ),
        geomap(
            "Bytes by region",
            "Bytes transferred in the geo window by geohash cell.",
            table_q(f"sum by (geohash) (storagenode_geo_bytes{{{geo}}})"),
            "bytes",
            location={"mode": "geohash", "geohash": "geohash"},
            layer_name="Bytes",
        ),
        geomap(
            "Transfers by country",
            "Finished transfers in the geo window by country (ISO 3166 code, Grafana's "
            "built-in countries gazetteer).",
            table_q(f'sum by (country) (storagenode_geo_transfers{{{NA}, country!=""}})'),
            "short",
            location={
                "mode": "lookup",
                "lookup": "country",
                "gazetteer": "public/gazetteer/countries.json",
            },
            layer_name="Countries",
        ),
        table(
            "Bytes by country",
            "Bytes transferred in the geo window by country.",
            [table_q(f'sum by (country) (storagenode_geo_bytes{{{NA}, country!=""}})')],
            "bytes",
            h=14,
            rename={"country": "Country", "Value": "Bytes"},
            sort_by="Bytes",
            cell=GAUGE_CELL,
        ),
        bargauge(
            "Top regions",
            "Geohash cells with the most bytes in the geo window.",
            [
                q(
                    f"topk(15, sum by (geohash, country) (storagenode_geo_bytes{{{geo}}}))",
                    "{{country}} {{geohash}}",
                    instant=True,
                )
            ],
            "bytes",
            h=10,
        ),
        bargauge(
            "Top countries by transfers",
            "Countries with the most finished transfers in the geo window.",
            [
                q(
                    f'topk(15, sum by (country) (storagenode_geo_transfers{{{NA}, country!=""}}))',
                    "{{country}}",
                    instant=True,
                )
            ],
            h=10,
        ),
        timeseries(
            "Transfers in the geo window by action",
            "Finished transfers counted in the sliding geo window.",
            [q(f"sum by (action) (storagenode_geo_transfers{{{NA}}})", "{{action}}")],
        ),
        timeseries(
            "Countries seen",
            "Number of distinct countries in the geo window.",
            [
                q(
                    f'count(count by (country) (storagenode_geo_transfers{{{NA}, country!=""}}))',
                    "countries",
                )
            ],
        ),
    ]
    return dashboard(
        "storj-traffic-map",
        "Storj / Traffic map",
        "Where traffic comes from: world maps of transfers and bytes by geohash cell and by "
        "country, per action. Needs --geoip-db (docs/geo.md). With a DB-IP database: IP "
        "Geolocation by DB-IP (https://db-ip.com).",
        [NODE_VAR, ACTION_VAR],
        items,
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


def reputation_capacity() -> dict:
    used_ratio = (
        f"max by (node) (storagenode_disk_used_bytes{{{N}}} / "
        f"storagenode_disk_allocated_bytes{{{N}}})"
    )
    items = [
        row("Scores"),
        stat(
            "Disqualified on",
            "Number of satellites that disqualified a selected node.",
            [q(f"sum(storagenode_satellite_disqualified{{{NS}}})")],
            thresholds=steps((None, "green"), (1, "red")),
            w=8,
        ),
        stat(
            "Suspended on",
            "Number of satellites on which a selected node is suspended.",
            [q(f"sum(storagenode_satellite_suspended{{{NS}}})")],
            thresholds=steps((None, "green"), (1, "orange")),
            w=8,
        ),
        stat(
            "Vetted on",
            "Number of satellites on which the selected nodes are vetted.",
            [q(f"sum(storagenode_satellite_vetted{{{NS}}})")],
            thresholds=GREEN,
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
            thresholds=DISK_STEPS,
        ),
        stat(
            "Days until full",
            "Free space divided by the growth of used space over the dashboard's time range. "
            "Empty when used space is not growing.",
            [
                q(
                    f"max by (node) (storagenode_disk_free_bytes{{{N}}}) / "
                    f"(max by (node) (deriv(storagenode_disk_used_bytes{{{N}}}[{RANGE}])) "
                    "* 86400 > 0)",
                    "{{node}}",
                    instant=True,
                )
            ],
            "d",
            w=6,
            h=8,
            thresholds=steps((None, "red"), (7, "orange"), (30, "green")),
            text_mode="value_and_name",
            no_value="not growing",
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
    ]
    return dashboard(
        "storj-reputation-capacity",
        "Storj / Reputation and capacity",
        "Audit, suspension and online scores per satellite with their thresholds, "
        "disqualification and vetting, disk use and a days-until-full forecast.",
        [NODE_VAR, SATELLITE_VAR],
        items,
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
    ]
    return dashboard(
        "storj-earnings",
        "Storj / Earnings",
        "Estimated and held payout, and month-to-date traffic and egress earnings per satellite.",
        [NODE_VAR, SATELLITE_VAR, rate_var],
        items,
    )


def exporter_health() -> dict:
    job = 'job="storagenode"'
    items = [
        stat(
            "Exporter scrape",
            "Is Prometheus scraping the exporter (job storagenode)?",
            [q(f"min(up{{{job}}})")],
            mappings=UP_DOWN,
            color_mode="background",
            thresholds=steps((None, "red"), (1, "green")),
            w=6,
        ),
        stat(
            "Log sources up",
            "Readable or connected log sources.",
            [q(f"sum(storagenode_log_source_up{{{N}}})")],
            thresholds=steps((None, "red"), (1, "green")),
            w=6,
        ),
        stat(
            "Scrape duration",
            "How long the last scrape of the exporter took.",
            [q(f"max(scrape_duration_seconds{{{job}}})")],
            "s",
            thresholds=steps((None, "green"), (1, "orange"), (5, "red")),
            w=6,
            graph=True,
        ),
        stat(
            "Samples per scrape",
            "Samples exposed by the exporter (watch for label cardinality).",
            [q(f"sum(scrape_samples_scraped{{{job}}})")],
            w=6,
            graph=True,
        ),
        row("Log sources"),
        timeseries(
            "Log source up",
            "1 while the node's log is readable or the forwarder is connected.",
            [q(f"max by (node) (storagenode_log_source_up{{{N}}})", "{{node}}")],
            w=8,
            maximum=1,
            minimum=0,
        ),
        timeseries(
            "Lines parsed by level",
            "Parsed log lines per second.",
            [
                q(
                    f"sum by (level) (rate(storagenode_log_lines_total{{{N}}}[{RI}]))",
                    "{{level}}",
                )
            ],
            "cps",
            w=8,
        ),
        timeseries(
            "Unparsed and oversized lines",
            "Lines that are not storagenode log lines, and lines over the length limit.",
            [
                q(
                    f"sum by (node) (rate(storagenode_log_unparsed_lines_total{{{N}}}[{RI}]))",
                    "{{node}} unparsed",
                ),
                q(
                    f"sum by (node) (rate(storagenode_log_oversized_lines_total{{{N}}}[{RI}]))",
                    "{{node}} oversized",
                ),
            ],
            "cps",
            w=8,
        ),
        timeseries(
            "Log delay",
            "Now minus the timestamp of the newest parsed line.",
            [
                q(
                    f"time() - max by (node) (storagenode_log_last_line_timestamp_seconds{{{N}}})",
                    "{{node}}",
                )
            ],
            "s",
            w=8,
        ),
        timeseries(
            "Bytes read",
            "Bytes read from each log source per second.",
            [
                q(
                    f"sum by (node) (rate(storagenode_log_source_bytes_read_total{{{N}}}[{RI}]))",
                    "{{node}}",
                )
            ],
            "Bps",
            w=8,
        ),
        timeseries(
            "Rotations, truncations, reconnects",
            "Rename rotations followed, copytruncate truncations and forwarder reconnects.",
            [
                q(
                    "sum by (node) (increase(storagenode_log_source_rotations_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} rotations",
                ),
                q(
                    "sum by (node) (increase(storagenode_log_source_truncations_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} truncations",
                ),
                q(
                    "sum by (node) (increase(storagenode_log_source_reconnects_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} reconnects",
                ),
            ],
            bars=True,
            w=8,
        ),
        timeseries(
            "Unmatched transfer starts",
            "`started` lines dropped from the pairing table because no finished line came.",
            [
                q(
                    "sum by (node) (increase(storagenode_transfer_starts_expired_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}}",
                )
            ],
            bars=True,
            w=24,
        ),
        row("Node API"),
        timeseries(
            "API errors",
            "Failed or malformed answers of the node's dashboard API.",
            [
                q(
                    "sum by (node, endpoint) (increase(storagenode_api_errors_total"
                    f"{{{N}}}[{RI}]))",
                    "{{node}} {{endpoint}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "API request duration",
            "Duration of the last request per endpoint (the payout endpoint can be slow).",
            [
                q(
                    f"max by (node, endpoint) (storagenode_api_request_duration_seconds{{{N}}})",
                    "{{node}} {{endpoint}}",
                )
            ],
            "s",
        ),
        row("Exporter process"),
        timeseries(
            "Scrape duration over time",
            "Time Prometheus needed to scrape the exporter.",
            [q(f"scrape_duration_seconds{{{job}}}", "{{instance}}")],
            "s",
            w=8,
        ),
        timeseries(
            "Exporter memory",
            "Resident memory of the exporter process.",
            [q(f"process_resident_memory_bytes{{{job}}}", "{{instance}}")],
            "bytes",
            w=8,
        ),
        timeseries(
            "Exporter CPU",
            "CPU seconds per second used by the exporter process.",
            [q(f"rate(process_cpu_seconds_total{{{job}}}[{RI}])", "{{instance}}")],
            "percentunit",
            w=8,
        ),
    ]
    return dashboard(
        "storj-exporter-health",
        "Storj / Exporter health",
        "Is the exporter itself healthy: log sources, unparsed lines, rotations and "
        "reconnects, node API errors and latency, scrape duration and resources.",
        [NODE_VAR],
        items,
    )


DASHBOARDS = {
    "overview.json": overview,
    "node.json": node,
    "traffic-map.json": traffic_map,
    "reputation-capacity.json": reputation_capacity,
    "earnings.json": earnings,
    "exporter-health.json": exporter_health,
}


def render() -> dict[str, str]:
    """File name -> JSON text, deterministic."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    rendered = render()
    if args.check:
        stale = [
            name
            for name, content in rendered.items()
            if not (args.out / name).is_file()
            or (args.out / name).read_text(encoding="utf-8") != content
        ]
        extra = (
            sorted(p.name for p in args.out.glob("*.json") if p.name not in rendered)
            if args.out.is_dir()
            else []
        )
        for name in stale:
            print(
                f"{args.out / name} is out of date: run python grafana/generate.py", file=sys.stderr
            )
        for name in extra:
            print(f"{args.out / name} is not generated by grafana/generate.py", file=sys.stderr)
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.items():
        (args.out / name).write_text(content, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
