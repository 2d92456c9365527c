"""The log metric families described without prometheus_client: name, type, help and label
names, in exposition order, and their HELP/TYPE headers.

The text writer (exporter/nodetext.py, `LogCollector.text`) renders from this description, so
`report --format prometheus` needs no prometheus_client, whose package imports http.server,
email, ssl and more (~120 M instructions of start-up). The prometheus_client families of
`LogCollector.collect()` (OpenMetrics scrapes, backfill) are built from it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from exporter.housekeeping import METRICS


class Family(NamedTuple):
    """One log family; `name`, `type` and `documentation` as a prometheus_client Metric has
    them (a counter's name without `_total`), so `header()` takes either."""

    name: str
    type: str  # "counter", "gauge" or "histogram"
    documentation: str
    labels: tuple[str, ...]  # "node" first


_NODE = ("node",)
_TRANSFER = ("node", "satellite", "action", "result")

#: family key -> its description, in exposition order
FAMILIES: dict[str, Family] = {
    "transfers": Family("storagenode_transfers", "counter", "Finished piece transfers.",
                        _TRANSFER),
    "ingress": Family(
        "storagenode_ingress_bytes", "counter",
        "Bytes received in piece uploads (Size of the line: always the bytes received).",
        _TRANSFER),
    "egress": Family(
        "storagenode_egress_bytes", "counter",
        "Bytes sent in piece downloads: Size of a success; of a canceled/failed one only what "
        "the line says was sent (its Size is the requested size since v1.99).", _TRANSFER),
    "requested": Family(
        "storagenode_transfer_requested_bytes", "counter",
        "Requested size (Size) of canceled and failed piece downloads.", _TRANSFER),
    "sizes": Family("storagenode_transfer_size_bytes", "histogram",
                    "Size of successful transfers.", ("node", "action")),
    "durations": Family(
        "storagenode_transfer_duration_seconds", "histogram",
        "Time from '... started' to the finished line (needs debug logs since v1.116).",
        ("node", "action", "result")),
    "errors": Family("storagenode_transfer_errors", "counter",
                     "Failed transfers by normalised reason.", ("node", "action", "reason")),
    "in_flight": Family("storagenode_transfers_in_flight", "gauge",
                        "Started transfers not finished yet.", ("node", "action")),
    "expired": Family("storagenode_transfer_starts_expired", "counter",
                      "'... started' lines never matched by a finished line.", _NODE),
    "events": Family("storagenode_events", "counter",
                     "Other log events (see docs/metrics.md).", ("node", "event")),
    "top": Family("storagenode_top_piece_downloads", "gauge",
                  "Most requested pieces (GET, approximate lower-bound counts, top 10).",
                  ("node", "piece_id")),
    "lines": Family("storagenode_log_lines", "counter", "Parsed log lines by level.",
                    ("node", "level")),
    "unparsed": Family("storagenode_log_unparsed_lines", "counter",
                       "Lines that are not storagenode log lines.", _NODE),
    "up": Family("storagenode_log_source_up", "gauge", "1 while the log source is readable.",
                 _NODE),
    "last": Family("storagenode_log_last_line_timestamp_seconds", "gauge",
                   "Timestamp written in the newest parsed line.", _NODE),
    **{f"source_{name}": Family(f"storagenode_log_source_{name}", "counter", doc, _NODE)
       for name, doc in (
           ("bytes_read", "Bytes read from the log source."),
           ("rotations", "Rename rotations followed."),
           ("truncations", "Truncations (copytruncate) detected."),
           ("reconnects", "Reconnections of a streamed source."),
       )},
    "oversized": Family("storagenode_log_oversized_lines", "counter",
                        "Lines over the line length limit (also counted as unparsed).", _NODE),
    "cancels": Family("storagenode_transfer_cancel_reasons", "counter",
                      "Canceled transfers whose line gives a reason, by normalised reason.",
                      ("node", "action", "reason")),
    "available": Family(
        "storagenode_available_space_bytes", "gauge",
        "Available Space of the newest 'upload started' line (the node's own view).", _NODE),
    **{f"house_{metric}": Family(name, kind, doc, ("node", *labels))
       for metric, (name, kind, doc, labels) in METRICS.items()},
}


def header(family) -> str:
    """The HELP and TYPE lines of a family (a Family or a prometheus_client Metric), named as
    the text format names it."""
    name = family.name + "_total" if family.type == "counter" else family.name
    doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n"


def join(families: dict[str, Family], blocks: Iterable[dict[str, str]]) -> str:
    """Every family's header once, then that family's block of each node, in node order."""
    blocks = list(blocks)
    out = []
    for key, family in families.items():
        out.append(header(family))
        out.extend(block[key] for block in blocks if key in block)
    return "".join(out)
