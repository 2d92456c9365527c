"""The status page at `/`: the document of exporter/status.py as one self-contained HTML page.

No external assets and no script: it works offline and behind basic auth, and refreshes
itself with a meta refresh. Every value is escaped (node names and paths come from the
config, versions and satellite names from the wire).
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from exporter.status import AUDIT_FAILED_WINDOW

REFRESH_SECONDS = 5
NONE = "-"


def docs_url() -> str | None:
    """The Documentation (or Homepage) URL of the installed package's metadata, if any."""
    try:
        from importlib.metadata import metadata

        urls = metadata("storagenode-exporter").get_all("Project-URL") or []
    except Exception:  # not installed as a distribution
        return None
    found = dict(u.split(", ", 1) for u in urls if ", " in u)
    return found.get("Documentation") or found.get("Homepage")

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d1f24}
header{background:#1d2a44;color:#fff;padding:10px 20px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}header a{color:#b8cdfa;margin-right:14px}
main{padding:16px 20px;display:grid;gap:16px;
 grid-template-columns:repeat(auto-fill,minmax(430px,1fr))}
section{background:#fff;border-radius:6px;box-shadow:0 1px 3px #0002;padding:12px 16px}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:13px;margin:12px 0 4px;color:#555;text-transform:uppercase}
table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;text-align:left;vertical-align:top}
th{color:#555;font-weight:500;width:42%}td.n,th.n{text-align:right}
.ok{color:#137333}.bad{color:#b3261e;font-weight:600}.warning{background:#fff1d6}
.critical{background:#fde0dc}ul.alerts{margin:4px 0;padding-left:18px}
li.critical{color:#b3261e}li.warning{color:#8a5300}.muted{color:#777}
footer{padding:0 20px 16px;color:#777}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _window(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _pct(ratio: float | None) -> str:
    return NONE if ratio is None else f"{ratio:.1%}"


def _yes(flag: bool, yes: str = "up", no: str = "down") -> str:
    return f'<span class="ok">{yes}</span>' if flag else f'<span class="bad">{no}</span>'


def _row(label: str, value: str, mark: str | None = None, raw: bool = False) -> str:
    cls = f' class="{mark}"' if mark else ""
    return f"<tr{cls}><th>{_e(label)}</th><td>{value if raw else _e(value)}</td></tr>"


def _marks(alerts: list[dict]) -> dict[str, str]:
    """what -> the worst severity of the alerts on it."""
    out: dict[str, str] = {}
    for a in alerts:
        if out.get(a["what"]) != "critical":
            out[a["what"]] = a["severity"]
    return out


def _log_rows(log: dict, mark: dict[str, str]) -> str:
    recent = log["recent"]
    rows = [
        _row("source", f"{log['kind']} {log['source']}"),
        _row("state", _yes(log["up"], "reading", "not readable"), mark.get("log"), raw=True),
        _row("newest line", _age(log["newest_line_age_seconds"]), mark.get("log")),
        _row(f"lines, last {_window(recent['window_seconds'])}",
             f"{recent['lines']} parsed, {recent['unparsed']} unparsed", mark.get("unparsed")),
        _row(f"failed audits, last {AUDIT_FAILED_WINDOW / 60:.0f} min",
             str(log["audits_failed_10m"]), mark.get("audit")),
    ]
    return "<table>" + "".join(rows) + "</table>"


def _rates(log: dict, mark: dict[str, str]) -> str:
    hour = log["hour"]
    if not hour["actions"]:
        return (f"<h3>Success rates</h3><p class=\"muted\">no finished transfers in the last "
                f"{_window(hour['window_seconds'])}</p>")
    head = ("<tr><th>action</th><th class=n>success</th><th class=n>failed</th>"
            "<th class=n>canceled</th><th class=n>rate</th></tr>")
    rows = []
    for action, r in hour["actions"].items():
        cls = mark.get(f"rate:{action}")
        rows.append(f"<tr{f' class={cls}' if cls else ''}><td>{_e(action)}</td>"
                    f"<td class=n>{r['success']}</td><td class=n>{r['failed']}</td>"
                    f"<td class=n>{r['canceled']}</td><td class=n>{_pct(r['ratio'])}</td></tr>")
    return (f"<h3>Success rates, last {_window(hour['window_seconds'])}</h3><table>{head}"
            + "".join(rows) + "</table>")


def _api_rows(node: dict, mark: dict[str, str]) -> str:
    api = node["api"]
    last = api["last_success"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(api["errors_by_reason"].items()))
    low = node.get("lowest_score")
    disk = node.get("disk")
    rows = [
        _row("address", api["url"]),
        _row("state", _yes(api["up"]), mark.get("api"), raw=True),
        _row("version", (api["version"] or NONE) + (" (outdated)" if api["up_to_date"] is False
                                                  else ""), mark.get("version")),
        _row("last successful poll", "never" if last is None
             else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))),
        _row("errors", f"{api['errors']}" + (f" ({reasons})" if reasons else "")),
        _row("lowest score", NONE if low is None else
             f"{low['value']:.4f} ({low['score']}, {low['satellite']})", mark.get("score")),
        _row("disk used", NONE if disk is None else
             f"{_pct(disk['used_ratio'])} of {disk['allocated_bytes'] / 1e12:.2f} TB",
             mark.get("disk")),
    ]
    return "<table>" + "".join(rows) + "</table>"


def _alerts(alerts: list[dict]) -> str:
    if not alerts:
        return '<p class="ok">no alert condition holds</p>'
    return '<ul class="alerts">' + "".join(
        f'<li class="{_e(a["severity"])}"><b>{_e(a["alert"])}</b> ({_e(a["severity"])}): '
        f'{_e(a["text"])}</li>' for a in alerts) + "</ul>"


def _node(node: dict) -> str:
    mark = _marks(node["alerts"])
    parts = [f'<section id="node-{_e(node["name"])}"><h2>{_e(node["name"])}</h2>',
             "<h3>Alert conditions</h3>", _alerts(node["alerts"])]
    if node["log"] is not None:
        parts += ["<h3>Log</h3>", _log_rows(node["log"], mark), _rates(node["log"], mark)]
    if node["api"] is not None:
        parts += ["<h3>Node API</h3>", _api_rows(node, mark)]
    return "".join(parts) + "</section>"


def render(doc: dict[str, Any]) -> bytes:
    """The page for a document of status.Status.document()."""
    exp = doc["exporter"]
    metrics = exp["metrics_path"].lstrip("/")
    nodes = "".join(_node(n) for n in doc["nodes"]) or "<section>no nodes configured</section>"
    url = docs_url()
    docs = (f'<a href="{_e(url)}">Docs</a>' if url else
            '<span class="muted">Docs: docs/ and README.md of the source</span>')
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc["generated_at"]))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>storagenode-exporter</title><style>{_CSS}</style></head>
<body><header><h1>storagenode-exporter {_e(exp['version'])}</h1>
<nav><a href="{_e(metrics)}">Metrics</a><a href="healthz">Health</a>
<a href="api/status">JSON</a>{docs}</nav></header>
<main>{nodes}</main>
<footer>Updated {_e(stamp)}, every {REFRESH_SECONDS} s. Hot path: {_e(exp['hotpath'])}.
Alert conditions are those of prometheus/rules/storagenode-alerts.yml, without their
<code>for:</code> durations.</footer>
</body></html>
"""
    return page.encode()
