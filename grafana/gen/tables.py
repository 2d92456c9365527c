"""A table with one row per key (node, satellite): one instant query per column, merged on the
key label, each column named, unit-ed and coloured by a field override on its raw field name.

Overrides match the raw names (`Value #C`, `node`) and set the header with `displayName`, so
they never depend on a rename step; the footer lists display names, as Grafana's table does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gen.common import table_q
from gen.panels import _panel


@dataclass(frozen=True)
class Column:
    """One column: the query's value (or, with `label`, one of its labels) under `title`."""

    title: str
    expr: str
    unit: str = "short"
    thresholds: dict | None = None
    mappings: list = field(default_factory=list)
    decimals: int | None = None
    total: bool = False  # summed in the footer (bytes, dollars; never scores or ratios)
    label: str | None = None  # show this label of the query instead of its value
    width: int | None = None


# Grafana writes NaN (0/0: no transfers in the range) as "NaN"; say what it means.
NONE_IN_RANGE = [{"type": "special", "options": {"match": "nan", "result": {"text": "none"}}}]
BASIC_CELL = {"type": "color-background", "mode": "basic", "applyToRow": False}


def _override(name: str, properties: dict) -> dict:
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": k, "value": v} for k, v in properties.items()],
    }


def keyed_table(
    title: str,
    description: str,
    key: str,
    key_title: str,
    columns: list[Column],
    *,
    key_links: list[dict] | None = None,
    also: tuple[tuple[str, str], ...] = (),
    w: int = 24,
    h: int = 8,
    sort_by: str | None = None,
) -> dict:
    """One row per `key` value (and `also` labels: (label, header) pairs, e.g. the satellite);
    every query must return exactly these labels (e.g. `... by (node, satellite)`)."""
    panel = _panel("table", title, description, [table_q(c.expr) for c in columns], w, h)
    key_props: dict = {"displayName": key_title}
    if key_links:
        key_props["links"] = key_links
    overrides = [_override(key, key_props)]
    overrides += [_override(label, {"displayName": name}) for label, name in also]
    hidden = {"Time": True}
    order = {key: 0} | {label: i for i, (label, _) in enumerate(also, start=1)}
    for i, (col, target) in enumerate(
        zip(columns, panel["targets"], strict=True), start=len(order)
    ):
        value = f"Value #{target['refId']}"
        if col.label:
            hidden[value] = True
        name = col.label or value
        order[name] = i
        props: dict = {"displayName": col.title, "unit": col.unit}
        if col.decimals is not None:
            props["decimals"] = col.decimals
        if col.thresholds or any("color" in o for m in col.mappings for o in _results(m)):
            props["custom.cellOptions"] = BASIC_CELL
        if col.thresholds:
            props["thresholds"] = col.thresholds
        if col.mappings:
            props["mappings"] = col.mappings
        if col.width:
            props["custom.width"] = col.width
        overrides.append(_override(name, props))
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "color": {"mode": "thresholds"},
            "thresholds": {"mode": "absolute", "steps": [{"color": "text", "value": None}]},
            "mappings": [],
            "custom": {"align": "auto", "inspect": False},
        },
        "overrides": overrides,
    }
    totals = [c.title for c in columns if c.total]
    options: dict = {
        "frameIndex": 0,
        "showHeader": True,
        "cellHeight": "sm",
        "footer": {"show": bool(totals), "reducer": ["sum"], "fields": totals, "countRows": False},
    }
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": False}]
    panel["options"] = options
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {"excludeByName": hidden, "indexByName": order, "renameByName": {}},
        },
    ]
    return panel


def _results(mapping: dict) -> list[dict]:
    options = mapping["options"]
    if mapping["type"] == "value":
        return list(options.values())
    return [options["result"]]
