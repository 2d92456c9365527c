"""Hashstore and amnesty lines of a snake_case-era node (v1.146+): compactions, their failures,
recovery after an unclean shutdown, amnesty reports of lost pieces. Mixed into LogGenerator.

Shapes as in tests/fixtures/logs/housekeeping-v1.162.log: storagenode/hashstore/store.go
(`beginning compaction` / `finished compaction` with the store's `stats`, marshalled compact
inside zap's fields, sizes as storj.io/common/memory.Size prints them; `unclean shutdown
detected: reconciling logs`, `mismatched log tail`, `reconciled log with invalid records`),
storagenode/hashstore/db.go (`compaction failed`), storagenode/contact/amnesty.go.

Rates: in the units of the other events' weights (generator.py, where retain reports weigh 3
and trash runs 4), a real node compacts each of its two stores per satellite about once a
day, so a compaction weighs 6; amnesty reports and unclean shutdowns are rarer. These events
draw from their own random stream and wait their own exponential time (at a rate tied to the
arrival rate, like the other events), so adding them changes no transfer line: with the same
seed the log is the one before plus these lines. A compaction's `finished` line comes
COMPRESS times its logged (realistic, minutes) duration after its `beginning` line, the way
the demo compresses a node's day, and a store compacts again a compressed day later at the
earliest (so a fresh demo shows compactions in its first minute, then about one a minute).
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect

from exporter.simulate.loggen.eras import SATELLITE_WEIGHTS, SATELLITES, Era, _cumulative

STORES = ("s0", "s1")
COMPACTION_WEIGHT, AMNESTY_WEIGHT, UNCLEAN_WEIGHT = 6.0, 1.0, 0.3
P_LOGS_DISK_FULL = 0.05  # of compactions
P_AMNESTY_DIAL_FAILS = 0.1
COMPRESS = 1 / 200
COOLDOWN = 86400 * COMPRESS  # a store compacts about once a (compressed) day
_DAY = 86400
_GIB = 1 << 30
_MINIMUM_DATA_DAY = 20000  # days since 1970 in the log file names (2024-10-04)


def memory_size(n: int) -> str:
    """storj.io/common/memory.Size.String(): base 10 when n has more zeros in base 1000 than
    in 1024, else base 2; one decimal from 2/3 of a unit up (e.g. "20.0 GiB", "0 B")."""
    if n == 0:
        return "0 B"

    def zeros(base: int) -> int:
        count, m = 0, abs(n)
        while m and m % base == 0:
            m //= base
            count += 1
        return count

    step, units = (1000, ("KB", "MB", "GB", "TB", "PB", "EB")) if zeros(1000) > zeros(1024) \
        else (1024, ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"))
    for power in range(len(units), 0, -1):
        unit = step ** power
        if abs(n) >= unit * 2 // 3:
            return f"{n / unit:.1f} {units[power - 1]}"
    return f"{n} B"


class _Store:
    """One hashstore (a satellite's s0 or s1): what its `stats` report, cumulative."""

    __slots__ = ("busy", "compactions", "duration", "finished_at", "last_compact", "logs",
                 "logs_len", "logs_rewritten", "reclaimable", "reclaimed", "records",
                 "rewritten")

    def __init__(self, rng: random.Random, share: float) -> None:
        self.logs = 40 + int(rng.random() * 200)
        self.logs_len = int(share * 2.5e12 * (0.8 + 0.4 * rng.random()))
        self.records = self.logs_len // 260_000
        self.reclaimable = int(self.logs_len * 0.03 * rng.random())
        self.compactions = int(rng.random() * 40)
        self.reclaimed = int(self.compactions * 8 * _GIB * rng.random())
        self.rewritten = int(self.reclaimed * 0.6)
        self.logs_rewritten = self.compactions * 3
        self.last_compact = 0
        self.busy = False  # compacting: its `finished compaction` line is pending
        self.duration = 0.0  # of the compaction under way, as its finished line logs it
        self.finished_at = -math.inf  # simulated time of its last finished line

    def stats(self, today: int) -> str:
        """The `stats` object as Go's encoding/json writes it (compact, struct order)."""
        frac = self.reclaimable / self.logs_len if self.logs_len else 0.0
        ttl = max(1, self.logs // 40)
        return json.dumps({
            "NumLogs": self.logs, "LenLogs": memory_size(self.logs_len),
            "NumLogsTTL": ttl, "LenLogsTTL": memory_size(ttl * 700 * (1 << 20)),
            "SetPercent": round(min(0.99, max(0.01, 0.97 - frac)), 2),
            "TrashPercent": round(min(0.99, max(0.01, frac)), 2), "TTLPercent": 0.01,
            "Compacting": False, "Compactions": self.compactions, "Today": today,
            "LastCompact": self.last_compact or today - 1,
            "LogsRewritten": self.logs_rewritten, "DataRewritten": memory_size(self.rewritten),
            "DataReclaimed": memory_size(self.reclaimed),
            "DataReclaimable": memory_size(self.reclaimable),
            "Table": {"NumSet": self.records, "LenSet": memory_size(self.logs_len)},
            "LogsSkipped": 0, "LogsMatched": self.logs, "LogsMismatched": 0,
            "FreeRequired": "0 B",
            "Compaction": {"Elapsed": 0, "Remaining": 0, "TotalRecords": 0,
                           "ProcessedRecords": 0},
        }, separators=(",", ":"))


class HashstoreEvents:
    """Hashstore/amnesty lines; needs the generator's `era`, `_lambda`, `_p_other` and the
    OtherEvents helpers (`_line`, `_fields`, `_go_duration`)."""

    era: Era
    _lambda: float
    _p_other: float
    _counts: dict[tuple, int]

    def _hs_setup(self, seed: int, other_weight: float) -> None:
        """Called once the generator's rates are known; no hashstore before snake_case."""
        self._hs_next = math.inf  # the arrival time from which `_hashstore` has work
        if not self.era.snake:
            return
        self._hs_next = -math.inf  # the first arrival starts the clock
        self._hs_rng = rng = random.Random(f"{seed}/hashstore")
        # of every arrival, the share that brings a hashstore event (as `_p_other` for others)
        self._hs_share = self._p_other / other_weight
        self._hs_kinds = ((COMPACTION_WEIGHT, self._hs_compaction),
                          (AMNESTY_WEIGHT, self._hs_amnesty),
                          (UNCLEAN_WEIGHT, self._hs_unclean))
        self._hs_cum = _cumulative([w for w, _ in self._hs_kinds])
        self._hs_weight = sum(w for w, _ in self._hs_kinds)
        self._hs_sat_cum = _cumulative(SATELLITE_WEIGHTS)
        shares = [w / sum(SATELLITE_WEIGHTS) for w in SATELLITE_WEIGHTS]
        self._hs_stores = {(i, s): _Store(rng, shares[i] / 2)
                           for i in range(len(SATELLITES)) for s in STORES}
        self._hs_pending: list[tuple[float, int, str]] = []  # (when, satellite, store)
        self._hs_new = math.inf

    def _hs_shift(self, delta: float) -> None:
        """The clock jumped: the waits move with it."""
        if self.era.snake:
            self._hs_new += delta
            self._hs_pending = [(w + delta, i, s) for w, i, s in self._hs_pending]
            self._hs_next = self._hs_due()

    def _hashstore(self, t: float, out: list) -> None:
        """Due at `t` (an arrival at or after `_hs_next`): finished compactions, a new event."""
        if self._hs_new == math.inf:  # the first arrival starts the clock
            self._hs_new = t + self._hs_wait()
        pending = self._hs_pending
        while pending and pending[0][0] <= t:
            _, sat_i, store = pending.pop(0)
            self._hs_finish(t, sat_i, store, out)
        if self._hs_new <= t:
            fn = self._hs_kinds[bisect(self._hs_cum, self._hs_rng.random())][1]
            fn(t, out)
            self._hs_new = t + self._hs_wait()
        self._hs_next = self._hs_due()

    def _hs_due(self) -> float:
        pending = self._hs_pending
        return min(self._hs_new, pending[0][0]) if pending else self._hs_new

    def _hs_wait(self) -> float:
        rate = self._lambda * self._hs_share * self._hs_weight
        return self._hs_rng.expovariate(rate) if rate > 0 else math.inf

    def hashstore_counts(self) -> dict[tuple[str, ...], int]:
        """What the hashstore/amnesty lines handed out so far count, keyed as the exporter's
        housekeeping metrics: ("compactions", satellite short name, store, result),
        ("lost_pieces", satellite), ("lost_pieces_failures", satellite). A line carries its
        key in the last place of its tag (where transfers have the satellite), so only the
        lines handed out count, as for the generator's other counts."""
        out: dict[tuple[str, ...], int] = {}
        for (_, kind, _, key), n in self._counts.items():
            if kind == "event" and isinstance(key, tuple):
                if key[0] == "lost_pieces":  # ("lost_pieces", satellite, piece count)
                    key, n = key[:2], n * key[2]
                out[key] = out.get(key, 0) + n
        return out

    def _hs_sat(self) -> int:
        return bisect(self._hs_sat_cum, self._hs_rng.random())

    def _hs_head(self, sat_i: int, store: str | None = None) -> str:
        """`{"process": ..., "satellite": ..., ["store": ...]` without the closing brace."""
        pairs = [("satellite", SATELLITES[sat_i][1])]
        if store is not None:
            pairs.append(("store", store))
        return self._fields(*pairs)[:-1]

    def _hs_compaction(self, t: float, out: list) -> None:
        rng = self._hs_rng
        sat_i, store = self._hs_sat(), STORES[int(rng.random() * len(STORES))]
        st = self._hs_stores[(sat_i, store)]
        if st.busy or t - st.finished_at < COOLDOWN:
            return  # that store is compacting, or compacted less than a compressed day ago
        st.busy = True
        today = int(t // _DAY)
        out.append(self._line(t, "INFO", "hashstore", "beginning compaction",
                              f'{self._hs_head(sat_i, store)}, "stats": {st.stats(today)}}}',
                              None, SATELLITES[sat_i][0]))
        seconds = min(4 * 3600.0, max(20.0, math.exp(7.3 + 0.8 * rng.gauss())))
        self._hs_pending.append((t + seconds * COMPRESS, sat_i, store))
        self._hs_pending.sort()
        st.duration = seconds

    def _hs_finish(self, t: float, sat_i: int, store: str, out: list) -> None:
        rng = self._hs_rng
        st = self._hs_stores[(sat_i, store)]
        short, sat = SATELLITES[sat_i]
        seconds, st.busy, st.finished_at = st.duration, False, t
        today = int(t // _DAY)
        head = f'{self._hs_head(sat_i, store)}, "duration": "{self._go_duration(seconds)}"'
        if rng.random() < P_LOGS_DISK_FULL:
            need = (2 + int(rng.random() * 6)) * _GIB
            error = (f"hashstore: not enough free space on logs disk to compact: {need} "
                     f"required, {need // 2} free")
            out.append(self._line(t, "INFO", "hashstore", "finished compaction",
                                  f'{head}, "error": {json.dumps(error)}, '
                                  f'"stats": {st.stats(today)}}}', "compaction_finished",
                                  ("compactions", short, store, "failed")))
            out.append(self._line(t, "ERROR", "hashstore", "compaction failed",
                                  self._fields(("satellite", sat), ("error", error)),
                                  "compaction_failed", short))
            return
        reclaimed = int(st.reclaimable * (0.5 + 0.5 * rng.random()))
        rewritten = int(reclaimed * (0.2 + 0.8 * rng.random()))
        st.reclaimed += reclaimed
        st.rewritten += rewritten
        st.reclaimable = max(0, st.reclaimable - reclaimed) + int(st.logs_len * 0.01
                                                                  * rng.random())
        st.logs_rewritten += 1 + rewritten // (1 << 30)
        st.compactions += 1
        st.last_compact = today
        out.append(self._line(t, "INFO", "hashstore", "finished compaction",
                              f'{head}, "stats": {st.stats(today)}}}', "compaction_finished",
                              ("compactions", short, store, "success")))

    def _hs_amnesty(self, t: float, out: list) -> None:
        rng = self._hs_rng
        sat_i = self._hs_sat()
        short, sat = SATELLITES[sat_i]
        count = 1 + int(rng.random() ** 3 * 60)
        out.append(self._line(t, "INFO", "contact:amnesty", "sending amnesty batch to satellite",
                              self._fields(("satellite", sat), ("piece_count", count)), None,
                              ("lost_pieces", short, count)))
        if rng.random() < P_AMNESTY_DIAL_FAILS:
            out.append(self._line(t, "ERROR", "contact:amnesty",
                                  "failed to dial satellite for amnesty report",
                                  self._fields(("satellite", sat), ("piece_count", count),
                                               ("error", "rpc: dial tcp: i/o timeout")),
                                  None, ("lost_pieces_failures", short)))

    def _hs_unclean(self, t: float, out: list) -> None:
        """A store opened after a crash: reconciled, sometimes with a bad log tail."""
        rng = self._hs_rng
        sat_i, store = self._hs_sat(), STORES[int(rng.random() * len(STORES))]
        short, sat = SATELLITES[sat_i]
        head = self._hs_head(sat_i, store)
        out.append(self._line(t, "INFO", "hashstore",
                              "unclean shutdown detected: reconciling logs", head + "}",
                              "hashstore_unclean_shutdown", short))
        if rng.random() < 0.5:
            return
        log_id = 1 + int(rng.random() * self._hs_stores[(sat_i, store)].logs)
        day = _MINIMUM_DATA_DAY + int(t // _DAY - _MINIMUM_DATA_DAY) % 600
        path = f"/storage/hashstore/{sat}/{store}/{log_id % 256:02x}/log-{log_id:016x}-{day:08x}"
        tail = 100 + int(rng.random() * 10_000_000)
        cut = int(tail * (0.9 + 0.1 * rng.random()))
        out.append(self._line(t, "WARN", "hashstore", "mismatched log tail",
                              f'{head}, "id": {log_id}, "path": "{path}", '
                              f'"table": {{"Offset": {tail}}}, "log": {{"Offset": {cut}}}}}',
                              "hashstore_log_tail_mismatch", short))
        out.append(self._line(t, "WARN", "hashstore", "reconciled log with invalid records",
                              f'{head}, "id": {log_id}, "path": "{path}", '
                              f'"invalid_count": {1 + int(rng.random() * 40)}}}',
                              "hashstore_invalid_records", short))
