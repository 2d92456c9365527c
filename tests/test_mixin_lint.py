"""The monitoring-mixin lint rules (mixtool's `lint`), applied to the alert rules and dashboards.

mixtool is a Go tool for jsonnet mixins; its rules are small, so they are restated here on the
plain YAML and JSON this project ships (monitoring.mixins.dev, "guidelines for alert names,
labels and annotations"): alert names in CamelCase, `severity` one of critical / warning / info,
a `summary` without templates written as a sentence, a `description` with templates, every
dashboard with a title and a uid, and no panel or query without the datasource variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
DASHBOARD_FILES = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))

# The regular expressions of mixtool's pkg/mixer/lint.go.
CAMEL_CASE = re.compile(r"^([A-Z]+[a-z0-9]+)+$")
GO_TEMPLATE = re.compile(r"\{\{.+}\}")
SENTENCE = re.compile(r"^[A-Z].+\.$")
SEVERITIES = {"critical", "warning", "info"}
DATASOURCE_VARIABLE = re.compile(r"^\$\{?datasource\}?$")


def alert_problems(rule: dict) -> list[str]:
    """mixtool's alert guidelines for one rule; an empty list when the rule follows them."""
    name = rule.get("alert", "")
    labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
    problems = []
    if not CAMEL_CASE.match(name):
        problems.append(f"{name!r}: name is not in CamelCase")
    if labels.get("severity") not in SEVERITIES:
        problems.append(f"{name}: severity {labels.get('severity')!r} is not one of {SEVERITIES}")
    description = annotations.get("description")
    if description is None:
        problems.append(f"{name}: no description")
    elif not GO_TEMPLATE.search(description):
        problems.append(f"{name}: description uses no template")
    summary = annotations.get("summary")
    if summary is None:
        problems.append(f"{name}: no summary")
    else:
        if GO_TEMPLATE.search(summary):
            problems.append(f"{name}: summary uses a template: {summary!r}")
        if not SENTENCE.match(summary):
            problems.append(f"{name}: summary is not a sentence (capital ... period): {summary!r}")
    return problems


def alerts() -> list[dict]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def dashboard_problems(dash: dict) -> list[str]:
    """mixtool's dashboard checks: title, uid, and the datasource variable on every query."""
    problems = []
    if not dash.get("title"):
        problems.append("dashboard has no title")
    if not dash.get("uid"):
        problems.append(f"{dash.get('title')}: dashboard has no uid")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append(f"{dash.get('title')}: no datasource variable")
    for panel in _panels(dash):
        where = f"{dash.get('title')} / {panel.get('title')!r}"
        uid = (panel.get("datasource") or {}).get("uid", "")
        if not DATASOURCE_VARIABLE.match(uid):
            problems.append(f"{where}: panel datasource {uid!r} is not the datasource variable")
        for target in panel.get("targets", []):
            target_uid = (target.get("datasource") or {}).get("uid", uid)
            if not DATASOURCE_VARIABLE.match(target_uid):
                problems.append(f"{where}: query datasource {target_uid!r} is not the variable")
    return problems


def _panels(dash: dict) -> list[dict]:
    out = []
    for panel in dash.get("panels", []):
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def test_there_are_alerts_and_dashboards():
    assert len(alerts()) >= 20
    assert len(DASHBOARD_FILES) >= 6


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_follows_the_mixin_guidelines(rule):
    assert alert_problems(rule) == []


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_follows_the_mixin_guidelines(path):
    assert dashboard_problems(json.loads(path.read_text(encoding="utf-8"))) == []


def test_the_lint_catches_each_violation():
    """Each rule can fail: a rule and a dashboard breaking all of them get one problem each."""
    bad_rule = {
        "alert": "storagenode_down",
        "labels": {"severity": "page"},
        "annotations": {"summary": "Node {{ $labels.node }} is down", "description": "Down."},
    }
    problems = alert_problems(bad_rule)
    assert len(problems) == 5, problems  # name, severity, description, summary template, style
    assert alert_problems({"alert": "StoragenodeDown", "labels": {}, "annotations": {}}) == [
        "StoragenodeDown: severity None is not one of " + str(SEVERITIES),
        "StoragenodeDown: no description",
        "StoragenodeDown: no summary",
    ]
    bad_dash = {
        "templating": {"list": []},
        "panels": [
            {"type": "stat", "title": "a", "datasource": {"uid": "prometheus"}, "targets": []},
            {
                "type": "row",
                "panels": [
                    {
                        "type": "stat",
                        "title": "b",
                        "datasource": {"uid": "$datasource"},
                        "targets": [{"datasource": {"uid": "P1809F7CD0C75ACF3"}}],
                    }
                ],
            },
        ],
    }
    assert len(dashboard_problems(bad_dash)) == 5, dashboard_problems(bad_dash)
