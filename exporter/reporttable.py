"""The text of `storagenode-exporter report`: successrate.sh's numbers, as one 80-column table.

Every number is read from the same NodeState snapshot the collector renders, so each one is a
sum of /metrics samples (tests/test_report.py checks that against `--format prometheus`):

- action rows: `storagenode_transfers_total` by action and result, summed over satellites;
  fail and cancel rates apart, as successrate.sh shows them;
- audits: critical failures are `storagenode_transfer_errors_total{action="GET_AUDIT",
  reason="file_not_found"}` (`file does not exist`: the piece is gone, each one costs audit
  score), recoverable ones every other failed audit (timeouts, I/O errors: the satellite
  audits the piece again);
- uploads: rejected are `storagenode_events_total{event="upload_rejected"}` (`upload rejected,
  too many requests`, the node's concurrent request limit); accepted are the finished PUTs.

Colour follows the alert rules (prometheus/rules/storagenode-alerts.yml): a success or
acceptance rate below 80 % is red (StoragenodeSuccessRateLow), below 95 % yellow (healthy
nodes run 95-99 %), judged only from 100 finished transfers on, as the alert is; any failed
audit is red when critical and yellow when recoverable (StoragenodeAuditFailed fires on
each). Colour only on a terminal: never with NO_COLOR (no-color.org), always with
FORCE_COLOR, both when non-empty.
"""

from __future__ import annotations

import os
from typing import TextIO

from exporter.satellites import SATELLITES, UNKNOWN
from exporter.state import ACTIONS

WIDTH = 80
#: the reason label of a missing piece (exporter/reasons.py: `file does not exist`)
CRITICAL_REASON = "file_not_found"
#: rates of StoragenodeSuccessRateLow and of healthy nodes, and its minimum sample
RED_BELOW, YELLOW_BELOW, MIN_JUDGED = 0.80, 0.95, 100
TOP_FAILURES, TOP_CANCELS = 10, 5

GREEN, YELLOW, RED, BOLD = "32", "33", "31", "1"


def use_colour(stream: TextIO) -> bool:
    """NO_COLOR wins, then FORCE_COLOR, then: is `stream` a terminal (not TERM=dumb)?"""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Painter:
    """ANSI SGR around already padded text, so colour never changes a column's width."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str | None) -> str:
        if not self.enabled or not code:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def rate(part: int, whole: int) -> str:
    """A percentage as successrate.sh prints it (3 decimals), `-` without a sample."""
    return f"{100 * part / whole:.3f}%" if whole else "-"


def rate_colour(part: int, whole: int) -> str | None:
    """The colour of a success or acceptance rate, on the alert's thresholds."""
    if whole < MIN_JUDGED:
        return None
    ratio = part / whole
    return RED if ratio < RED_BELOW else YELLOW if ratio < YELLOW_BELOW else GREEN


def wrapped(label: str, items: list[tuple[str, str | None]], paint: Painter) -> list[str]:
    """`label` and comma-separated (text, colour) `items` within WIDTH, continuation lines
    indented under the first item. An item is never broken (textwrap's rule for words, but
    packed here so that colour codes do not count as width)."""
    lines: list[str] = []
    indent = " " * (len(label) + 3)
    line, used = f"  {label}", len(label) + 2
    for i, (text, colour) in enumerate(items):
        piece = text + ("," if i < len(items) - 1 else "")
        if used + 1 + len(piece) > WIDTH and used > len(indent):
            lines.append(line)
            line, used = indent[:-1], len(indent) - 1
        line += " " + paint(text, colour) + piece[len(text):]
        used += 1 + len(piece)
    lines.append(line)
    return lines


def counts_format(numbers: list[int]) -> tuple[str, int]:
    """Thousands separators while the widest count has at most 11 characters, and the
    column width: three count columns of up to 12 keep a row within 80 columns."""
    sep = "," if max((len(f"{n:,}") for n in numbers), default=0) <= 11 else ""
    return sep, max(10, *(len(f"{n:{sep}}") + 1 for n in numbers))


def node_table(name: str, snap: dict, paint: Painter) -> list[str]:
    """The lines of one node."""
    counts: dict[tuple[str, str], int] = {}
    for (_sat, action, result), value in snap["transfers"].items():
        counts[(action, result)] = counts.get((action, result), 0) + value
    errors: dict[tuple[str, str], int] = snap["errors"]
    critical = errors.get(("GET_AUDIT", CRITICAL_REASON), 0)
    recoverable = counts.get(("GET_AUDIT", "failed"), 0) - critical
    # `unknown`: race-lost cancels whose started line was not seen (docs/metrics.md)
    shown = (*ACTIONS, UNKNOWN) if any(a == UNKNOWN for a, _ in counts) else ACTIONS
    rows = [(action, *(counts.get((action, r), 0) for r in ("success", "canceled", "failed")))
            for action in shown]
    sep, w = counts_format([n for row in rows for n in row[1:]])
    out = [paint(f"node {name}", BOLD),
           f"  {'action':<11}{'success':>{w}}{'canceled':>{w}}{'failed':>{w}}"
           f"{'success%':>10}{'cancel%':>10}{'fail%':>10}"]
    for action, ok, canceled, failed in rows:
        total = ok + canceled + failed
        if action == "GET_AUDIT":
            colour = (RED if critical else YELLOW if recoverable else GREEN) if total else None
        else:
            colour = rate_colour(ok, total)
        out.append(f"  {action:<11}{ok:>{w}{sep}}{canceled:>{w}{sep}}{failed:>{w}{sep}}"
                   + paint(f"{rate(ok, total):>10}", colour)
                   + f"{rate(canceled, total):>10}{rate(failed, total):>10}")
    out += audit_lines(snap, counts, critical, recoverable, paint)
    out += upload_lines(snap, counts, paint)
    for label, table, top in (("top failure reasons:", errors, TOP_FAILURES),
                              ("top cancel reasons:", snap["cancel_reasons"], TOP_CANCELS)):
        items = sorted(table.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        if items:
            out += wrapped(label, [(f"{a} {r} {n:,}", None) for (a, r), n in items], paint)
    out.append(f"  lines: {sum(snap['lines'].values()):,} parsed, {snap['unparsed']:,} unparsed")
    return out


def audit_lines(snap: dict, counts: dict, critical: int, recoverable: int,
                paint: Painter) -> list[str]:
    """Critical and recoverable audit failures, then the audits of each satellite."""
    ok = counts.get(("GET_AUDIT", "success"), 0)
    canceled = counts.get(("GET_AUDIT", "canceled"), 0)
    total = ok + canceled + critical + recoverable
    if not total:
        return ["  audits: none"]
    out = wrapped("audits:", [
        (f"{critical:,} critical ({rate(critical, total)}, file does not exist)",
         RED if critical else None),
        (f"{recoverable:,} recoverable ({rate(recoverable, total)})",
         YELLOW if recoverable else None),
        (f"{canceled:,} canceled ({rate(canceled, total)})", None),
        (f"{ok:,} success ({rate(ok, total)})", None),
    ], paint)
    by_sat: dict[str, list[int]] = {}
    for (sat, action, result), value in snap["transfers"].items():
        if action == "GET_AUDIT":
            entry = by_sat.setdefault(SATELLITES.name(sat), [0, 0])
            entry[0 if result == "success" else 1] += value
    items = [(f"{sat} {good:,} ok {bad:,} not ok", None)
             for sat, (good, bad) in sorted(by_sat.items()) if good or bad]
    if items:
        out += wrapped("audits by satellite:", items, paint)
    return out


def upload_lines(snap: dict, counts: dict, paint: Painter) -> list[str]:
    """successrate.sh's acceptance rate: finished PUTs of all PUTs the node was asked for."""
    rejected = snap["events"].get("upload_rejected", 0)
    accepted = sum(counts.get(("PUT", r), 0) for r in ("success", "canceled", "failed"))
    whole = accepted + rejected
    return wrapped("uploads:", [
        (f"{accepted:,} accepted", None),
        (f"{rejected:,} rejected (too many requests)", YELLOW if rejected else None),
        (f"acceptance {rate(accepted, whole)}", rate_colour(accepted, whole)),
    ], paint)


def render(nodes: list[tuple[str, dict]], colour: bool) -> str:
    """The whole report: `nodes` are (name, NodeState.snapshot()) pairs."""
    paint = Painter(colour)
    out: list[str] = []
    for i, (name, snap) in enumerate(nodes):
        out += [""] * (i > 0) + node_table(name, snap, paint)  # a blank line between nodes
    return "\n".join(out) + "\n"
