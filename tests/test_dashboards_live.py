"""Every dashboard query against a real Prometheus scraping the real exporter, with two nodes.

Node `demo` is `python -m exporter demo`. Node `stale` is the same exporter's scrape relabelled
by a small HTTP server in this test: its newest log line and last satellite ping are an hour
old and its disk is full. So a panel that lets the fresh node hide a stale one, adds
node x satellite pairs, or shows "No data" for a full disk fails here.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.test_dashboards import (
    AT_REST,
    DASHBOARDS,
    EMPTY_BY_DESIGN,
    NO_TALLY_YET,
    ROOT,
    _ids,
    all_targets,
    label_values_selector,
    panels,
    substitute,
)

STALE_SECONDS = 3600
NODES = ("demo", "stale")
# The demo's simulated log (exporter/simulate/loggen/) writes no piece delete, gc/trash
# lazyfilewalker or failure lines, and its other housekeeping lines come at random: retain,
# trash and used-space filewalker about one of each in half a minute, hashstore compactions
# one in 15 s (any satellite and store; 5 % fail), amnesty reports one in 90 s. So the test
# appends real node lines (the golden fixtures, stamped now) to
# the demo's log, once before Prometheus starts and once after it scraped those (counters
# born with their first event are only counted by increase() from the second one on).
HOUSEKEEPING_FIXTURES = ("housekeeping-v1.117.log", "housekeeping-v1.162.log")
_TRANSFER = re.compile(r"\tpiecestore\t(?:upload|download)")
_LINE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.M)
FIRST_APPEND_SCRAPED = {
    "expr": 'storagenode_lost_pieces_reported_total{node="demo", satellite="us1"} > 0',
    "instant": True,
}
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _wait_http(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            _get(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def _demo_unavailable() -> str | None:
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "exporter", "demo", "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "python -m exporter demo --help timed out"
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"exporter demo command not available yet (python -m exporter demo --help: {last})"
    return None


_STALE_TIMESTAMPS = re.compile(
    r"^(storagenode_(?:log_last_line|last_pinged)_timestamp_seconds\{[^}]*\}) (\S+)$", re.M
)
_FREE = re.compile(r"^(storagenode_disk_free_bytes\{[^}]*\}) \S+$", re.M)


_ERRORS_TYPE = "# TYPE storagenode_transfer_errors_total counter\n"
# Failed audits the stale node adds on every scrape, by reason: the audit-risk panels must
# count each reason in its own column.
STALE_AUDIT_ERRORS = {"file_not_found": 1, "timeout": 3}


def stale_copy(exposition: str, scrapes: int = 0) -> str:
    """The demo's scrape as node `stale`: log and pings an hour old, no free space, and audits
    failing with `file does not exist` and timeouts (more on every scrape)."""
    text = exposition.replace('node="demo"', 'node="stale"')
    text = _STALE_TIMESTAMPS.sub(lambda m: f"{m[1]} {float(m[2]) - STALE_SECONDS}", text)
    errors = "".join(
        f'storagenode_transfer_errors_total{{action="GET_AUDIT",node="stale",'
        f'reason="{reason}"}} {1000 + per_scrape * scrapes}\n'
        for reason, per_scrape in STALE_AUDIT_ERRORS.items()
    )
    assert _ERRORS_TYPE in text, "the exporter no longer exports storagenode_transfer_errors_total"
    text = text.replace(_ERRORS_TYPE, _ERRORS_TYPE + errors, 1)
    return _FREE.sub(lambda m: f"{m[1]} 0", text)


def _stale_server(exporter_url: str) -> http.server.ThreadingHTTPServer:
    scrapes = iter(range(10**9))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = stale_copy(_get(exporter_url).decode(), next(scrapes)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Live:
    """A Prometheus (1 s scrape) scraping `python -m exporter demo` and its stale copy."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.exporter_port = _free_port()
        self.prom_port = _free_port()
        self.api = f"http://127.0.0.1:{self.prom_port}/api/v1"
        self.stale: http.server.ThreadingHTTPServer | None = None
        self.demo_log = tmp / "demo" / "node.log"

    def append_housekeeping(self) -> None:
        """Real housekeeping lines of a node, stamped now, appended in one write."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fixtures = ROOT / "tests" / "fixtures" / "logs"
        text = "".join(
            line
            for name in HOUSEKEEPING_FIXTURES
            for line in (fixtures / name).read_text().splitlines(keepends=True)
            if not _TRANSFER.search(line)  # transfers: their addresses are not in the demo GeoIP
        )
        with open(self.demo_log, "a", encoding="utf-8") as log:
            log.write(_LINE_TIME.sub(now, text))

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        listen = f"127.0.0.1:{self.exporter_port}"
        demo_dir = self.demo_log.parent
        exporter = self._spawn(
            [
                sys.executable, "-m", "exporter", "demo", "--web.listen-address", listen,
                "--dir", str(demo_dir),
            ],
            "exporter",
            env,
        )  # fmt: skip
        _wait_http(f"http://{listen}/metrics", exporter, time.monotonic() + 30)
        self.append_housekeeping()
        self.stale = _stale_server(f"http://{listen}/metrics")
        stale = f"127.0.0.1:{self.stale.server_address[1]}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                {"job_name": "storagenode", "static_configs": [{"targets": [listen, stale]}]}
            ],
        }
        (self.tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom = self._spawn(
            [
                shutil.which("prometheus"),
                f"--config.file={self.tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.prom_port}",
                "--log.level=warn",
            ],
            "prometheus",
            os.environ.copy(),
        )
        _wait_http(f"http://127.0.0.1:{self.prom_port}/-/ready", prom, time.monotonic() + 30)

    def _spawn(self, argv: list[str], name: str, env: dict) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        proc.log = log
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        if self.stale:
            self.stale.shutdown()
            self.stale.server_close()
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.log.close()

    def query(self, target: dict, uid: str = "", **values: str) -> list[dict]:
        expr = substitute(target["expr"], **{**node_selection(uid), **values})
        now = time.time()
        if target["instant"]:
            params = {"query": expr, "time": f"{now:.3f}"}
            url = f"{self.api}/query?{urllib.parse.urlencode(params)}"
        else:
            params = {"query": expr, "start": f"{now - 60:.3f}", "end": f"{now:.3f}", "step": "1"}
            url = f"{self.api}/query_range?{urllib.parse.urlencode(params)}"
        answer = json.loads(_get(url))
        assert answer["status"] == "success", answer
        result = answer["data"]["result"]
        if answer["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return result

    def label_values(self, selector: str, label: str) -> list[str]:
        params = {"match[]": substitute(selector)}
        url = f"{self.api}/label/{label}/values?{urllib.parse.urlencode(params)}"
        return json.loads(_get(url))["data"]


def node_selection(uid: str) -> dict[str, str]:
    """The Node dashboard shows one node (the first value, as Grafana picks); others all."""
    return {"node": "demo"} if uid == "storj-node" else {}


def empty_reason(uid: str, panel: dict, target: dict) -> str | None:
    """Why this query may return nothing (None: it must return data)."""
    if AT_REST in target["expr"] and time.gmtime().tm_mday == 1:
        return NO_TALLY_YET
    return EMPTY_BY_DESIGN.get((uid, panel["title"]))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    if not shutil.which("prometheus"):
        pytest.skip("prometheus not installed (Debian package prometheus)")
    reason = _demo_unavailable()
    if reason:
        pytest.skip(reason)
    stack = Live(tmp_path_factory.mktemp("live"))
    try:
        stack.start()
        # Scrape for at least 15 s (rates need samples, the demo needs time to produce events),
        # then until every panel expected to have data has some, at most 25 s in all.
        started = time.monotonic()
        wanted = [(u, p, t) for u, p, t in all_targets() if not empty_reason(u, p, t)]
        appended = False
        while True:
            time.sleep(1)
            elapsed = time.monotonic() - started
            if not appended and stack.query(FIRST_APPEND_SCRAPED):
                stack.append_housekeeping()
                appended = True
            if elapsed < 15:
                continue
            wanted = [(u, p, t) for u, p, t in wanted if not stack.query(t, u)]
            if not wanted or elapsed > 25:
                break
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize(("uid", "panel", "target"), all_targets(), ids=_ids())
def test_panel_query_returns_data(live, uid, panel, target):
    result = live.query(target, uid)  # also asserts that Prometheus accepted the query
    reason = empty_reason(uid, panel, target)
    if reason:
        pytest.skip(f"empty by design: {reason}")
    assert result, f"{uid} / {panel['title']} / {target['refId']}: no data"
    if panel["fieldConfig"]["defaults"]["unit"] == "percentunit":  # ratios and scores
        for series in result:
            samples = series.get("values") or [series["value"]]
            values = [float(v) for _, v in samples if v not in ("NaN", "+Inf", "-Inf")]
            assert all(0 <= v <= 1 for v in values), (panel["title"], series["metric"], values)
    if panel["type"] == "geomap":
        for series in result:
            location = series["metric"]
            if "geohash" in target["expr"]:
                assert re.fullmatch(r"[0-9b-hjkmnp-z]{1,12}", location.get("geohash", "")), series
            else:
                assert re.fullmatch(r"[A-Z]{2}", location.get("country", "")), series


def test_variables_have_values(live):
    seen = {}
    for dash in DASHBOARDS.values():
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                selector, label = label_values_selector(var["query"])
                values = live.label_values(selector, label)
                assert values, f"{dash['uid']} ${var['name']}: no values"
                seen[var["name"]] = values
    assert set(seen) == {"node", "satellite", "action"}
    assert "demo" in seen["node"]
    assert set(seen["action"]) <= {"GET", "PUT", "GET_AUDIT", "GET_REPAIR", "PUT_REPAIR"}


# ---- panels that must not mislead (issue 14) ----------------------------------------------


def _panel(uid: str, title: str) -> dict:
    (dash,) = [d for d in DASHBOARDS.values() if d["uid"] == uid]
    (panel,) = [p for p in panels(dash) if p["title"] == title]
    return panel


def _values(result: list[dict]) -> dict[str, float]:
    return {s["metric"].get("node", ""): float(s["value"][1]) for s in result}


@pytest.mark.parametrize(
    ("uid", "title"),
    [("storj-node", "Last satellite contact"), ("storj-node", "Newest log line")],
)
def test_an_age_shows_the_stalest_selected_node(live, uid, title):
    """With both nodes selected the fresh one must not hide the stale one."""
    (target,) = _panel(uid, title)["targets"]
    values = _values(live.query({**target, "instant": True}, uid, node=".*"))
    assert max(values.values()) >= STALE_SECONDS - 60, values


@pytest.mark.parametrize("title", ["Vetted on", "Suspended on", "Disqualified on"])
def test_satellite_counts_are_per_node(live, title):
    (satellites,) = live.query(
        {"expr": "count(count by (satellite) (storagenode_satellite_info))", "instant": True}
    )
    (target,) = _panel("storj-reputation-capacity", title)["targets"]
    values = _values(live.query({**target, "instant": True}))
    assert set(values) == set(NODES), values
    assert all(v <= float(satellites["value"][1]) for v in values.values()), values


def _mapped(panel: dict, value: float) -> str | None:
    for mapping in panel["fieldConfig"]["defaults"]["mappings"]:
        low, high = mapping["options"]["from"], mapping["options"]["to"]
        if mapping["type"] == "range" and low <= value <= high:
            return mapping["options"]["result"]["text"]
    return None


def test_days_until_full_says_full_or_not_growing(live):
    panel = _panel("storj-reputation-capacity", "Days until full")
    (target,) = panel["targets"]
    values = _values(live.query(target))
    texts = {node: _mapped(panel, v) for node, v in values.items()}
    assert texts == {"demo": "not growing", "stale": "full"}, values


def test_totals_over_the_range_are_whole_numbers(live):
    """A count of transfers or events over $__range is shown without extrapolated fractions."""
    checked = 0
    for uid, panel, target in all_targets():
        unit = panel["fieldConfig"]["defaults"]["unit"]
        if "$__range" not in target["expr"] or "/" in target["expr"] or unit != "short":
            continue
        for series in live.query(target, uid):
            assert float(series["value"][1]).is_integer(), (panel["title"], series)
            checked += 1
    assert checked > 0


def _documented_exclusions() -> set[str]:
    text = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    section = text.split("## Metrics on no panel", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(storagenode_[a-z0-9_]+)`", section))


def test_every_exported_metric_is_on_a_panel_or_excluded_with_a_reason(live):
    scrape = _get(f"http://127.0.0.1:{live.exporter_port}/metrics").decode()
    exported = set(re.findall(r"^# TYPE (storagenode_[a-z0-9_]+) ", scrape, re.M))
    assert len(exported) > 40
    exprs = " ".join(t["expr"] for _, _, t in all_targets())
    missing = {m for m in exported if not re.search(rf"\b{m}(?:_bucket|_sum|_count)?\b", exprs)}
    assert missing <= _documented_exclusions(), sorted(missing - _documented_exclusions())


# ---- one row per node (Overview "Nodes") --------------------------------------------------


def _column_titles(panel: dict) -> dict[str, str]:
    """Raw field name (`Value #C`, `version`) -> the column header its override sets."""
    return {
        o["matcher"]["options"]: p["value"]
        for o in panel["fieldConfig"]["overrides"]
        for p in o["properties"]
        if p["id"] == "displayName"
    }


def table_rows(live, uid: str, title: str, keys: tuple[str, ...]) -> dict[tuple, dict]:
    """A keyed table as Grafana's merge builds it: key label values -> {header: value}."""
    panel = _panel(uid, title)
    titles = _column_titles(panel)
    hidden = panel["transformations"][-1]["options"]["excludeByName"]
    rows: dict[tuple, dict[str, float | str]] = {}
    for target in panel["targets"]:
        value = f"Value #{target['refId']}"
        for series in live.query(target, uid):
            labels = series["metric"]
            assert set(keys) <= set(labels), (title, target["expr"], labels)
            cells = rows.setdefault(tuple(labels[k] for k in keys), {})
            if hidden.get(value):  # a label column, e.g. the version
                (label,) = set(labels) - set(keys)
                cells[titles[label]] = labels[label]
            else:
                cells[titles[value]] = float(series["value"][1])
    return rows


def test_node_table_has_every_column_for_every_node(live):
    """Each column's query (what the merge joins on `node`) has a value for both nodes."""
    rows = table_rows(live, "storj-overview", "Nodes", ("node",))
    assert set(rows) == {(n,) for n in NODES}, sorted(rows)
    columns = len(_panel("storj-overview", "Nodes")["targets"])
    assert columns >= 20
    for node, cells in rows.items():
        assert len(cells) == columns, (node, sorted(cells))
        assert not any(isinstance(v, float) and math.isnan(v) for v in cells.values()), cells


def test_node_table_links_each_row_to_that_node(live):
    panel = _panel("storj-overview", "Nodes")
    (key,) = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "node"]
    (links,) = [p["value"] for p in key["properties"] if p["id"] == "links"]
    (link,) = links
    (node_dash,) = [d for d in DASHBOARDS.values() if d["uid"] == "storj-node"]
    assert {v["name"] for v in node_dash["templating"]["list"]} >= {"node", "datasource"}
    (newest,) = _panel("storj-node", "Newest log line")["targets"]
    for node in NODES:
        url = urllib.parse.urlsplit(link["url"].replace("${__data.fields.node}", node))
        assert url.path.split("/")[2] == "storj-node", link["url"]
        params = urllib.parse.parse_qs(url.query)
        assert params["var-node"] == [node]
        # What the linked dashboard then shows is that node's: only `stale` is an hour old.
        (age,) = live.query({**newest, "instant": True}, node=params["var-node"][0])
        assert (float(age["value"][1]) >= STALE_SECONDS - 60) == (node == "stale"), (node, age)


# ---- held back, payouts, per-satellite breakdown (Earnings) -------------------------------


def _satellites(live) -> set[str]:
    result = live.query({"expr": "storagenode_satellite_info", "instant": True})
    return {s["metric"]["satellite"] for s in result}


@pytest.mark.parametrize(
    "title", ["Held back per satellite", "Storage, egress and repair per satellite (this month)"]
)
def test_satellite_tables_have_every_column_for_every_node_and_satellite(live, title):
    rows = table_rows(live, "storj-earnings", title, ("node", "satellite"))
    assert set(rows) == {(n, s) for n in NODES for s in _satellites(live)}, sorted(rows)
    columns = len(_panel("storj-earnings", title)["targets"])
    assert all(len(cells) == columns for cells in rows.values()), rows


def _held_rate(joined: float, now: float) -> float:
    """payouts.GetHeldRate: calendar months since joining, 75/50/25 % per three months."""
    start, end = time.gmtime(joined), time.gmtime(now)
    months = (end.tm_year - start.tm_year) * 12 + end.tm_mon - start.tm_mon
    return max(75 - 25 * (months // 3), 0)


def test_held_rate_follows_the_node_age_on_each_satellite(live):
    rows = table_rows(live, "storj-earnings", "Held back per satellite", ("node", "satellite"))
    now = time.time()
    rates = set()
    for key, cells in rows.items():
        expected = _held_rate(cells["Joined"] / 1000, now)
        assert cells["Held rate"] == expected, (key, cells)
        rates.add(expected)
    assert len(rates) >= 2, rates  # the demo has old satellites and a young one


def test_payout_by_month_is_split_like_a_paystub(live):
    rows = table_rows(live, "storj-earnings", "Payout by month", ("node", "period"))
    assert set(rows) == {(n, p) for n in NODES for p in ("current_month", "previous_month")}
    for (_, period), cells in rows.items():
        earned = cells["Egress"] + cells["Repair and audit"] + cells["Storage"]
        # the payout is what is earned minus what is held back (rounded to 0.01 cent each)
        assert abs(earned - cells["Held back"] - cells["Payout after held"]) < 0.01, cells
        assert ("Expected by month end" in cells) == (period == "current_month"), cells


# ---- satellites, age and audit risk (Reputation) -------------------------------------------


def test_satellite_table_has_every_column_for_every_node_and_satellite(live):
    title = "Satellites"
    rows = table_rows(live, "storj-reputation-capacity", title, ("node", "satellite"))
    assert set(rows) == {(n, s) for n in NODES for s in _satellites(live)}, sorted(rows)
    columns = len(_panel("storj-reputation-capacity", title)["targets"])
    assert all(len(cells) == columns for cells in rows.values()), rows


def test_audit_risk_counts_missing_pieces_apart_from_timeouts(live):
    """`stale` fails 1 audit a scrape with `file does not exist` and 3 with a timeout."""
    rows = table_rows(live, "storj-reputation-capacity", "Audit risk", ("node",))
    assert set(rows) == {(n,) for n in NODES}, rows
    demo, stale = rows[("demo",)], rows[("stale",)]
    counts = [v for cells in (demo, stale) for k, v in cells.items() if "score" not in k]
    assert len(counts) == 10 and all(v.is_integer() for v in counts), rows
    missing = stale["Missing pieces"] - demo["Missing pieces"]
    timeouts = stale["Timeouts"] - demo["Timeouts"]
    assert missing >= 5, rows  # about one per second of scraping
    assert 2 * missing <= timeouts <= 4 * missing, rows
    assert stale["Other errors"] == demo["Other errors"], rows


def test_payout_per_satellite_has_the_held_rate_its_age_implies(live):
    """The node's own held rate per satellite equals payouts.GetHeldRate of its joined date."""
    held = table_rows(live, "storj-earnings", "Held back per satellite", ("node", "satellite"))
    title = "Payout per satellite (this month)"
    rows = table_rows(live, "storj-earnings", title, ("node", "satellite"))
    assert set(rows) == set(held), sorted(rows)
    columns = len(_panel("storj-earnings", title)["targets"])
    for key, cells in rows.items():
        assert len(cells) == columns, (key, cells)
        assert cells["Held rate (node)"] == held[key]["Held rate"], (key, cells, held[key])
        assert held[key]["Returned"] >= 0, held[key]


def test_paystubs_show_previous_months_per_node(live):
    rows = table_rows(live, "storj-earnings", "Paystubs: previous months", ("node", "months_ago"))
    months = {int(m) for _, m in rows}
    assert months and months <= set(range(1, 13)), sorted(rows)
    assert {n for n, _ in rows} == set(NODES), sorted(rows)
    assert all(
        cells["Earned"] >= cells["Paid"] - cells["Returned"] - 0.01 for cells in rows.values()
    )
    assert sum(cells["Earned"] for cells in rows.values()) > 0, rows


def test_unpaid_data_is_used_space_minus_the_satellites_tally(live):
    rows = table_rows(live, "storj-earnings", "Unpaid data", ("node",))
    assert set(rows) == {(n,) for n in NODES}, rows
    if time.gmtime().tm_mday == 1:
        assert all(set(cells) == {"Used without trash"} for cells in rows.values()), rows
        pytest.skip(NO_TALLY_YET)
    for cells in rows.values():
        unpaid = cells["Used without trash"] - cells["Satellites' tally"]
        assert abs(cells["Unpaid"] - unpaid) < 1, cells


# ---- housekeeping and alerts ----------------------------------------------------------------


def _alerts(live, name: str) -> set[str]:
    result = live.query(
        {"expr": f'ALERTS{{alertname="{name}", alertstate="firing"}}', "instant": True}
    )
    return {s["metric"].get("node", "") for s in result}


def test_lost_pieces_are_shown_and_alerted(live):
    """Each appended fixture pair reports 17 + 3 lost pieces (v1.162 amnesty lines)."""
    (target,) = _panel("storj-node", "Lost pieces reported")["targets"]
    (value,) = live.query(target, "storj-node")
    assert float(value["value"][1]) >= 20, value
    assert _alerts(live, "StoragenodeLostPieces") >= {"demo"}
    rows = table_rows(live, "storj-overview", "Nodes", ("node",))
    assert rows[("demo",)]["Lost pieces"] >= 20, rows[("demo",)]


def test_firing_alerts_leave_out_the_watchdog(live):
    assert _alerts(live, "Watchdog"), "the test Prometheus loads prometheus/rules"
    (target,) = _panel("storj-overview", "Firing alerts")["targets"]
    names = {s["metric"]["alertname"] for s in live.query(target, "storj-overview")}
    assert "StoragenodeLostPieces" in names and "Watchdog" not in names, names
    (count,) = _panel("storj-overview", "Alerts firing")["targets"]
    (value,) = live.query({**count, "instant": True})
    assert float(value["value"][1]) == len(live.query(target)), (value, names)


def test_compaction_table_per_satellite_and_store(live):
    """housekeeping-v1.162.log: us1/s0 compacts and reclaims 10 GiB, eu1/s1 fails (disk full);
    the demo's own compactions (any satellite and store, 5 % failed) only add to these."""
    title = "Hashstore compaction per satellite and store"
    rows = table_rows(live, "storj-node", title, ("satellite", "store"))
    ok, failed = rows[("us1", "s0")], rows[("eu1", "s1")]
    assert ok["Compactions"] >= 1, ok
    assert ok["Reclaimed"] >= 10 * 2**30 * 0.9, ok
    assert failed["Failed"] >= 1, failed
