"""Grafana dashboards: schema, structure, PromQL, and real data from the real exporter.

No Grafana server can run here, so the dashboards are checked the way Grafana would read them:
JSON schema of the dashboard and of each panel kind (grafana-foundation-sdk schemas vendored in
tests/fixtures/grafana-jsonschema, for Grafana 11.6 and for the SDK's main line), the structural
rules of grafana/dashboard-linter, PromQL parsed by
`promtool`, and every panel query run against a real Prometheus that scraped the real exporter
(`python -m exporter demo`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
DASH_DIR = GRAFANA / "dashboards"
SCHEMA_ROOT = ROOT / "tests" / "fixtures" / "grafana-jsonschema"
# v11.6: the line docker-compose.yml pins; main: the SDK's newest schemas (Grafana 12 and later).
SCHEMA_VERSIONS = ("v11.6", "main")

DS = {"type": "prometheus", "uid": "${datasource}"}
CORE_PANELS = {
    "timeseries", "stat", "gauge", "table", "bargauge", "heatmap", "geomap", "text", "row",
    "alertlist", "piechart", "barchart", "histogram", "statetimeline", "statushistory",
}  # fmt: skip

# Values the variables take in the static and live checks. `.*` is what "All" expands to
# (allValue), so a query that works with it works with any selection.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$node": ".*",
    "$satellite": ".*",
    "$action": ".*",
    "$egress_usd_per_tb": "2",
}

# Panels that show nothing on the demo by design, with the reason.
EMPTY_BY_DESIGN = {
    ("storj-exporter-health", "API failures by reason"): "a reason appears once a node API "
    "request failed that way; the demo's simulated API always answers",
    ("storj-exporter-health", "OTLP log export"): "only exported when an OTLP listener runs "
    "(a node given as NAME:otlp); the demo reads a log file",
}
# The satellites' at-rest tally covers the current month only: on the 1st (UTC) no day of it
# is tallied yet (from v1.162 the 2nd too, as yesterday is then only projected).
AT_REST = "storagenode_satellite_storage_at_rest_"
NO_TALLY_YET = "no satellite tallied a day of this month yet (the 1st, UTC)"

NON_STORJ_METRICS = {
    "ALERTS",
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
}


def _load_generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
DASHBOARDS = {name: json.loads(text) for name, text in GEN.render().items()}


def panels(dash: dict) -> list[dict]:
    """All panels, rows excluded, including panels nested in collapsed rows."""
    out = []
    for panel in dash["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def all_targets() -> list[tuple[str, dict, dict]]:
    return [
        (dash["uid"], panel, target)
        for dash in DASHBOARDS.values()
        for panel in panels(dash)
        for target in panel.get("targets", [])
    ]


def substitute(expr: str, **values: str) -> str:
    """Variables replaced by SUBSTITUTIONS, or by `values` (e.g. node="demo")."""
    table = {**SUBSTITUTIONS, **{f"${k}": v for k, v in values.items()}}
    for var in sorted(table, key=len, reverse=True):
        expr = expr.replace(var, table[var])
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def label_values_selector(query: str) -> tuple[str, str]:
    """`label_values(SELECTOR, label)` -> (SELECTOR, label), as Grafana's Prometheus plugin."""
    m = re.fullmatch(r"label_values\((?:(.+),\s*)?([a-zA-Z_$][a-zA-Z0-9_]*)\)\s*", query)
    assert m, f"not a label_values() query: {query}"
    return m.group(1), m.group(2)


def _ids() -> list[str]:
    return [f"{uid}/{p['id']}:{p['title']}/{t['refId']}" for uid, p, t in all_targets()]


# ---- generator ----------------------------------------------------------------------------


def test_generator_output_equals_committed_json():
    rendered = GEN.render()
    committed = {p.name for p in DASH_DIR.glob("*.json")}
    assert committed == set(rendered), "run python grafana/generate.py"
    for name, text in rendered.items():
        assert (DASH_DIR / name).read_text(encoding="utf-8") == text, f"{name} is stale"


def test_generator_check_flag(tmp_path):
    script = str(GRAFANA / "generate.py")
    ok = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    subprocess.run([sys.executable, script, "--out", str(tmp_path)], check=True)
    (tmp_path / "node.json").write_text("{}", encoding="utf-8")
    stale = subprocess.run(
        [sys.executable, script, "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert stale.returncode == 1
    assert "node.json is out of date" in stale.stderr


# ---- schema -------------------------------------------------------------------------------


def _schema(kind: str, version: str = "v11.6") -> dict:
    path = SCHEMA_ROOT / version / f"{kind}.jsonschema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    if kind == "dashboard":
        _patch_any_values(schema["definitions"])
    if version == "v11.6" and kind == "dashboard":
        _patch_v11_gaps(schema["definitions"])
    return schema


def _patch_any_values(definitions: dict) -> None:
    """The SDK's JSON schemas (both lines) turn two `any` values of Grafana's dashboard model
    (`MatcherConfig.options`, `DynamicConfigValue.value`, TypeScript `any`) into `object`, which
    rejects every field override Grafana itself writes: `{"id": "byName", "options": "node"}`,
    `{"id": "unit", "value": "bytes"}`."""
    definitions["MatcherConfig"]["properties"]["options"] = {}
    definitions["DynamicConfigValue"]["properties"]["value"] = {}


def _patch_v11_gaps(definitions: dict) -> None:
    """Two gaps of the SDK's 11.6 schema, both fixed in its main line, for JSON Grafana 11.6
    itself writes: a threshold's base step is `null` (-Infinity; the schema's own description
    says so) and a query variable has a `definition` (the query as shown in the editor)."""
    definitions["Threshold"]["properties"]["value"] = {
        "anyOf": [{"type": "number"}, {"type": "null"}]
    }
    definitions["VariableModel"]["properties"]["definition"] = {"type": "string"}


def _definition_validator(
    kind: str, definition: str, version: str = "v11.6"
) -> jsonschema.Draft7Validator | None:
    schema = _schema(kind, version)
    if definition not in schema["definitions"]:
        definition = definition.lower()  # the 11.6 schemas name the query `dataquery`
    if definition not in schema["definitions"]:
        return None
    return jsonschema.Draft7Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    )


def _errors(validator: jsonschema.Draft7Validator, doc) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_validates_against_schema(name, version):
    validator = jsonschema.Draft7Validator(_schema("dashboard", version))
    assert _errors(validator, DASHBOARDS[name]) == []


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_schema_rejects_a_broken_dashboard(version):
    """The schema check can fail: an unknown key and a bad grid width are reported."""
    validator = jsonschema.Draft7Validator(_schema("dashboard", version))
    broken = json.loads(json.dumps(DASHBOARDS["node.json"]))
    broken["__inputs"] = []
    broken["panels"][1]["gridPos"]["w"] = 30
    errors = _errors(validator, broken)
    assert any("__inputs" in e for e in errors)
    assert len(errors) == 2


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_options_validate_against_their_kind(name, version):
    problems = []
    target_validator = _definition_validator("prometheus", "Dataquery", version)
    for panel in panels(DASHBOARDS[name]):
        kind, where = panel["type"], f"{panel['id']} {panel['title']}"
        options = _definition_validator(kind, "Options", version)
        assert options is not None, f"no schema for panel kind {kind}"
        problems += [f"{where} options {e}" for e in _errors(options, panel["options"])]
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        field_config = _definition_validator(kind, "FieldConfig", version)
        if field_config is None:
            assert not custom, f"{where}: {kind} has no custom field config"
        elif custom is not None:
            problems += [f"{where} custom {e}" for e in _errors(field_config, custom)]
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in override["properties"]:
                if prop["id"].startswith("custom."):  # custom config as the override makes it
                    doc = {**(custom or {}), prop["id"].removeprefix("custom."): prop["value"]}
                    problems += [f"{where} override {e}" for e in _errors(field_config, doc)]
        for target in panel.get("targets", []):
            problems += [f"{where} target {e}" for e in _errors(target_validator, target)]
    assert problems == []


# ---- structure (dashboard-linter rules) ---------------------------------------------------


def test_uids_unique_and_stable():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-z0-9-]{8,40}", uid) for uid in uids)
    assert all("id" not in d for d in DASHBOARDS.values())


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panel_ids_and_refids_unique(name):
    ids = [p["id"] for p in DASHBOARDS[name]["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in panels(DASHBOARDS[name]):
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert all(refs) and len(set(refs)) == len(refs), panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_uses_the_datasource_variable(name):
    dash = DASHBOARDS[name]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DS, var["name"]
    for panel in panels(dash):
        assert panel["datasource"] == DS, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == DS, panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_no_inputs_and_core_panels_only(name):
    text = (DASH_DIR / name).read_text(encoding="utf-8")
    assert "__inputs" not in text
    assert "${DS_" not in text
    assert "worldmap" not in text
    for panel in DASHBOARDS[name]["panels"]:
        assert panel["type"] in CORE_PANELS, panel["type"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_variables():
    for name, dash in DASHBOARDS.items():
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        node = variables["node"]
        if name == "node.json":  # one node: rates and percentiles are never summed over nodes
            assert not node["multi"] and not node["includeAll"] and "current" not in node
        else:
            assert node["multi"] and node["includeAll"] and node["allValue"] == ".*"
        selector, label = label_values_selector(node["query"])
        assert label == "node"
        assert "storagenode_log_lines_total" in selector and "storagenode_up" in selector
        for var in variables.values():
            if var["type"] == "query":
                label_values_selector(var["query"])
    assert "satellite" in {v["name"] for v in DASHBOARDS["node.json"]["templating"]["list"]}
    action = {v["name"]: v for v in DASHBOARDS["traffic-map.json"]["templating"]["list"]}
    assert action["action"]["multi"] and action["action"]["includeAll"]


def test_rate_and_increase_use_grafana_intervals():
    window = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*[^\[()]*\[([^\]]+)\]")
    for uid, panel, target in all_targets():
        expr = target["expr"]
        found = window.findall(expr)
        if re.search(r"\b(?:rate|irate|increase)\s*\(", expr):
            assert found, f"{uid} {panel['title']}: window not found in {expr}"
        for w in found:
            assert w in ("$__rate_interval", "$__range"), f"{uid} {panel['title']}: [{w}]"
        assert "irate(" not in expr
        if "$__range" in expr:  # a whole-range value is one number: instant query
            assert target["instant"], f"{uid} {panel['title']}"


# docs/otlp.md documents the OTLP listener's metrics (`storagenode_otlp_requests_total{result}`).
METRIC_DOCS = ("metrics.md", "otlp.md")


def _documented_metrics() -> set[str]:
    text = "\n".join((ROOT / "docs" / d).read_text(encoding="utf-8") for d in METRIC_DOCS)
    # a name with its labels (`name{result}`, `name{reason="a"|"b"}`), not `_{a,b}_` names
    names = set(re.findall(r"`(storagenode_[a-z0-9_]+)\{[a-z_]+(?:=[^}`]*)?\}`", text))
    for token in re.findall(r"`(storagenode_[a-z0-9_{},]+)`", text):
        m = re.fullmatch(r"([a-z0-9_]*)\{([a-z0-9_,]+)\}([a-z0-9_]*)", token)
        if m:
            names |= {m.group(1) + part + m.group(3) for part in m.group(2).split(",")}
        else:
            names.add(token)
    return names


def test_metric_names_are_the_documented_ones():
    documented = _documented_metrics()
    assert "storagenode_transfers_total" in documented
    assert "storagenode_disk_trash_bytes" in documented
    used = set()
    for uid, panel, target in all_targets():
        for name in re.findall(r"\b(storagenode_[a-z0-9_]+)\b", target["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in documented or base in documented, f"{uid} {panel['title']}: {name}"
            used.add(name)
        for name in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\{", target["expr"]):
            assert name.startswith("storagenode_") or name in NON_STORJ_METRICS, name
    assert len(used) >= 40


def _geo_fields(panel: dict, target: dict) -> set[str]:
    by = re.search(r"\bby\s*\(([^)]*)\)", target["expr"])
    labels = {s.strip() for s in by.group(1).split(",")} if by else set()
    value = "Value" if len(panel["targets"]) == 1 else f"Value #{target['refId']}"
    return labels | {value}


def test_geomap_layers_reference_fields_their_query_produces():
    maps = [p for d in DASHBOARDS.values() for p in panels(d) if p["type"] == "geomap"]
    modes = set()
    for panel in maps:
        (target,) = panel["targets"]
        assert target["instant"] and target["format"] == "table", panel["title"]
        fields = _geo_fields(panel, target)
        for layer in panel["options"]["layers"]:
            location = layer["location"]
            modes.add(location["mode"])
            key = {"geohash": "geohash", "lookup": "lookup"}[location["mode"]]
            assert location[key] in fields, (panel["title"], location)
            style = layer["config"]["style"]
            assert style["size"]["field"] in fields
            assert style["color"]["field"] in fields
        assert panel["options"]["basemap"]["type"] == "default"
    assert modes == {"geohash", "lookup"}
    assert any("storagenode_geo_transfers" in p["targets"][0]["expr"] for p in maps)
    assert any("storagenode_geo_bytes" in p["targets"][0]["expr"] for p in maps)


# ---- PromQL parses (promtool) -------------------------------------------------------------


def _promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.skip("promtool not installed (Debian package prometheus)")
    return path


def _check_rules(tmp_path: Path, exprs: dict[str, str]) -> subprocess.CompletedProcess:
    rules = [{"record": name, "expr": expr} for name, expr in exprs.items()]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


def test_every_query_parses_with_promtool(tmp_path):
    exprs = {}
    for uid, panel, target in all_targets():
        name = f"grafana:{uid.replace('-', '_')}:panel{panel['id']}_{target['refId']}"
        exprs[name] = substitute(target["expr"])
    for dash in DASHBOARDS.values():
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                selector, _ = label_values_selector(var["query"])
                exprs[f"grafana:{dash['uid'].replace('-', '_')}:var_{var['name']}"] = (
                    f"count({substitute(selector)})"
                )
    assert len(exprs) > 100
    result = _check_rules(tmp_path, exprs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promtool_check_catches_a_broken_query(tmp_path):
    result = _check_rules(tmp_path, {"broken:query": "sum by (node (rate(x[5m]))"})
    assert result.returncode != 0


# ---- Overview "Nodes": one row per node ---------------------------------------------------


def _alert_numbers(alert: str) -> list[float]:
    """The `< number` of every rule of the alert, lowest first (critical before warning)."""
    path = ROOT / "prometheus" / "rules" / "storagenode-alerts.yml"
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"] if r.get("alert") == alert]
    return sorted(float(re.search(r"<\s*([0-9.]+)", e).group(1)) for e in exprs)


def test_node_table_colours_are_the_alert_thresholds():
    (panel,) = [p for p in panels(DASHBOARDS["overview.json"]) if p["title"] == "Nodes"]
    steps = {}
    for override in panel["fieldConfig"]["overrides"]:
        props = {p["id"]: p["value"] for p in override["properties"]}
        if "thresholds" in props:
            steps[props["displayName"]] = [s["value"] for s in props["thresholds"]["steps"]][1:]
    for column, alert in {
        "Audit": "StoragenodeAuditScoreLow",
        "Suspension": "StoragenodeSuspensionScoreLow",
        "Online": "StoragenodeOnlineScoreLow",
        "Free %": "StoragenodeDiskAlmostFull",
        "Download ok": "StoragenodeSuccessRateLow",
        "Upload ok": "StoragenodeSuccessRateLow",
    }.items():
        assert steps[column] == _alert_numbers(alert), column
    assert steps["Suspended"] == steps["Disqualified"] == [1]
    assert panel["options"]["footer"]["show"]
    assert set(panel["options"]["footer"]["fields"]) == {
        "Used", "Free", "Trash", "Ingress (month)", "Egress (month)", "Payout (month)",
        "Held back",
    }  # fmt: skip
