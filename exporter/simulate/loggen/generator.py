"""The simulated node: transfers arrive as a Poisson process, each finishes after its own
duration, so several are in flight and their lines interleave (the hot path of the generator)."""

from __future__ import annotations

import heapq
import ipaddress
import json
import random
import time
from bisect import bisect
from collections import _count_elements  # the C helper behind Counter.update
from collections.abc import Iterator, Sequence
from math import exp, log
from operator import itemgetter
from statistics import NormalDist

from exporter.simulate.loggen.addresses import _public
from exporter.simulate.loggen.eras import (
    _ACTION_INFO,
    ACTION_WEIGHTS,
    ACTIONS,
    ERAS,
    FULL_PIECE,
    LOCAL_ADDR,
    OTHER_SHARE,
    SATELLITE_WEIGHTS,
    SATELLITES,
    UPLOADS,
    _cumulative,
)
from exporter.simulate.loggen.errors import (
    _AUDIT_ERRORS,
    _CANCEL_REASONS,
    _GET_ERRORS,
    _REPAIR_ERRORS,
    _UPLOAD_ERRORS,
    _Err,
)
from exporter.simulate.loggen.events import OtherEvents
from exporter.simulate.loggen.hashstore import HashstoreEvents

_first, _second = itemgetter(0), itemgetter(1)
# Standard normal quantiles: a table lookup is ~5x cheaper than random.gauss().
_NQ = 4096
_NORMAL = [NormalDist().inv_cdf((i + 0.5) / _NQ) for i in range(_NQ)]
# Piece sizes below a full piece: log-uniform from 256 B to ~2.3 MB, multiples of 256.
_SIZES = [max(256, int(256 * 9060 ** ((i + 0.5) / _NQ)) // 256 * 256) for i in range(_NQ)]
_IP_POOL = 4096
_B32 = bytes.maketrans(bytes(range(256)), b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" * 8)
_B32_LAST = bytes.maketrans(bytes(range(256)), b"AQ" * 128)


class LogGenerator(OtherEvents, HashstoreEvents):
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
        peers: int = _IP_POOL,
    ) -> None:
        if era not in ERAS:
            raise ValueError(f"unknown era {era!r}; known: {', '.join(ERAS)}")
        if peers < 1:
            raise ValueError(f"peers must be >= 1, got {peers}")
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
        # Clients: a pool of `peers` addresses, each seen again and again (ports are fresh).
        # Up to _IP_POOL drawn now; a bigger pool (the many-peer benchmark) is drawn as used,
        # so its memory grows with the peers actually seen.
        self._n_peers = peers
        self._ips = {i: self._ip() for i in range(min(peers, _IP_POOL))}
        transfer_lines = (1.0 if started else 0.0) + 1.0
        self._p_other = OTHER_SHARE / (1 - OTHER_SHARE) * transfer_lines / 1.2
        self._lines_per_arrival = transfer_lines / (1 - OTHER_SHARE)
        self._lambda = lines_per_second / self._lines_per_arrival
        self._hs_setup(seed, sum(w for w, _ in self._others))

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
        self._hs_shift(delta)

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
        peer = int(rnd() * self._n_peers)
        ip = self._ips.get(peer)
        if ip is None:
            ip = self._ips[peer] = self._ip()
        remote = f"{ip}:{1024 + int(rnd() * 64511)}"
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
        if t >= self._hs_next:  # hashstore/amnesty lines (v1.146+), their own random stream
            self._hashstore(t, out)

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

