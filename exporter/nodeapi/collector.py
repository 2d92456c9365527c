"""Renders the pollers' cached API data at scrape time (no I/O here): as metric families
(`collect`: OpenMetrics scrapes) or, for a text-format /metrics scrape, as text (`text`: each
node's block written by the same renderers into exporter/nodeapi/text.py's families and kept
until the node's snapshot changes; the same bytes, tests/test_nodeapi_text.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import exposition
from exporter.nodeapi.parse import PAYSTUB_KINDS, Payout, Scores
from exporter.nodeapi.poller import NodeApiPoller, Snapshot
from exporter.nodeapi.text import NodeBlock, Part, join
from exporter.satellites import SATELLITES, short_name_from_url

_STALE = ("Values are kept while the node API fails and dropped once the last successful poll "
          "is older than 3 polling intervals plus the timeout.")

_DISK_HELP = {
    "used": "Bytes the node uses inside its allocation, trash and hashstore data included "
            "(same meaning before and after v1.143).",
    "free": "Bytes still available for new pieces inside the allocation (capped by the free "
            "space on the disk).",
    "trash": "Bytes in the trash (part of storagenode_disk_used_bytes).",
    "allocated": "Configured allocation in bytes (capped at the disk size).",
    "overused": "Bytes used beyond the allocation.",
    "reclaimable": "Hashstore bytes the next compaction can free (reported since v1.143, "
                   "non-zero since v1.147; absent on older nodes).",
}
_SCORES = (("audit", "Audit score, 0-1 (disqualification below 0.96)."),
           ("suspension", "Suspension (unknown audit) score, 0-1 (suspended below 0.6)."),
           ("online", "Online score, 0-1 (suspended below 0.6; unhealthy below 0.9)."))
_PERIODS = ("current_month", "previous_month")
_SAT_PERIOD = ["node", "satellite", "period"]
_SAT_PAYOUT = {  # storagenode_satellite_payout_<key>: (help, labels), from estimated-payout?id=
    "estimated_dollars": (
        "Estimated payout from the satellite in dollars after the held amount: current_month "
        "so far, previous_month, current_month_expected (projected to the month's end); the "
        "node-wide sum is storagenode_payout_estimated_dollars.", _SAT_PERIOD),
    "held_dollars": ("Dollars the satellite holds back from the period's estimated earnings.",
                     _SAT_PERIOD),
    "held_rate_ratio": (
        "Share of the period's earnings the satellite holds back, 0-1, by the node's age on "
        "it (0.75 in months 1-3, 0.5 in 4-6, 0.25 in 7-9, then 0).", _SAT_PERIOD),
    "estimated_component_dollars": (
        "Estimated earnings from the satellite in dollars before the held amount, by "
        "component: egress, repair_audit (repair and audit egress), disk (storage).",
        [*_SAT_PERIOD, "component"]),
}
#: the poller's own families (name, help, labels, type), after every other, in this order
_API = (
    ("storagenode_api_request_duration_seconds",
     "Duration of the last poll of the endpoint (for endpoint=satellite, all per-satellite "
     "requests of the round together).", ["node", "endpoint"], "gauge"),
    ("storagenode_api_errors",
     "Failed, timed-out or malformed answers from the node API, by endpoint.",
     ["node", "endpoint"], "counter"),
    ("storagenode_api_failures",
     "The same failures as storagenode_api_errors_total, by reason: timeout (the request's "
     "total deadline), connection, http_status, too_large, malformed (not JSON, wrong "
     "content type, wrong shape or absurd numbers); a reason appears once it has happened.",
     ["node", "endpoint", "reason"], "counter"),
    ("storagenode_api_last_success_timestamp_seconds",
     "Unix time of the last successful poll of the endpoint.", ["node", "endpoint"], "gauge"),
)
_KINDS = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}

log = logging.getLogger("exporter.nodeapi")


class _Gauge(GaugeMetricFamily):
    """Drops a second sample with the same labels: one duplicate series (two satellites
    whose hosts share a first label) would make Prometheus reject the whole scrape."""

    def __init__(self, name: str, documentation: str, labels: list[str]) -> None:
        super().__init__(name, documentation, labels=labels)
        self._seen: set[tuple[str, ...]] = set()

    def add_metric(self, labels, value, timestamp=None) -> None:  # type: ignore[override]
        key = tuple(labels)
        if key not in self._seen:
            self._seen.add(key)
            super().add_metric(labels, value, timestamp)


def _satellite_labels(snap: Snapshot) -> dict[str, str]:
    """Satellite ID -> label, unique within the node (a clash falls back to the ID)."""
    labels: dict[str, str] = {}
    used: set[str] = set()
    if snap.info is not None:
        for sat in snap.info.satellites:
            label = SATELLITES.name(sat.id)
            labels[sat.id] = label if label not in used else sat.id
            used.add(labels[sat.id])
    return labels


def _fmt_wallet_labels(snaps: list[Snapshot]) -> list[str]:
    labels = ["node", "node_id", "version", "allowed_version"]
    return [*labels, "wallet"] if any(s.include_wallet for s in snaps) else labels


class NodeApiCollector:
    """A prometheus_client custom collector over a list of NodeApiPoller."""

    def __init__(self, pollers: list[NodeApiPoller]) -> None:
        self.pollers = pollers
        self._reported = False
        self._lock = threading.Lock()
        self._blocks: dict[str, NodeBlock] = {}  # node -> its block, written from block.key
        self._joined: exposition.Prerendered | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if exposition.writing_text():  # a text-format /metrics scrape: the kept text
            yield self.text()
            return
        snaps = [p.snapshot() for p in self.pollers]
        fams: dict[str, Metric] = {}

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            if name not in fams:
                fams[name] = _Gauge(name, doc, labels)
            return fams[name]  # type: ignore[return-value]

        info_labels = _fmt_wallet_labels(snaps)
        for snap in snaps:
            self._render(snap, gauge, info_labels)
        api = {name: _KINDS[kind](name, doc, labels=labels) for name, doc, labels, kind in _API}
        for snap in snaps:
            self._api(snap, api)
        fams.update(api)
        yield from (f for f in fams.values() if f.samples)

    def text(self) -> exposition.Prerendered:
        """The families of collect() as generate_latest writes them; a node's block is
        written again only when its snapshot (the values shown, each endpoint's counts,
        duration and last success, `up`: the staleness rules are applied by snapshot() on
        every scrape), the names of its satellites or the wallet label changed."""
        snaps = [p.snapshot() for p in self.pollers]
        info_labels = _fmt_wallet_labels(snaps)
        with self._lock:
            changed = self._joined is None or [s.node for s in snaps] != list(self._blocks)
            blocks = []
            for snap in snaps:
                key = _key(snap, info_labels)
                block = self._blocks.get(snap.node)
                if block is None or block.key != key or any(
                        SATELLITES.name(sat) != name for sat, name in block.names):
                    block = self._blocks[snap.node] = self._write(snap, key, info_labels,
                                                                  block)
                    changed = True
                blocks.append(block)
            if changed:
                self._blocks = {snap.node: block for snap, block in zip(snaps, blocks,
                                                                         strict=True)}
                self._joined = exposition.Prerendered(join(blocks))
            return self._joined  # the same object while nothing changed

    def _write(self, snap: Snapshot, key: tuple, info_labels: list[str],
               old: NodeBlock | None) -> NodeBlock:
        """A node's block, with the parts of its `old` one whose inputs are unchanged."""
        names = _names(snap)
        kept = old.parts if old is not None else []
        parts = []
        for i, (inputs, render) in enumerate(self._sections(snap, info_labels, names)):
            part = kept[i] if i < len(kept) and kept[i].key == inputs else None
            if part is None:
                part = Part(inputs)
                try:
                    render(part.gauge)
                except Exception:
                    part.failed = True
                    self._failed(snap)
                part.done()
            parts.append(part)
            if part.failed:  # as in _render: the sections after it are not written
                break
        api = Part((), _API)
        self._api(snap, api.families)
        return NodeBlock(key, names, parts, api.done())

    def _render(self, snap: Snapshot, gauge, info_labels: list[str]) -> None:
        """One node's families but the poller's own; a failure keeps what it has written."""
        try:
            for _, render in self._sections(snap, info_labels, ()):
                render(gauge)
        except Exception:  # a bug here must not cost the log metrics their scrape
            self._failed(snap)

    def _failed(self, snap: Snapshot) -> None:
        if not self._reported:
            log.exception("node %s: cannot render the node API values", snap.node)
            self._reported = True

    def _sections(self, snap: Snapshot, info_labels: list[str],
                  names: tuple[tuple[str, str], ...]) -> tuple:
        """The renderers of a node in order, each with what it reads (`names`: _names())."""
        labels: list[dict[str, str]] = []

        def sat_labels() -> dict[str, str]:  # made once, by the first renderer that needs it
            if not labels:
                labels.append(_satellite_labels(snap))
            return labels[0]

        info = snap.info
        sat_ids = tuple(sat.id for sat in info.satellites) if info is not None else ()
        return (
            ((tuple(info_labels), snap.up, snap.include_wallet, info),
             lambda gauge: self._node(snap, gauge, info_labels)),
            ((info, snap.scores, snap.months, names),
             lambda gauge: self._satellites(snap, gauge, sat_labels())),
            ((sat_ids, names, snap.payout, snap.held, snap.satellite_payouts, snap.paystubs),
             lambda gauge: self._payout(snap, gauge, sat_labels())),
        )

    # -- node document -------------------------------------------------------------------------

    @staticmethod
    def _node(snap: Snapshot, gauge, info_labels: list[str]) -> None:
        n = snap.node
        gauge("storagenode_up",
              "1 if the last poll of the node's dashboard API (/api/sno/) succeeded, its "
              "values are not stale and no poll is overrunning its timeout, else 0. "
              + _STALE, ["node"]).add_metric([n], 1.0 if snap.up else 0.0)
        info = snap.info
        if info is None:
            return
        values = [n, info.node_id, info.version, info.allowed_version]
        if "wallet" in info_labels:
            values.append(info.wallet if snap.include_wallet else "")
        gauge("storagenode_info", "Node identity and version (always 1); allowed_version is "
              "the minimum version the network accepts.", info_labels).add_metric(values, 1.0)
        gauge("storagenode_up_to_date", "1 if the node runs at least the minimum allowed "
              "version (not necessarily the latest).", ["node"]).add_metric(
                  [n], 1.0 if info.up_to_date else 0.0)
        if info.quic_ok is not None:
            gauge("storagenode_quic_ok", "1 if the node reports QUIC as OK.", ["node"]
                  ).add_metric([n], 1.0 if info.quic_ok else 0.0)
        for name, value, doc in (
            ("storagenode_last_pinged_timestamp_seconds", info.last_pinged,
             "Last contact from a satellite (ping or piece request), Unix time; absent until "
             "the first contact after a node start."),
            ("storagenode_last_quic_pinged_timestamp_seconds", info.last_quic_pinged,
             "Last successful QUIC ping from a satellite, Unix time."),
            ("storagenode_start_time_seconds", info.started_at,
             "When the storagenode process started, Unix time."),
        ):
            if value is not None:
                gauge(name, doc, ["node"]).add_metric([n], value)
        disk = info.disk
        for key, doc in _DISK_HELP.items():
            value = getattr(disk, key)
            if value is not None:
                gauge(f"storagenode_disk_{key}_bytes", doc, ["node"]).add_metric([n], value)

    # -- satellites ----------------------------------------------------------------------------

    @staticmethod
    def _satellites(snap: Snapshot, gauge, sat_labels: dict[str, str]) -> None:
        n = snap.node
        by_url: dict[str, str] = {}
        statuses = []
        if snap.info is not None:
            for sat in snap.info.satellites:
                by_url[sat.url] = sat.id
                statuses.append((sat_labels[sat.id], sat))
        for label, sat in sorted(statuses, key=lambda x: x[0]):
            gauge("storagenode_satellite_info", "Satellites the node works for (always 1).",
                  ["node", "satellite", "satellite_id", "url"]
                  ).add_metric([n, label, sat.id, sat.url], 1.0)
            for key, flag, doc in (
                ("disqualified", sat.disqualified, "1 if the satellite disqualified the node."),
                ("suspended", sat.suspended, "1 if the satellite suspended the node."),
                ("vetted", sat.vetted, "1 once the node is vetted on the satellite "
                 "(reported since v1.131)."),
            ):
                if flag is not None:
                    gauge(f"storagenode_satellite_{key}", doc, ["node", "satellite"]
                          ).add_metric([n, label], 1.0 if flag else 0.0)

        def label_for(url: str) -> str:
            sat_id = by_url.get(url)
            return sat_labels[sat_id] if sat_id else short_name_from_url(url)

        scored: list[tuple[str, Scores]] = sorted(
            ((label_for(url), s) for url, s in snap.scores.items()), key=lambda x: x[0])
        for key, doc in _SCORES:
            for label, scores in scored:
                gauge(f"storagenode_satellite_{key}_score", doc, ["node", "satellite"]
                      ).add_metric([n, label], getattr(scores, key))

        months = sorted(((sat_labels.get(m.id) or SATELLITES.name(m.id), m)
                         for m in snap.months), key=lambda x: x[0])
        for direction, kinds in (("ingress", ("usage", "repair")),
                                 ("egress", ("usage", "repair", "audit"))):
            for label, month in months:
                for kind in kinds:
                    gauge(f"storagenode_month_{direction}_bytes",
                          f"{direction.capitalize()} bytes this UTC month so far, by kind "
                          "(usage, repair" + (", audit" if direction == "egress" else "")
                          + ").", ["node", "satellite", "kind"]
                          ).add_metric([n, label, kind], getattr(month, direction)[kind])
        for label, month in months:
            if month.storage_average_bytes is not None:
                gauge("storagenode_month_storage_average_bytes",
                      "Average bytes stored this month as the satellite tallied them "
                      "(averageUsageBytes; compare with storagenode_disk_used_bytes).",
                      ["node", "satellite"]).add_metric([n, label], month.storage_average_bytes)
        for label, month in months:
            if month.joined_at is not None:
                gauge("storagenode_satellite_joined_timestamp_seconds",
                      "When the node joined the satellite, Unix time (drives the held rate).",
                      ["node", "satellite"]).add_metric([n, label], month.joined_at)
        for name, attr, doc in (
            ("storagenode_satellite_storage_at_rest_bytes", "bytes",
             "Average bytes stored on the newest day of this month the satellite has tallied "
             "(storageDaily atRestTotalBytes; days the node only projected, flagged calculated "
             "since v1.162, are skipped): what the satellite pays for, to compare with "
             "storagenode_disk_used_bytes minus trash. Absent until the month's first tally."),
            ("storagenode_satellite_storage_at_rest_timestamp_seconds", "day",
             "Start (00:00 UTC) of the day storagenode_satellite_storage_at_rest_bytes is "
             "from, Unix time; the tally usually lags one or two days."),
        ):
            for label, month in months:
                if month.at_rest is not None:
                    gauge(name, doc, ["node", "satellite"]).add_metric(
                        [n, label], getattr(month.at_rest, attr))

    # -- money ---------------------------------------------------------------------------------

    @staticmethod
    def _payout(snap: Snapshot, gauge, sat_labels: dict[str, str]) -> None:
        n = snap.node
        pay = snap.payout
        if pay is not None:
            est = gauge("storagenode_payout_estimated_dollars",
                        "Estimated payout in dollars after the held amount: current_month so "
                        "far, previous_month, and current_month_expected (projected to the "
                        "month's end).", ["node", "period"])
            est.add_metric([n, "current_month"], pay.current_month.payout)
            est.add_metric([n, "previous_month"], pay.previous_month.payout)
            est.add_metric([n, "current_month_expected"], pay.current_month_expected)
            held = gauge("storagenode_payout_held_dollars",
                         "Dollars held back from the period's estimated earnings.",
                         ["node", "period"])
            comp = gauge("storagenode_payout_estimated_component_dollars",
                         "Estimated earnings in dollars before held amount, by component: "
                         "egress, repair_audit (repair and audit egress), disk (storage).",
                         ["node", "period", "component"])
            for period in _PERIODS:
                month = getattr(pay, period)
                held.add_metric([n, period], month.held)
                for component in ("egress", "repair_audit", "disk"):
                    comp.add_metric([n, period, component], getattr(month, component))
        held_by = sorted(((sat_labels.get(h.satellite_id) or SATELLITES.name(h.satellite_id), h)
                          for h in snap.held), key=lambda x: x[0])
        for label, item in held_by:
            gauge("storagenode_payout_held_total_dollars",
                  "Dollars still held back by the satellite (total held minus returned).",
                  ["node", "satellite"]).add_metric([n, label], item.held)
        for label, item in held_by:
            gauge("storagenode_payout_held_returned_dollars",
                  "Dollars of held amount the satellite has paid back so far (totalDisposed: "
                  "half at month 16, the rest after a graceful exit).",
                  ["node", "satellite"]).add_metric([n, label], item.returned)

        def label_of(sat_id: str) -> str:
            return sat_labels.get(sat_id) or SATELLITES.name(sat_id)

        per_sat = sorted(((label_of(sat_id), pay) for sat_id, pay in snap.satellite_payouts),
                         key=lambda x: x[0])
        for label, pay in per_sat:
            NodeApiCollector._satellite_payout(n, label, pay, gauge)
        stubs = sorted(((label_of(s.satellite_id), ago, s) for ago, s in snap.paystubs),
                       key=lambda x: (x[0], x[1]))
        fam = gauge("storagenode_paystub_dollars",
                    "The satellite's paystub for the month months_ago whole months before the "
                    "current UTC month (1 = last month, up to 12), in dollars: kind earned "
                    "(storage, egress, repair and audit, with any surge), held, disposed (held "
                    "amount returned), paid. A month appears "
                    "once its paystub has arrived (usually in the first half of the next "
                    "month).", ["node", "satellite", "months_ago", "kind"])
        for kind in PAYSTUB_KINDS:
            for label, ago, stub in stubs:
                fam.add_metric([n, label, str(ago), kind], getattr(stub, kind))

    @staticmethod
    def _satellite_payout(n: str, label: str, pay: Payout, gauge) -> None:
        """estimated-payout?id=: the node-wide payout families, per satellite."""
        fam = {key: gauge(f"storagenode_satellite_payout_{key}", doc, labels)
               for key, (doc, labels) in _SAT_PAYOUT.items()}
        for period in _PERIODS:
            month = getattr(pay, period)
            fam["estimated_dollars"].add_metric([n, label, period], month.payout)
            fam["held_dollars"].add_metric([n, label, period], month.held)
            fam["held_rate_ratio"].add_metric([n, label, period], month.held_rate)
            for component in ("egress", "repair_audit", "disk"):
                fam["estimated_component_dollars"].add_metric(
                    [n, label, period, component], getattr(month, component))
        fam["estimated_dollars"].add_metric([n, label, "current_month_expected"],
                                            pay.current_month_expected)

    # -- the poller itself ---------------------------------------------------------------------

    @staticmethod
    def _api(snap: Snapshot, fams: dict) -> None:
        duration, errors, failures, success = (fams[name] for name, *_ in _API)
        for ep in snap.endpoints:
            errors.add_metric([snap.node, ep.name], float(ep.errors))
            for reason, count in sorted(ep.by_reason.items()):
                failures.add_metric([snap.node, ep.name, reason], float(count))
            if ep.duration is not None:
                duration.add_metric([snap.node, ep.name], ep.duration)
            if ep.last_success is not None:
                success.add_metric([snap.node, ep.name], ep.last_success)


def _key(snap: Snapshot, info_labels: list[str]) -> tuple:
    """What a node's block shows (compared with ==: the parsed documents a poll left in place
    are the same objects, so unchanged parts compare by identity)."""
    return (tuple(info_labels), snap.up, snap.include_wallet, snap.info, snap.scores,
            snap.months, snap.payout, snap.held, snap.satellite_payouts, snap.paystubs,
            tuple((ep.name, ep.errors, ep.by_reason, ep.duration, ep.last_success)
                  for ep in snap.endpoints))


def _names(snap: Snapshot) -> tuple[tuple[str, str], ...]:
    """The satellites a block names, with the names it shows (another node may teach one)."""
    ids = {sat.id for sat in snap.info.satellites} if snap.info is not None else set()
    ids.update(m.id for m in snap.months)
    ids.update(h.satellite_id for h in snap.held)
    ids.update(sat_id for sat_id, _ in snap.satellite_payouts)
    ids.update(stub.satellite_id for _, stub in snap.paystubs)
    return tuple((sat, SATELLITES.name(sat)) for sat in sorted(ids))
