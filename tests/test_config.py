"""Config validation: duplicate keys, ranges, exact file/key names, every problem listed by
`check-config`, and the published JSON Schema agreeing with the loader."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from exporter import config as cfg
from exporter.nodeapi.poller import ENDPOINTS
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "docs" / "config.schema.json").read_text())
DOCS = ROOT / "docs" / "config.md"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=20)


def _write(tmp_path, text: str, name: str = "c14.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_duplicate_nodes_key_is_an_error(tmp_path):
    path = _write(tmp_path, "nodes:\n  - name: a\n    log: /a\nnodes:\n  - name: b\n    log: /b\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load_file(str(path))
    assert err.value.problems == [
        f"{path}: duplicate key 'nodes' at line 4 (first at line 1)"]


def test_duplicate_key_in_a_node_and_in_the_web_config(tmp_path):
    path = _write(tmp_path, "nodes:\n  - name: a\n    log: /a\n    log: /b\n")
    with pytest.raises(cfg.ConfigError, match="duplicate key 'log' at line 4"):
        cfg.load_file(str(path))
    from exporter.webconfig import load_web_config

    web = _write(tmp_path, "basic_auth_users:\n  a: x\nbasic_auth_users:\n  b: y\n", "web.yml")
    with pytest.raises(cfg.ConfigError, match=r"web.yml: duplicate key 'basic_auth_users'"):
        load_web_config(str(web))


@pytest.mark.parametrize(("text", "expected"), [
    ("geoip:\n  window: 0\n", "geoip.window: must be positive, got 0"),
    ("geoip:\n  window: -5\n", "geoip.window: must be positive, got -5"),
    ("geoip:\n  window: .nan\n", "geoip.window: must be positive"),
    ("geoip:\n  precision: 0\n", "geoip.precision: expected 1 to 4, got 0"),
    ("pairing_timeout: 0\n", "pairing_timeout: must be positive"),
    ("poll_interval: -1\n", "poll_interval: must be positive"),
    ("web:\n  max_connections: 0\n", "web.max_connections: must be positive"),
    ("web:\n  read_header_timeout: .inf\n", "web.read_header_timeout: must be positive"),
    ("web:\n  telemetry_path: metrics\n", "web.telemetry_path: expected a path"),
    ("web:\n  listen_address: nowhere\n", "web.listen_address: expected HOST:PORT"),
    ("nodes:\n  - name: a\n    api: http://x\n    api_timeouts:\n      node: 0\n",
     "nodes[0].api_timeouts.node: must be positive, got 0"),
    ("Nodes: []\n", "Nodes: unknown key"),
])
def test_ranges_and_names_refused_by_loader_and_schema(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load_file(str(path))
    assert any(p.startswith(f"{path}: {expected}") for p in err.value.problems), \
        err.value.problems
    if ".nan" not in text and ".inf" not in text:  # not JSON numbers: no schema for them
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(text), SCHEMA)


def test_error_names_file_and_key_exactly(tmp_path):
    path = _write(tmp_path, "Nodes: []\nweb:\n  listen: x\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load_file(str(path))
    problems = [p.split(" (known")[0] for p in err.value.problems]
    assert problems == [f"{path}: Nodes: unknown key", f"{path}: web.listen: unknown key"]


def test_check_config_lists_every_problem(tmp_path):
    web = _write(tmp_path, "basic_auth_users:\n  alice: notahash\n", "web.yml")
    path = _write(tmp_path, f"web:\n  config_file: {web}\ngeoip:\n  window: 0\n"
                  "nodes:\n  - name: a\n    lgo: /x\n  - name: b\n    api: ftp://x\n"
                  "  - log: /y\n")
    result = run("check-config", "--config", str(path))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == [
        "geoip.window", "nodes[0].lgo", "nodes[1].api", "nodes[2].name",
        "basic_auth_users.alice"], lines
    assert lines[-1] == f"{path}: 5 problem(s)"


def test_check_config_ok(tmp_path):
    path = _write(tmp_path, "nodes:\n  - name: a\n    log: /var/log/a.log\n")
    result = run("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK, 1 node(s)"
    missing = run("check-config", "--config", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2 and "nope.yml: cannot read config file" in missing.stderr


def _doc_examples() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert blocks, "docs/config.md has no yaml example"
    return blocks


@pytest.mark.parametrize("index", range(len(_doc_examples())))
def test_documented_examples_pass_schema_and_loader(tmp_path, index):
    text = _doc_examples()[index]
    jsonschema.validate(yaml.safe_load(text), SCHEMA)
    cfg.load_file(str(_write(tmp_path, text)))


def _props(schema: dict) -> set[str]:
    if "$ref" in schema:
        schema = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return set(schema["properties"])


def test_schema_and_loader_agree_on_the_keys():
    top = SCHEMA["properties"]
    assert set(top) == cfg.TOP_KEYS
    assert _props(top["web"]) == cfg.WEB_KEYS
    assert _props(top["geoip"]) == cfg.GEOIP_KEYS
    assert _props(top["forwarder"]) == cfg.FORWARDER_KEYS
    node = SCHEMA["$defs"]["node"]
    assert set(node["properties"]) == cfg.NODE_KEYS
    assert _props(node["properties"]["forwarder"]) == cfg.NODE_FORWARDER_KEYS
    for key in ("api_intervals", "api_timeouts"):
        assert _props(node["properties"][key]) == set(ENDPOINTS)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
