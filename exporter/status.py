"""What the status page (`/`) and `/api/status` show: per node, its log source, node API,
scores, disk, success rates and the alert conditions that hold right now.

Rates over the last minutes and the last hour come from a small ring of counter samples per
node (`Ring`), taken at most every SAMPLE_GAP seconds when the page is asked for and every
SAMPLE_EVERY seconds by a light timer: nothing is done per log line.

The alert thresholds are written here once (ALERT_THRESHOLDS); tests/test_status_page.py
checks that they equal the numbers in prometheus/rules/storagenode-alerts.yml, which is not
installed with the package. The page evaluates the conditions without the rules' `for:`
durations: it shows what would start an alert, not what has fired.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from exporter import __version__
from exporter.satellites import SATELLITES, short_name_from_url
from exporter.state import NATIVE_SCAN
from exporter.tallies import TimestampCache

SAMPLE_EVERY = 30.0  # timer
SAMPLE_GAP = 5.0  # at most one stored sample this often
RECENT = 300.0  # "lines in the last minutes"
HOUR = 3600.0

#: (alert, severity) -> the number its rule compares with (prometheus/rules/*.yml)
ALERT_THRESHOLDS: dict[tuple[str, str], float] = {
    ("StoragenodeAuditScoreLow", "warning"): 0.99,
    ("StoragenodeAuditScoreLow", "critical"): 0.97,
    ("StoragenodeSuspensionScoreLow", "warning"): 0.99,
    ("StoragenodeSuspensionScoreLow", "critical"): 0.8,
    ("StoragenodeOnlineScoreLow", "warning"): 0.9,
    ("StoragenodeOnlineScoreLow", "critical"): 0.7,
    ("StoragenodeDiskAlmostFull", "warning"): 0.10,  # free / allocated below
    ("StoragenodeDiskAlmostFull", "critical"): 0.05,
    ("StoragenodeSuccessRateLow", "warning"): 0.8,  # success ratio of the hour below
    ("StoragenodeLogFormatDrift", "warning"): 0.1,  # unparsed ratio of the hour above
}
#: the traffic guards and windows of the same rules, in their units (transfers, lines, seconds)
SUCCESS_MIN_TRANSFERS = 100  # StoragenodeSuccessRateLow: increase1h >= 100
DRIFT_MIN_UNPARSED = 60  # StoragenodeLogFormatDrift: increase(unparsed[1h]) > 60
SILENT_SECONDS = 1800.0  # StoragenodeLogSilent: rate(lines[30m]) == 0
AUDIT_FAILED_WINDOW = 600.0  # StoragenodeAuditFailed: increase(...[10m]) > 0
SCORES = (("audit", "StoragenodeAuditScoreLow"), ("suspension", "StoragenodeSuspensionScoreLow"),
          ("online", "StoragenodeOnlineScoreLow"))


@dataclass(slots=True)
class Sample:
    at: float
    lines: int
    unparsed: int
    transfers: dict[tuple[str, str], int]  # (action, result) -> count, all satellites


def read_counters(state, now: float) -> Sample:
    """The few counters the page needs, copied under the state lock (no per-line work)."""
    with state.lock:
        lines = sum(state.lines.values())
        unparsed = state.unparsed
        raw = dict(state.transfers)
    transfers: dict[tuple[str, str], int] = {}
    for (_sat, action, result), count in raw.items():
        transfers[(action, result)] = transfers.get((action, result), 0) + count
    return Sample(now, lines, unparsed, transfers)


@dataclass
class Ring:
    """Counter samples of one node over the last hour (and a little more)."""

    samples: deque = field(default_factory=lambda: deque(maxlen=int(HOUR / SAMPLE_GAP) + 64))

    def add(self, sample: Sample) -> None:
        if self.samples and sample.at - self.samples[-1].at < SAMPLE_GAP:
            return
        self.samples.append(sample)
        while self.samples and sample.at - self.samples[0].at > HOUR + 2 * SAMPLE_EVERY:
            self.samples.popleft()

    def since(self, now: float, seconds: float) -> Sample | None:
        """The oldest sample within the last `seconds`, the base of a delta."""
        for sample in self.samples:
            if now - sample.at <= seconds:
                return sample
        return None


def _delta(now: Sample, base: Sample | None) -> dict[str, Any]:
    if base is None or base.at >= now.at:
        return {"window_seconds": 0.0, "lines": 0, "unparsed": 0, "transfers": {}}
    transfers = {k: v - base.transfers.get(k, 0) for k, v in now.transfers.items()}
    return {"window_seconds": round(now.at - base.at, 1), "lines": now.lines - base.lines,
            "unparsed": now.unparsed - base.unparsed, "transfers": transfers}


def source_kind(spec: str | None) -> tuple[str, str]:
    """(kind, where) of a log source spec: file, docker, forwarder or stdin."""
    spec = spec or ""
    if spec == "-":
        return "stdin", "-"
    if spec.startswith("tcp://"):
        return "forwarder", spec[len("tcp://"):]
    if spec.startswith("docker:"):
        return "docker", spec[len("docker:"):]
    return "file", spec


class Status:
    """Builds the status document from a running app.Exporter (read at each request, so a
    reload's new nodes appear at once)."""

    def __init__(self, exporter) -> None:
        self.exporter = exporter
        self.rings: dict[str, Ring] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="status-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.sample()

    def sample(self, now: float | None = None) -> dict[str, Sample]:
        """Current counters of every log node; stored in its ring at most every SAMPLE_GAP."""
        now = time.time() if now is None else now
        current = {r.name: read_counters(r.state, now) for r in list(self.exporter.runners)}
        with self._lock:
            for name in list(self.rings):
                if name not in current:
                    del self.rings[name]
            for name, sample in current.items():
                self.rings.setdefault(name, Ring()).add(sample)
        return current

    def document(self) -> dict[str, Any]:
        """The data of the page, JSON-ready."""
        now = time.time()
        current = self.sample(now)
        runners = {r.name: r for r in list(self.exporter.runners)}
        pollers = {p.node: p for p in list(self.exporter.pollers)}
        nodes = []
        for node in list(self.exporter.config.nodes):
            with self._lock:
                ring = self.rings.get(node.name)
                bases = {w: ring.since(now, w) if ring else None
                         for w in (RECENT, HOUR, AUDIT_FAILED_WINDOW, SILENT_SECONDS)}
            runner, sample = runners.get(node.name), current.get(node.name)
            entry: dict[str, Any] = {"name": node.name, "log": None, "api": None}
            if runner is not None and sample is not None:
                entry["log"] = _log_part(node.log, runner, sample, bases, now)
            poller = pollers.get(node.name)
            if poller is not None:
                entry.update(_api_part(poller, now))
            entry["alerts"] = alerts_of(entry)
            nodes.append(entry)
        doc = empty_document(getattr(self.exporter.config, "metrics_path", "/metrics"), now)
        doc["nodes"] = nodes
        return doc


def empty_document(metrics_path: str = "/metrics", now: float | None = None) -> dict[str, Any]:
    return {
        "exporter": {"version": __version__, "hotpath": "python" if NATIVE_SCAN is None
                     else "c", "metrics_path": metrics_path},
        "generated_at": round(time.time() if now is None else now, 3),
        "nodes": [],
    }


def _log_part(spec, runner, sample: Sample, bases: dict, now: float) -> dict[str, Any]:
    kind, where = source_kind(spec)
    with runner.state.lock:
        newest = runner.state.last_timestamp
    when = TimestampCache()(newest) if newest else None
    recent, hour, audit, silent = (_delta(sample, bases[w]) for w in
                                   (RECENT, HOUR, AUDIT_FAILED_WINDOW, SILENT_SECONDS))
    actions: dict[str, dict[str, Any]] = {}
    for (action, result), count in sorted(hour["transfers"].items()):
        row = actions.setdefault(action, {"success": 0, "failed": 0, "canceled": 0, "total": 0})
        row[result] = row.get(result, 0) + count
        row["total"] += count
    for row in actions.values():
        row["ratio"] = round(row["success"] / row["total"], 4) if row["total"] else None
    return {
        "kind": kind, "source": where, "up": bool(runner.source.stats.up),
        "newest_line_age_seconds": None if when is None else round(max(0.0, now - when), 1),
        "recent": {"window_seconds": recent["window_seconds"], "lines": recent["lines"],
                   "unparsed": recent["unparsed"]},
        "hour": {"window_seconds": hour["window_seconds"], "lines": hour["lines"],
                 "unparsed": hour["unparsed"], "actions": actions},
        "audits_failed_10m": audit["transfers"].get(("GET_AUDIT", "failed"), 0),
        # StoragenodeLogSilent: no line read in 30 minutes (known once the ring covers them)
        "silent": silent["window_seconds"] >= SILENT_SECONDS - 2 * SAMPLE_EVERY
        and silent["lines"] + silent["unparsed"] == 0,
        "total": {"lines": sample.lines, "unparsed": sample.unparsed},
    }


def _api_part(poller, now: float) -> dict[str, Any]:
    snap = poller.snapshot()
    node_ep = next((e for e in snap.endpoints if e.name == "node"), None)
    info = snap.info
    api: dict[str, Any] = {
        "url": getattr(poller, "_display_url", ""), "up": bool(snap.up),
        "version": info.version if info else None,
        "up_to_date": info.up_to_date if info else None,
        "quic_ok": info.quic_ok if info else None,
        "last_success": node_ep.last_success if node_ep else None,
        "errors": sum(e.errors for e in snap.endpoints),
        "errors_by_reason": _merge(e.by_reason for e in snap.endpoints),
    }
    labels, flags = {}, []
    if info is not None:
        for sat in info.satellites:
            labels[sat.url] = SATELLITES.name(sat.id)
            flags.append({"satellite": labels[sat.url], "disqualified": sat.disqualified,
                          "suspended": sat.suspended})
    dq = {f["satellite"] for f in flags if f["disqualified"]}
    scores = []
    for url, s in snap.scores.items():
        label = labels.get(url) or short_name_from_url(url)
        for key, _ in SCORES:
            scores.append({"satellite": label, "score": key, "value": getattr(s, key),
                           "disqualified": label in dq})
    live = [s for s in scores if not s["disqualified"]] or scores
    disk = None
    if info is not None and info.disk.allocated > 0:
        d = info.disk
        disk = {"used_ratio": round(d.used / d.allocated, 4),
                "free_ratio": round(d.free / d.allocated, 4),
                "used_bytes": d.used, "allocated_bytes": d.allocated, "trash_bytes": d.trash}
    return {"api": api, "scores": scores, "satellites": flags, "disk": disk,
            "lowest_score": min(live, key=lambda s: s["value"]) if live else None}


def _merge(dicts) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def _alert(out: list, name: str, severity: str, text: str, what: str) -> None:
    out.append({"alert": name, "severity": severity, "text": text, "what": what})


def _worst(name: str, value: float, below: bool = True) -> str | None:
    """The severity whose threshold `value` crosses (critical before warning)."""
    for severity in ("critical", "warning"):
        limit = ALERT_THRESHOLDS.get((name, severity))
        if limit is not None and (value < limit if below else value > limit):
            return severity
    return None


def alerts_of(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The conditions of prometheus/rules/storagenode-alerts.yml that hold for a node now;
    `what` names the field the page highlights."""
    out: list[dict[str, str]] = []
    logp, api = entry.get("log"), entry.get("api")
    if api is not None:
        if not api["up"]:
            _alert(out, "StoragenodeDown", "critical", "the node API does not answer", "api")
        if api["up_to_date"] is False:
            _alert(out, "StoragenodeOutdated", "warning", "below the minimum allowed version",
                   "version")
        if api["quic_ok"] is False:
            _alert(out, "StoragenodeQuicMisconfigured", "warning", "QUIC is not OK", "version")
        for sat in entry.get("satellites", []):
            for flag in ("disqualified", "suspended"):
                if sat[flag]:
                    _alert(out, f"Storagenode{flag.capitalize()}", "critical",
                           f"{flag} by {sat['satellite']}", "score")
        for s in entry.get("scores", []):
            name = dict(SCORES)[s["score"]]
            severity = None if s["disqualified"] else _worst(name, s["value"])
            if severity:
                _alert(out, name, severity, f"{s['score']} score {s['value']:.4f} on "
                       f"{s['satellite']}", "score")
        disk = entry.get("disk")
        if disk is not None:
            severity = _worst("StoragenodeDiskAlmostFull", disk["free_ratio"])
            if severity:
                _alert(out, "StoragenodeDiskAlmostFull", severity,
                       f"{disk['free_ratio']:.1%} of the allocation free", "disk")
    if logp is not None:
        if not logp["up"]:
            _alert(out, "StoragenodeLogSilent", "warning", "the log source is not readable",
                   "log")
        elif logp.get("silent"):
            _alert(out, "StoragenodeLogSilent", "warning",
                   f"no log line read for {SILENT_SECONDS / 60:.0f} minutes", "log")
        if logp["audits_failed_10m"] > 0:
            _alert(out, "StoragenodeAuditFailed", "critical",
                   f"{logp['audits_failed_10m']} failed audit(s) in 10 minutes", "audit")
        for action, row in logp["hour"]["actions"].items():
            if action == "GET_AUDIT" or row["total"] < SUCCESS_MIN_TRANSFERS:
                continue
            if _worst("StoragenodeSuccessRateLow", row["ratio"]):
                _alert(out, "StoragenodeSuccessRateLow", "warning",
                       f"{action} success {row['ratio']:.1%} in the hour", f"rate:{action}")
        hour = logp["hour"]
        seen = hour["lines"] + hour["unparsed"]
        if seen and hour["unparsed"] > DRIFT_MIN_UNPARSED and _worst(
                "StoragenodeLogFormatDrift", hour["unparsed"] / seen, below=False):
            _alert(out, "StoragenodeLogFormatDrift", "warning",
                   f"{hour['unparsed'] / seen:.0%} of the lines unparsed", "unparsed")
    return out
