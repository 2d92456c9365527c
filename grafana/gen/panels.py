"""Panel, variable and dashboard builders: every panel and query uses `${datasource}`."""

from __future__ import annotations

from gen.common import (
    DS,
    GREEN,
    REDUCE_LAST,
    SCHEMA_VERSION,
    TAGS,
    defaults,
    graph_custom,
)

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


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict:
    """Multi-value label variable whose "All" is the regex `.*` (queries use `=~`); with
    multi=False one value, no "All", and Grafana picks the first value."""
    if not multi:
        return {
            "type": "query",
            "name": name,
            "label": label,
            "datasource": DS,
            "query": query,
            "definition": query,
            "options": [],
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "hide": 0,
            "multi": False,
            "includeAll": False,
        }
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
# The Node dashboard shows one node: its rates and percentiles are never summed over nodes.
ONE_NODE_VAR = query_var("node", "Node", NODE_VAR["query"], multi=False)
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
