r"""Deterministic synthetic storagenode log, for the benchmark and the `demo` node.

Why: the exporter needs realistic input without a real node — a benchmark log of a million
lines, a live stream for `storagenode-exporter demo`, and test data with known counts. The
lines follow reference/storagenode-logs-and-api.md §1-§3 byte for byte (one TAB between
columns, the fields as JSON with ", " and ": ", keys in the order zap writes them).

API (small on purpose):

    gen = LogGenerator(era="v1.146", seed=42, started=True, remote_networks=None,
                       lines_per_second=50.0)
    for line in gen.lines(1000, start=1710320400.0): ...   # each line ends in "\n"
    batch = gen.tick(now=time.time(), rate=500)            # ~rate lines stamped `now`
    gen.line_counts()      # {"info": n, "debug": n, ...} of the lines handed out so far
    gen.transfer_counts()  # {(action, result): n} of finished transfers handed out
    gen.transfer_counts(by_satellite=True)  # {(satellite short name, action, result): n}
    gen.event_counts()     # {event name (exporter.events naming): n}
    write_file(path, count, era=..., seed=..., started=True, start=None) -> LogGenerator

    python -m exporter.loggen --era v1.99 --lines 1000000 --seed 42 [--no-started]
        [--start EPOCH] [--remote-network CIDR ...] [--counts FILE.json] OUT|-

Eras (`ERAS`): "v1.76" (ISO8601 with ms and a +0200 offset, `Process`, Title Case, started
lines at INFO, `upload failed` with error before Size, download Size = bytes sent), "v1.80"
(`process`, ISO8601 ms in UTC), "v1.99" (RFC3339 seconds, Title Case, started INFO, fields
from `log.With`; its process key is `process` as the reference table says for v1.84-v1.99),
"v1.120" (`Process`, started lines at DEBUG, `download canceled` has `reason`), "v1.146"
(snake_case keys, `process`, started DEBUG, client disconnects as WARN `upload failed`).

When the era's started lines are DEBUG and `started=True`, the simulated node runs at
`log.level: debug`, so other DEBUG lines (quiet upload failures) appear as well; at INFO
level they do not, and their started lines stay unmatched, as on a real node.

Mix (performance-anchors.md B.1): actions GET 45 %, PUT 38 %, GET_REPAIR 8 %,
PUT_REPAIR 5 %, GET_AUDIT 4 %; satellites us1/eu1/ap1/saltlake 45/30/15/10 %; ~3 % of the
lines are other events. Transfers overlap: arrivals are a Poisson process and each transfer
finishes after its own duration, so several are in flight and lines interleave.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import random
import sys
import time
from bisect import bisect
from collections import _count_elements  # the C helper behind Counter.update
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import exp, log
from operator import itemgetter
from statistics import NormalDist

SATELLITES: tuple[tuple[str, str], ...] = (
    ("us1", "12EayRS2V1kEsWESU9QMRseFhdxYxKicsiFmxrsLZHeLUtdps3S"),
    ("eu1", "12L9ZFwhzVpuEKMUNUqkaTLGzwY9G24tbiigLiXpmZWKwmcNDDs"),
    ("ap1", "121RTSDpyNZVcEU84Ticf2L1ntiuUimbWgfATz21tuvgk3vzoA6"),
    ("saltlake", "1wFTAgs9DP5RSnCqKV1eLf6N9wtk4EAtmN5DpSxcs8EjT69tGE"),
)
SATELLITE_WEIGHTS = (45, 30, 15, 10)
ACTIONS = ("GET", "PUT", "GET_REPAIR", "PUT_REPAIR", "GET_AUDIT")
ACTION_WEIGHTS = (45, 38, 8, 5, 4)
UPLOADS = frozenset({"PUT", "PUT_REPAIR"})
# (success, canceled) probabilities per action; the rest fails.
RESULT_MIX: dict[str, tuple[float, float]] = {
    "GET": (0.900, 0.075),
    "PUT": (0.860, 0.125),
    "GET_REPAIR": (0.930, 0.015),
    "PUT_REPAIR": (0.880, 0.090),
    "GET_AUDIT": (0.990, 0.002),
}
# action -> (is upload, P(success), P(success or canceled), P(full piece))
_ACTION_INFO: dict[str, tuple[bool, float, float, float]] = {
    a: (a in UPLOADS, ok, ok + cancel, 0.7 if a in ("PUT_REPAIR", "GET_REPAIR") else 0.4)
    for a, (ok, cancel) in RESULT_MIX.items()
}
OTHER_SHARE = 0.03  # share of all lines that are not piece transfers
FULL_PIECE = 2_319_360  # ~64 MiB segment / 29, rounded to 256 bytes
LOCAL_ADDR = "172.17.0.3:28967"
_DAY = 86400.0
_first, _second = itemgetter(0), itemgetter(1)
# Standard normal quantiles: a table lookup is ~5x cheaper than random.gauss().
_NQ = 4096
_NORMAL = [NormalDist().inv_cdf((i + 0.5) / _NQ) for i in range(_NQ)]
# Piece sizes below a full piece: log-uniform from 256 B to ~2.3 MB, multiples of 256.
_SIZES = [max(256, int(256 * 9060 ** ((i + 0.5) / _NQ)) // 256 * 256) for i in range(_NQ)]
_IP_POOL = 4096
_B32 = bytes.maketrans(bytes(range(256)), b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" * 8)
_B32_LAST = bytes.maketrans(bytes(range(256)), b"AQ" * 128)


@dataclass(frozen=True)
class Era:
    """What changes between storagenode versions (reference §1.3)."""

    name: str
    version: str  # what the updater reports as the running version
    iso_ms: bool  # ISO8601 with ms (before v1.84) instead of RFC3339 seconds
    tz_minutes: int  # local offset written in the timestamps
    process_key: str
    snake: bool  # v1.146 homogenised snake_case field names
    started_level: str
    upload_error_first: bool  # before v1.99: error/errorVerbose before Size/Remote Address
    download_sent_size: bool  # before v1.99: Size on finished downloads = bytes sent
    cancel_reason: bool  # since v1.113: `download canceled` carries `reason`
    quiet_upload_eof: bool  # since v1.99: unexpected-EOF upload failures logged at DEBUG
    disconnect_warn: bool  # since v1.147: client-disconnect upload failures are WARN
    race_lost: bool  # `download canceled (race lost or node shutdown)` exists
    rejected_level: str  # `upload rejected, too many requests`: ERROR before v1.122
    old_verification: bool  # download order-limit failures still logged (<= v1.121)
    retain_fields: str  # "old" (<= v1.95), "title", "snake"
    filewalker: str  # "none", "lazy" (subprocess lines, <= v1.106), "pieces"
    default_start: float  # a plausible date for the era (unix seconds)


ERAS: dict[str, Era] = {
    "v1.76": Era("v1.76", "v1.76.2", True, 120, "Process", False, "INFO", True, True, False,
                 False, False, False, "ERROR", True, "old", "none", 1681171200.0),
    "v1.80": Era("v1.80", "v1.80.10", True, 0, "process", False, "INFO", True, True, False,
                 False, False, False, "ERROR", True, "old", "lazy", 1686787200.0),
    "v1.99": Era("v1.99", "v1.99.3", False, 0, "process", False, "INFO", False, False, False,
                 True, False, True, "ERROR", True, "title", "lazy", 1710320400.0),
    "v1.120": Era("v1.120", "v1.120.4", False, 0, "Process", False, "DEBUG", False, False,
                  True, True, False, True, "ERROR", True, "title", "pieces", 1737370800.0),
    "v1.146": Era("v1.146", "v1.146.5", False, 0, "process", True, "DEBUG", False, False,
                  True, True, True, True, "INFO", False, "snake", "pieces", 1768471200.0),
}

# ---- error texts (reference §3) ----------------------------------------------------------

_SERVER_FRAMES = (
    "storj.io/common/pb.DRPCPiecestoreDescription.Method.func{n}:{line}",
    "storj.io/drpc/drpcmux.(*Mux).HandleRPC:33",
    "storj.io/common/rpc/rpctracing.(*Handler).HandleRPC:61",
    "storj.io/common/experiment.(*Handler).HandleRPC:42",
    "storj.io/drpc/drpcserver.(*Server).handleRPC:167",
    "storj.io/drpc/drpcserver.(*Server).ServeOne:109",
    "storj.io/drpc/drpcserver.(*Server).Serve.func2:157",
    "storj.io/drpc/drpcctx.(*Tracker).track:35",
)
_WRITE_FRAMES = (
    "storj.io/drpc/drpcstream.(*Stream).rawWriteLocked:409",
    "storj.io/drpc/drpcstream.(*Stream).MsgSend:458",
    "storj.io/common/pb.(*drpcPiecestore_DownloadStream).Send:349",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Download.func6.1:757",
    "storj.io/common/rpc/rpctimeout.Run.func1:22",
)
_DOWNLOAD_FRAMES = (
    "storj.io/common/rpc/rpcstatus.Wrap:75",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Download:650",
    *_SERVER_FRAMES,
)
_UPLOAD_FRAMES = (
    "storj.io/common/rpc/rpcstatus.Wrap:75",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Upload:544",
    *_SERVER_FRAMES,
)
_SEND_FRAMES = (
    "storj.io/drpc/drpcstream.(*Stream).rawFlushLocked:401",
    "storj.io/drpc/drpcstream.(*Stream).MsgSend:458",
    "storj.io/common/pb.(*drpcPiecestore_UploadStream).SendAndClose:290",
    "storj.io/storj/storagenode/piecestore.(*Endpoint).Upload.func7:768",
    "storj.io/common/rpc/rpctimeout.Run.func1:22",
)
_READ_FRAMES = (
    "storj.io/drpc/drpcwire.(*Reader).ReadPacketUsing:96",
    "storj.io/drpc/drpcmanager.(*Manager).manageReader:229",
)

# (weight, error text, errorVerbose frames, kind, era filter)
# kind: "eof" (quiet DEBUG since v1.99), "disconnect" (WARN since v1.147), "other".
# era filter: None = every era, "old" = logged only up to v1.121, "hashstore" = v1.146 only.
_Err = tuple[int, str, tuple[str, ...], str, str | None]
_GET_ERRORS: tuple[_Err, ...] = (
    (30, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
    (18, "write tcp {local}->{remote}: write: broken pipe", _WRITE_FRAMES, "other", None),
    (14, "write tcp {local}->{remote}: write: connection reset by peer", _WRITE_FRAMES,
     "other", None),
    (12, "context deadline exceeded", _DOWNLOAD_FRAMES, "other", None),
    (6, "manager closed: read tcp {local}->{remote}: read: connection reset by peer",
     _READ_FRAMES, "other", None),
    (5, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
    (3, "hashstore: file does not exist", _DOWNLOAD_FRAMES, "other", "hashstore"),
    (6, "used serial already exists in store", _DOWNLOAD_FRAMES, "other", "old"),
    (4, "untrusted: unable to get signee: trust: rpc: tcp connector failed: rpc: "
        "context deadline exceeded", _DOWNLOAD_FRAMES, "other", "old"),
)
_AUDIT_ERRORS: tuple[_Err, ...] = (
    (80, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
    (40, "hashstore: file does not exist", _DOWNLOAD_FRAMES, "other", "hashstore"),
    (15, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
)
_REPAIR_ERRORS: tuple[_Err, ...] = (
    (45, "write tcp {local}->{remote}: write: connection timed out", _WRITE_FRAMES, "other",
     None),
    (30, "context deadline exceeded", _DOWNLOAD_FRAMES, "other", None),
    (15, "write tcp {local}->{remote}: write: broken pipe", _WRITE_FRAMES, "other", None),
    (10, "file does not exist", _DOWNLOAD_FRAMES, "other", None),
)
_UPLOAD_ERRORS: tuple[_Err, ...] = (
    (30, "unexpected EOF", _UPLOAD_FRAMES, "eof", None),
    (10, "manager closed: unexpected EOF", ("storj.io/drpc/drpcmanager.(*Manager)."
                                             "manageReader:231",), "eof", None),
    (20, "read tcp {local}->{remote}: read: connection reset by peer", _READ_FRAMES,
     "disconnect", None),
    (10, "write tcp {local}->{remote}: write: broken pipe", _SEND_FRAMES, "disconnect", None),
    (14, "context deadline exceeded", _UPLOAD_FRAMES, "other", None),
    (3, "pieces error: filestore error: write config/storage/temp/blob-{n}.partial: "
        "no space left on device", _UPLOAD_FRAMES, "other", None),
)
_CANCEL_REASONS = (
    (45, "context canceled"),
    (30, "stream closed by peer"),
    (20, "downloaded size ({sent} bytes) does not match received message size ({size} bytes)"),
    (5, "unknown reason bug in code, please report"),
)


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [c / total for c in out]


def _prefixes(*nets: str) -> frozenset[int]:
    out = set()
    for cidr in nets:
        net = ipaddress.IPv4Network(cidr)
        shift = 32 - (8 if net.prefixlen <= 8 else 16 if net.prefixlen <= 16 else 24)
        first, last = int(net.network_address), int(net.broadcast_address)
        out.update(range(first >> shift, (last >> shift) + 1))
    return frozenset(out)


# Not public: this-network, private, shared, loopback, link-local, test, benchmark, multicast.
_RESERVED_8 = _prefixes("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3")
_RESERVED_16 = _prefixes("100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
                         "192.168.0.0/16", "198.18.0.0/15")
_RESERVED_24 = _prefixes("192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


def _public(n: int) -> bool:
    """True for a public unicast IPv4 address (as an int)."""
    return (
        n >> 24 not in _RESERVED_8
        and n >> 16 not in _RESERVED_16
        and n >> 8 not in _RESERVED_24
    )


class LogGenerator:
    """A simulated node's log: transfers in flight, finishing out of order, plus the other
    events a node writes. Deterministic for a given (era, seed, options, call sequence)."""

    def __init__(
        self,
        era: str = "v1.146",
        seed: int = 42,
        started: bool = True,
        remote_networks: Sequence[str] | None = None,
        *,
        lines_per_second: float = 50.0,
    ) -> None:
        if era not in ERAS:
            raise ValueError(f"unknown era {era!r}; known: {', '.join(ERAS)}")
        self.era = e = ERAS[era]
        self.started = started
        self.rng = random.Random(seed)
        self.debug = started and e.started_level == "DEBUG"  # node runs at log.level debug
        self._networks: list[tuple[int, int]] = []
        for cidr in remote_networks or ():
            net = ipaddress.IPv4Network(cidr, strict=False)
            self._networks.append((int(net.network_address), net.num_addresses))
        # field names of this era
        if e.snake:
            k = ("piece_id", "satellite_id", "action", "offset", "size", "remote_address",
                 "available_space")
        else:
            k = ("Piece ID", "Satellite ID", "Action", "Offset", "Size", "Remote Address",
                 "Available Space")
        self._k_piece, self._k_sat, self._k_action, ko, kz, kr, ka = k
        self._k_size, self._k_remote = kz, kr
        self._p_offset, self._p_size = f', "{ko}": ', f', "{kz}": '
        self._p_remote, self._p_avail = f', "{kr}": "', f'", "{ka}": '
        self._head = f'{{"{e.process_key}": "storagenode", "{self._k_piece}": "'
        # the rest of a transfer's first fields, per satellite and action
        self._post = [
            {a: f'", "{self._k_sat}": "{sat_id}", "{self._k_action}": "{a}"' for a in ACTIONS}
            for _, sat_id in SATELLITES
        ]
        # timestamps
        self._tz = e.tz_minutes * 60
        sign = "+" if e.tz_minutes >= 0 else "-"
        hh, mm = divmod(abs(e.tz_minutes), 60)
        if e.iso_ms:
            self._tz_suffix = "Z" if e.tz_minutes == 0 else f"{sign}{hh:02d}{mm:02d}"
        else:
            self._tz_suffix = "Z" if e.tz_minutes == 0 else f"{sign}{hh:02d}:{mm:02d}"
        self._ts_sec = -1
        self._ts_text = ""
        # weights
        self._sat_cum = _cumulative(SATELLITE_WEIGHTS)
        self._action_cum = _cumulative(ACTION_WEIGHTS)
        self._errors = {
            "GET": self._era_errors(_GET_ERRORS),
            "GET_AUDIT": self._era_errors(_AUDIT_ERRORS),
            "GET_REPAIR": self._era_errors(_REPAIR_ERRORS),
            "PUT": self._era_errors(_UPLOAD_ERRORS),
            "PUT_REPAIR": self._era_errors(_UPLOAD_ERRORS),
        }
        self._reason_cum = _cumulative([w for w, _ in _CANCEL_REASONS])
        self._others = [
            (w, f) for w, f, ok in (
                (25, self._ev_orders, True),
                (18, self._ev_rejected, True),
                (7, self._ev_db_locked, True),
                (6, self._ev_ping_failed, True),
                (6, self._ev_quic, True),
                (3, self._ev_bloomfilter, True),
                (3, self._ev_retain_prepared, True),
                (3, self._ev_retain_moved, True),
                (4, self._ev_trash_started, True),
                (4, self._ev_trash_finished, True),
                (3, self._ev_usedspace_started, e.filewalker != "none"),
                (3, self._ev_usedspace_completed, e.filewalker != "none"),
                (4, self._ev_updater, True),
            ) if ok
        ]
        self._others_cum = _cumulative([w for w, _ in self._others])
        # simulation state
        self._heap: list[tuple[float, int, list]] = []
        self._seq = 0
        self._next_arrival: float | None = None
        self._fixed: float | None = None  # tick(): every line stamped with this time
        self._out: list[tuple[str, tuple]] = []
        self._counts: dict[tuple, int] = {}
        self._avail = 1_786_543_210_988
        self._recent: list[tuple[str, int]] = []  # uploaded pieces, later downloaded
        self._hot = [(self._piece_id(), self._pick(self._sat_cum)) for _ in range(64)]
        # Clients: a pool of addresses, each seen again and again (ports are fresh).
        self._ips = [self._ip() for _ in range(_IP_POOL)]
        transfer_lines = (1.0 if started else 0.0) + 1.0
        self._p_other = OTHER_SHARE / (1 - OTHER_SHARE) * transfer_lines / 1.2
        self._lines_per_arrival = transfer_lines / (1 - OTHER_SHARE)
        self._lambda = lines_per_second / self._lines_per_arrival

    # ---- public ------------------------------------------------------------------------

    def lines(self, count: int, start: float | None = None) -> Iterator[str]:
        """The next `count` lines, each ending in "\\n". `start` (unix seconds) moves the
        simulated clock forward to that time first (never backwards)."""
        if start is not None:
            self._jump(start)
        elif self._next_arrival is None:
            self._jump(self.era.default_start)
        counts = self._counts
        remaining = count
        buf = self._out
        step = self._step
        while remaining > 0:
            want = min(remaining, 4096)
            while len(buf) < want:
                step(buf)
            if len(buf) > remaining:
                take = buf[:remaining]
                del buf[:remaining]
            else:
                take = buf[:]
                buf.clear()
            remaining -= len(take)
            _count_elements(counts, map(_second, take))
            yield from map(_first, take)

    def tick(self, now: float, rate: float) -> list[str]:
        """Lines a live node writes during the second after `now` at about `rate` lines/s,
        all stamped `now` (the demo writes them immediately)."""
        if self._next_arrival is None or now - self._next_arrival > 5.0:
            self._jump(now)
        if rate > 0:
            self._lambda = rate / self._lines_per_arrival
        out = self._out
        self._fixed = now
        limit = now + 1.0
        heap = self._heap
        try:
            while rate > 0:
                nxt = self._next_arrival
                if heap and heap[0][0] < nxt:
                    nxt = heap[0][0]
                if nxt >= limit:
                    break
                self._step(out)
        finally:
            self._fixed = None
        _count_elements(self._counts, map(_second, out))
        result = list(map(_first, out))
        out.clear()
        return result

    def line_counts(self) -> dict[str, int]:
        """Lines handed out so far, by lower-case level."""
        out: dict[str, int] = {}
        for tag, n in self._counts.items():
            level = tag[0].lower()
            out[level] = out.get(level, 0) + n
        return out

    def transfer_counts(self, by_satellite: bool = False) -> dict[tuple[str, ...], int]:
        """Finished transfers handed out so far: (action, result) -> n, or
        (satellite, action, result) -> n."""
        out: dict[tuple[str, ...], int] = {}
        for (_, action, result, sat), n in self._counts.items():
            if action == "event" or result == "started":
                continue
            key = (sat, action, result) if by_satellite else (action, result)
            out[key] = out.get(key, 0) + n
        return out

    def started_counts(self) -> dict[str, int]:
        """`… started` lines handed out so far, by action."""
        out: dict[str, int] = {}
        for (_, action, result, _), n in self._counts.items():
            if result == "started":
                out[action] = out.get(action, 0) + n
        return out

    def event_counts(self) -> dict[str, int]:
        """Other events handed out so far, named as in exporter.events."""
        out: dict[str, int] = {}
        for (_, kind, name, _), n in self._counts.items():
            if kind == "event" and name is not None:
                out[name] = out.get(name, 0) + n
        return out

    # ---- simulation ----------------------------------------------------------------------

    def _jump(self, to: float) -> None:
        """Move the clock to `to`, shifting transfers in flight with it."""
        if self._next_arrival is None:
            self._next_arrival = to
            return
        delta = to - self._next_arrival
        if delta <= 0:
            return
        self._next_arrival = to
        self._heap = [(t + delta, s, tr) for t, s, tr in self._heap]  # order is kept

    def _step(self, out: list) -> None:
        """Process the earliest pending event: a transfer finishing or a new arrival."""
        heap = self._heap
        t = self._next_arrival
        if heap and heap[0][0] <= t:
            when, _, tr = heapq.heappop(heap)
            self._finish(when, tr, out)
            return
        self._arrive(t, out)
        self._next_arrival = t - log(1.0 - self.rng.random()) / self._lambda

    def _pick(self, cum: list[float]) -> int:
        return bisect(cum, self.rng.random())

    def _piece_id(self) -> str:
        # 32 random bytes in base32 are 51 free characters and a last one of A or Q
        # (translate is ~20x faster than base64.b32encode, which is pure Python).
        raw = self.rng.randbytes(52)
        return (raw[:51].translate(_B32) + raw[51:].translate(_B32_LAST)).decode()

    def _ip(self) -> str:
        """A remote IPv4 address: from `remote_networks`, else any public address."""
        rnd = self.rng.random
        if self._networks:
            base, size = self._networks[int(rnd() * len(self._networks))]
            n = base + (1 + int(rnd() * (size - 2)) if size > 2 else int(rnd() * size))
        else:
            n = self.rng.getrandbits(32)
            while not _public(n):
                n = self.rng.getrandbits(32)
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    def _ts(self, t: float) -> str:
        if self._fixed is not None:
            t = self._fixed
        sec = int(t)
        if sec != self._ts_sec:
            tm = time.gmtime(sec + self._tz)
            self._ts_text = (
                f"{tm[0]:04d}-{tm[1]:02d}-{tm[2]:02d}T{tm[3]:02d}:{tm[4]:02d}:{tm[5]:02d}"
            )
            if not self.era.iso_ms:
                self._ts_text += self._tz_suffix
            self._ts_sec = sec
        if self.era.iso_ms:
            return f"{self._ts_text}.{int((t - sec) * 1000):03d}{self._tz_suffix}"
        return self._ts_text

    def _duration(self, size: int, result: str, timeout: bool) -> float:
        """Seconds from start to finish: latency plus size over a lognormal bandwidth
        (median ~3 MB/s); cancels and failures have their own spread."""
        rnd = self.rng.random
        if result == "success":
            return min(600.0, exp(-1.8 + 0.8 * _NORMAL[int(rnd() * _NQ)])
                       + size * exp(-15.0 - 0.7 * _NORMAL[int(rnd() * _NQ)]))
        if result == "canceled":
            return min(600.0, exp(0.9 * _NORMAL[int(rnd() * _NQ)]))
        if timeout:
            return 10.0 + rnd() * 50.0
        return min(600.0, exp(-0.5 + 1.2 * _NORMAL[int(rnd() * _NQ)]))

    def _era_errors(self, table: tuple[_Err, ...]) -> tuple[list[float], list[_Err]]:
        e = self.era
        rows = [
            row for row in table
            if row[4] is None
            or (row[4] == "old" and e.old_verification)
            or (row[4] == "hashstore" and e.snake)
        ]
        return _cumulative([r[0] for r in rows]), rows

    def _arrive(self, t: float, out: list) -> None:
        """A new transfer at time t: decide everything now, write its started line, schedule
        its finish. The hot path of the generator, hence the inlined helpers."""
        rng = self.rng
        rnd = rng.random
        e = self.era
        action = ACTIONS[bisect(self._action_cum, rnd())]
        upload, ok, ok_cancel, p_full = _ACTION_INFO[action]
        sat_i = -1
        piece = ""
        if not upload:
            r = rnd()
            if action == "GET" and r < 0.10:
                piece, sat_i = self._hot[int(64 * rnd() ** 2)]
            elif self._recent and r < (0.25 if action == "GET" else 0.5):
                piece, sat_i = self._recent[int(rnd() * len(self._recent))]
        if sat_i < 0:
            raw = rng.randbytes(52)  # inlined _piece_id()
            piece = (raw[:51].translate(_B32) + raw[51:].translate(_B32_LAST)).decode()
            sat_i = bisect(self._sat_cum, rnd())
        remote = f"{self._ips[int(rnd() * _IP_POOL)]}:{1024 + int(rnd() * 64511)}"
        # inlined _size(): (offset, size)
        offset = 0
        if action == "GET_AUDIT":
            offset, size = int(rnd() * (FULL_PIECE // 256)) * 256, 256
        else:
            size = FULL_PIECE if rnd() < p_full else _SIZES[int(rnd() * _NQ)]
            if action == "GET" and rnd() < 0.25:
                offset = int(rnd() * size) // 256 * 256
                size = max(256, size - offset)
        r = rnd()
        error = None
        if r < ok:
            result = "success"  # inlined _duration()
            when = t + min(600.0, exp(-1.8 + 0.8 * _NORMAL[int(rnd() * _NQ)])
                           + size * exp(-15.0 - 0.7 * _NORMAL[int(rnd() * _NQ)]))
        elif r < ok_cancel:
            result = "canceled"
            when = t + min(600.0, exp(0.9 * _NORMAL[int(rnd() * _NQ)]))
        else:
            result = "failed"
            cum, rows = self._errors[action]
            error = rows[bisect(cum, rnd())]
            timeout = "timed out" in error[1] or "deadline" in error[1]
            when = t + self._duration(size, result, timeout)
        head = self._head + piece + self._post[sat_i][action]
        tr = [action, sat_i, piece, remote, offset, size, result, error, head]
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, tr))
        if self.started:
            ts = self._ts(t)
            if upload:
                self._avail -= size
                fields = f'{head}{self._p_remote}{remote}{self._p_avail}{self._avail}}}'
                msg = "upload started"
            else:
                fields = (
                    f"{head}{self._p_offset}{offset}{self._p_size}{size}"
                    f'{self._p_remote}{remote}"}}'
                )
                msg = "download started"
            out.append((
                f"{ts}\t{e.started_level}\tpiecestore\t{msg}\t{fields}\n",
                (e.started_level, action, "started", SATELLITES[sat_i][0]),
            ))
        if rnd() < self._p_other:
            fn = self._others[bisect(self._others_cum, rnd())][1]
            fn(t, out)

    def _finish(self, t: float, tr: list, out: list) -> None:
        action, sat_i, piece, remote, offset, size, result, error, head = tr
        e = self.era
        rnd = self.rng.random
        level = "INFO"
        extra = ""
        if action in UPLOADS:
            if result == "success":
                msg = "uploaded"
                got = size
                if len(self._recent) < 4096:
                    self._recent.append((piece, sat_i))
                else:
                    self._recent[int(rnd() * 4096)] = (piece, sat_i)
            else:
                got = int(rnd() * size) // 32768 * 32768
                msg = "upload canceled" if result == "canceled" else "upload failed"
            if error is not None:
                level = "ERROR"
                if error[3] == "eof" and e.quiet_upload_eof:
                    level = "DEBUG"
                    if not self.debug:
                        return  # invisible at log.level info
                elif error[3] == "disconnect" and e.disconnect_warn:
                    level = "WARN"
                extra = self._error_fields(error, remote)
            if e.upload_error_first:
                fields = f'{head}{extra}{self._p_size}{got}{self._p_remote}{remote}"}}'
            else:
                fields = f'{head}{self._p_remote}{remote}"{self._p_size}{got}{extra}}}'
        else:
            shown = size
            if result == "success":
                msg = "downloaded"
            elif result == "canceled":
                msg = "download canceled"
                sent = int(rnd() * size) // 256 * 256
                if e.download_sent_size:
                    shown = sent
                if e.race_lost and rnd() < 0.03:
                    msg = "download canceled (race lost or node shutdown)"
                elif e.cancel_reason:
                    text = _CANCEL_REASONS[bisect(self._reason_cum, rnd())][1]
                    if "{" in text:
                        text = text.format(sent=sent, size=size)
                    extra = f', "reason": "{text}"'
            else:
                msg = "download failed"
                level = "ERROR"
                if e.download_sent_size:
                    shown = 0 if rnd() < 0.6 else int(rnd() * size) // 256 * 256
                extra = self._error_fields(error, remote)
            fields = (
                f'{head}{self._p_offset}{offset}{self._p_size}{shown}'
                f'{self._p_remote}{remote}"{extra}}}'
            )
        out.append((
            f"{self._ts(t)}\t{level}\tpiecestore\t{msg}\t{fields}\n",
            (level, action, result, SATELLITES[sat_i][0]),
        ))

    def _error_fields(self, error: _Err, remote: str) -> str:
        text = error[1]
        if "{" in text:
            text = text.format(local=LOCAL_ADDR, remote=remote,
                               n=self.rng.getrandbits(31))
        frames = "\n\t".join(error[2]).format(n=2, line=300)
        return (
            f', "error": {json.dumps(text)}, "errorVerbose": '
            f'{json.dumps(text + chr(10) + chr(9) + frames)}'
        )

    # ---- other events (reference §2) -------------------------------------------------------

    def _key(self, title: str, snake: str) -> str:
        return snake if self.era.snake else title

    def _fields(self, *pairs: tuple[str, object], process: str = "storagenode") -> str:
        return json.dumps({self.era.process_key: process, **dict(pairs)})

    def _line(self, t: float, level: str, logger: str | None, msg: str, fields: str,
              event: str | None, sat: str | None = None) -> tuple[str, tuple]:
        ts = self._ts(t)
        if logger is None:
            line = f"{ts}\t{level}\t{msg}\t{fields}\n"
        else:
            line = f"{ts}\t{level}\t{logger}\t{msg}\t{fields}\n"
        return line, (level, "event", event, sat)

    def _sat(self) -> tuple[str, str]:
        return SATELLITES[bisect(self._sat_cum, self.rng.random())]

    @staticmethod
    def _go_duration(seconds: float) -> str:
        """Go's time.Duration.String() (e.g. "1m37.535505102s", "2h3m4.5s", "245.1ms")."""
        if seconds < 1:
            return f"{seconds * 1000:.6f}".rstrip("0").rstrip(".") + "ms"
        hours, rest = divmod(seconds, 3600.0)
        minutes, sec = divmod(rest, 60.0)
        text = f"{sec:.9f}".rstrip("0").rstrip(".") + "s"
        if hours >= 1:
            return f"{int(hours)}h{int(minutes)}m{text}"
        if minutes >= 1:
            return f"{int(minutes)}m{text}"
        return text

    def _ev_orders(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("satelliteID", "satellite_id"), sat),
                              ("count", 1 + int(self.rng.random() * 400)))
        out.append(self._line(t, "INFO", "orders", "finished", fields, "orders_settled", short))

    def _ev_rejected(self, t, out):
        limit = 40
        fields = self._fields((self._key("live requests", "live_requests"), limit + 1),
                              (self._key("requestLimit", "request_limit"), limit))
        out.append(self._line(t, self.era.rejected_level, "piecestore",
                              "upload rejected, too many requests", fields, "upload_rejected"))

    def _ev_db_locked(self, t, out):
        if self.rng.random() < 0.6:
            logger, msg, text, frame = (
                "piecestore", "failed to add bandwidth usage", "bandwidthdb: database is locked",
                "storj.io/storj/storagenode/storagenodedb.(*bandwidthDB).Add:76",
            )
        else:
            logger, msg, text, frame = (
                "piecestore:cache", "error persisting cache totals to the database ",
                "piece space used: database is locked",
                "storj.io/storj/storagenode/storagenodedb.(*pieceSpaceUsedDB).UpdatePieceTotals"
                "ForAllSatellites:188",
            )
        fields = self._fields(("error", text), ("errorVerbose", f"{text}\n\t{frame}"))
        out.append(self._line(t, "ERROR", logger, msg, fields, "database_locked"))

    def _ev_ping_failed(self, t, out):
        short, sat = self._sat()
        text = (
            "ping satellite: failed to dial storage node (ID: 12bYyU4sQqJw8rVsT2VzQK2nFdN9t1K"
            "9b7s4eH3YkzW2kX8Pq1) at address node.example.net:28967: \"rpc: tcp connector "
            "failed: rpc: dial tcp 198.51.100.23:28967: connect: connection timed out\""
        )
        fields = self._fields(
            (self._key("Satellite ID", "satellite_id"), sat), ("attempts", 1 + int(
                self.rng.random() * 5)),
            ("error", text),
            ("errorVerbose", text + "\n\tstorj.io/storj/storagenode/contact.(*Service)."
             "pingSatelliteOnce:209\n\tstorj.io/storj/storagenode/contact.(*Service)."
             "pingSatellite:161"),
        )
        out.append(self._line(t, "ERROR", "contact:service", "ping satellite failed ", fields,
                              "ping_satellite_failed", short))

    def _ev_quic(self, t, out):
        short, sat = self._sat()
        text = (
            'contact: failed to ping storage node using QUIC, your node indicated error code: 0, '
            '"rpc: quic: timeout: no recent network activity"'
        )
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat),
                              (self._key("Error", "error"), text))
        out.append(self._line(
            t, "WARN", "contact:service",
            "Your node is still considered to be online but encountered an error.", fields,
            "quic_misconfigured", short))

    def _creation(self, t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t - 2 * _DAY)) + ".123456789Z"

    def _ev_bloomfilter(self, t, out):
        short, sat = self._sat()
        fields = self._fields(("satellite", sat), ("creation", self._creation(t)))
        out.append(self._line(t, "INFO", "piecestore", "New bloomfilter is received", fields,
                              "bloomfilter_received", short))

    def _ev_retain_prepared(self, t, out):
        short, sat = self._sat()
        fields = self._fields(
            (self._key("Created Before", "created_before"), self._creation(t)),
            (self._key("Filter Size", "filter_size"), 1 + int(self.rng.random() * 4_100_000)),
            (self._key("Satellite ID", "satellite_id"), sat),
        )
        out.append(self._line(t, "INFO", "retain", "Prepared to run a Retain request.", fields,
                              "retain_started", short))

    def _ev_retain_moved(self, t, out):
        short, sat = self._sat()
        rnd = self.rng.random
        deleted = int(rnd() * 50_000)
        if self.era.retain_fields == "old":
            fields = self._fields(("num deleted", deleted), ("Retain Status", "enabled"))
        else:
            snake = self.era.retain_fields == "snake"
            names = (("deleted_pieces", "failed_to_delete", "pieces_failed_to_read",
                      "pieces_count", "satellite_id", "duration", "retain_status") if snake
                     else ("Deleted pieces", "Failed to delete", "Pieces failed to read",
                           "Pieces count", "Satellite ID", "Duration", "Retain Status"))
            values = (deleted, 0, 0, deleted + int(rnd() * 3_000_000), sat,
                      self._go_duration(60 + rnd() * 7200), "enabled")
            fields = self._fields(*zip(names, values, strict=True))
        out.append(self._line(t, "INFO", "retain", "Moved pieces to trash during retain",
                              fields, "retain_finished", short))

    def _ev_trash_started(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat))
        out.append(self._line(t, "INFO", "pieces:trash", "emptying trash started", fields,
                              "trash_empty_started", short))

    def _ev_trash_finished(self, t, out):
        short, sat = self._sat()
        fields = self._fields((self._key("Satellite ID", "satellite_id"), sat),
                              ("elapsed", self._go_duration(self.rng.random() * 900)))
        out.append(self._line(t, "INFO", "pieces:trash", "emptying trash finished", fields,
                              "trash_empty_finished", short))

    def _ev_usedspace_started(self, t, out):
        short, sat = self._sat()
        msg = "used-space-filewalker started"
        if self.era.filewalker == "lazy":  # the subprocess repeats the `process` key
            p = self.era.process_key
            fields = (f'{{"{p}": "storagenode", "satelliteID": "{sat}", '
                      f'"process": "storagenode"}}')
            logger = "lazyfilewalker.used-space-filewalker.subprocess"
        else:
            fields = self._fields((self._key("Satellite ID", "satellite_id"), sat))
            logger = "pieces"
        out.append(self._line(t, "INFO", logger, msg, fields,
                              "used_space_filewalker_started", short))

    def _ev_usedspace_completed(self, t, out):
        short, sat = self._sat()
        rnd = self.rng.random
        total = int(rnd() * 4e12)
        msg = "used-space-filewalker completed"
        if self.era.filewalker == "lazy":
            p = self.era.process_key
            fields = (f'{{"{p}": "storagenode", "satelliteID": "{sat}", "process": '
                      f'"storagenode", "piecesTotal": {total}, '
                      f'"piecesContentSize": {total - total // 200}}}')
            logger = "lazyfilewalker.used-space-filewalker.subprocess"
        else:
            snake = self.era.snake
            fields = self._fields(
                (self._key("Satellite ID", "satellite_id"), sat),
                (self._key("Lazy File Walker", "lazy_file_walker"), True),
                ("total_pieces_size" if snake else "Total Pieces Size", total),
                ("total_pieces_content_size" if snake else "Total Pieces Content Size",
                 total - total // 200),
                ("total_pieces_count" if snake else "Total Pieces Count", total // 700_000),
                (self._key("Duration", "duration"), self._go_duration(60 + rnd() * 20000)),
            )
            logger = "pieces"
        out.append(self._line(t, "INFO", logger, msg, fields,
                              "used_space_filewalker_completed", short))

    def _ev_updater(self, t, out):
        """The updater's check: three lines without a logger column."""
        k = self._key
        proc = "storagenode-updater"
        out.append(self._line(t, "INFO", None, "Downloading versions.", self._fields(
            (k("Server Address", "server_address"), "https://version.storj.io"), process=proc),
            None))
        service = "storagenode" if self.rng.random() < 0.5 else "storagenode-updater"
        out.append(self._line(t, "INFO", None, "Current binary version", self._fields(
            (k("Service", "service"), service), (k("Version", "version"), self.era.version),
            process=proc), None))
        out.append(self._line(t, "INFO", None, "Version is up to date", self._fields(
            (k("Service", "service"), service), process=proc), "version_up_to_date"))


def write_file(
    path: str,
    count: int,
    era: str = "v1.146",
    seed: int = 42,
    started: bool = True,
    start: float | None = None,
    remote_networks: Sequence[str] | None = None,
) -> LogGenerator:
    """Write `count` lines to `path` ("-" for stdout); returns the generator (its counts)."""
    gen = LogGenerator(era=era, seed=seed, started=started, remote_networks=remote_networks)
    it = gen.lines(count, start)
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        chunk: list[str] = []
        for line in it:
            chunk.append(line)
            if len(chunk) >= 8192:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return gen


def counts_json(gen: LogGenerator) -> dict:
    """The generator's counts in a JSON-friendly shape (used by bench/run.py)."""
    return {
        "lines": gen.line_counts(),
        "transfers": {f"{a}/{r}": n for (a, r), n in sorted(gen.transfer_counts().items())},
        "transfers_by_satellite": {
            f"{s}/{a}/{r}": n
            for (s, a, r), n in sorted(gen.transfer_counts(by_satellite=True).items())
        },
        "started": gen.started_counts(),
        "events": gen.event_counts(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m exporter.loggen",
                                 description="Write a synthetic storagenode log.")
    ap.add_argument("out", help='output file, "-" for stdout')
    ap.add_argument("--era", default="v1.146", choices=sorted(ERAS))
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-started", dest="started", action="store_false",
                    help="leave out the `upload started` / `download started` lines")
    ap.add_argument("--start", type=float, default=None,
                    help="unix time of the first line (default: a date typical of the era)")
    ap.add_argument("--remote-network", action="append", default=None, metavar="CIDR",
                    help="draw remote addresses from this IPv4 network (repeatable)")
    ap.add_argument("--counts", metavar="FILE", help="also write the line counts as JSON")
    args = ap.parse_args(argv)
    gen = write_file(args.out, args.lines, era=args.era, seed=args.seed, started=args.started,
                     start=args.start, remote_networks=args.remote_network)
    if args.counts:
        with open(args.counts, "w", encoding="utf-8") as f:
            json.dump(counts_json(gen), f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
