"""Sliding-window geo buckets of one node: transfers and bytes per (action, geohash, country).

The window is a ring of ``slots`` time slots (default 60 x 10 s for 10 min). ``record`` adds to
the current slot only; when a record or a scrape falls into a later slot, the current slot is
folded into running window totals and slots older than the window are subtracted and dropped,
so expiry costs O(keys of one slot) every slot, never a scan per line. A transfer stays visible
for between ``window - slot`` and ``window`` seconds.

Cardinality: at most ``max_keys`` distinct (action, geohash, country) keys per node in the window
(default 1000); transfers of further keys go to the per-action overflow key (action, "", "other")
and are counted in ``overflowed``. So a node exports <= max_keys + 5 series per metric.

Threads: one writer (NodeState calls ``record`` while holding its lock), any number of readers
(``snapshot`` at scrape time). ``record`` takes no lock: every slot change publishes an immutable
view (closed totals, ring) in one attribute store, and the reader copies the live slot with
``list(dict.items())``, which is atomic; the reader never mutates. A lock per line would cost
~0.3 us, a third of the budget.

Docker userland proxy: with Docker's default ``userland-proxy`` every connection published with
``-p`` seems to come from the bridge gateway (172.17.0.1), so all traffic lands in the "private"
bucket. When a node's window has >= ``proxy_min_transfers`` transfers and one private address
accounts for >= ``proxy_ratio`` of them, ``docker_proxy_suspected`` is True and one warning is
logged (and one info line when traffic looks public again).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from .locator import GeoLocator

log = logging.getLogger(__name__)

OTHER = "other"
#: distinct private addresses tracked per slot (the rest are summed as "*"); also
#: MAX_PRIVATE_HOSTS in exporter/hotpath/geo.c
_MAX_PRIVATE_HOSTS = 32


class GeoRecorder:
    """Per-node geo window, fed by NodeState for every finished transfer line."""

    def __init__(
        self,
        locator: GeoLocator,
        window_seconds: float = 600,
        clock: Callable[[], float] = time.time,
        *,
        slots: int = 60,
        max_keys: int = 1000,
        node: str = "",
        proxy_min_transfers: int = 20,
        proxy_ratio: float = 0.9,
    ) -> None:
        if window_seconds <= 0 or slots < 1 or max_keys < 1:
            raise ValueError("window_seconds, slots and max_keys must be positive")
        self.locator = locator
        self.window_seconds = float(window_seconds)
        self.slots = slots
        self.slot_seconds = self.window_seconds / slots
        self.max_keys = max_keys
        self.node = node
        self.proxy_min_transfers = proxy_min_transfers
        self.proxy_ratio = proxy_ratio
        self._clock = clock
        # writer-owned: the current slot (entries are [transfers, bytes] lists, mutated in place)
        self._cur_idx: int | None = None
        self._slot_end = -math.inf
        self._cur: dict[tuple[str, str, str], list[int]] = {}
        self._cur_new = 0  # keys of the current slot that are not in _closed
        self._cur_private: dict[str, int] = {}  # private address -> transfers
        # closed slots still in the window, oldest first: (idx, counts, private, transfers);
        # a closed slot is never mutated again
        self._ring: deque[tuple[int, dict, dict, int]] = deque()
        # sums over the ring; replaced (copy on write) at every slot change, never mutated
        self._closed: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._closed_private: dict[str, int] = {}
        self._closed_total = 0
        self._published: tuple = (None, self._cur, self._cur_private, (), {}, {}, 0)
        #: transfers that went to an overflow key because max_keys was reached
        self.overflowed = 0
        self._proxy_logged = False

    # ---- hot path (writer) ---------------------------------------------------------------

    def record(self, action: str, remote_address: str, size: int, now: float | None = None) -> None:
        """Count one finished transfer; remote_address is "ip:port", "[v6]:port" or "".

        exporter/hotpath/geo.c does the common cases itself (time within the slot, the host's
        bucket in the locator's network answers or host cache, or a private IPv4 host; the
        key already in ``_cur``: add to that entry) and calls this for everything else;
        change both together (tests/test_hotpath_geo.py compares them)."""
        if now is None:
            now = self._clock()
        if now >= self._slot_end:
            self._advance(now)
        host = remote_address.rpartition(":")[0] or remote_address
        bucket = self.locator.cache.get(host)
        if bucket is None:
            bucket = self.locator.lookup_miss(host)
        key = bucket.get(action)
        if key is None:  # private, odd address format, or an action not seen yet
            key = self._slow_key(bucket, action, remote_address)
        entry = self._cur.get(key)
        if entry is None:
            self._new_key(key, size)
        else:
            entry[0] += 1
            entry[1] += size

    def _slow_key(self, bucket, action: str, remote_address: str) -> tuple[str, str, str]:
        locator = self.locator
        if bucket is locator.ambiguous:
            bucket = locator.lookup_address(remote_address)
        if bucket is locator.private:
            host = remote_address.rpartition(":")[0] or remote_address
            if host.count(":") > 1 and not host.startswith("["):
                host = remote_address  # bare IPv6 without port
            hosts = self._cur_private
            if host in hosts or len(hosts) < _MAX_PRIVATE_HOSTS:
                hosts[host] = hosts.get(host, 0) + 1
            else:
                hosts["*"] = hosts.get("*", 0) + 1
        key = bucket.get(action)
        if key is None:
            key = (action, bucket.geohash, bucket.country)
            if bucket is not locator.ambiguous and bucket is not locator.private:
                bucket[action] = key  # private stays empty: its traffic always comes here
        return key

    def _new_key(self, key: tuple[str, str, str], size: int) -> None:
        closed = self._closed
        if key not in closed:
            if len(closed) + self._cur_new >= self.max_keys:
                self.overflowed += 1
                key = (key[0], "", OTHER)  # overflow keys are exempt from the cap
                entry = self._cur.get(key)
                if entry is not None:
                    entry[0] += 1
                    entry[1] += size
                    return
            if key not in closed:
                self._cur_new += 1
        self._cur[key] = [1, size]

    # ---- slots (writer) -----------------------------------------------------------------

    def _advance(self, now: float) -> None:
        idx = int(now // self.slot_seconds)
        cur_idx = self._cur_idx
        if cur_idx is not None and idx <= cur_idx:
            # float rounding at a slot edge, or the clock went back: stay in this slot
            self._slot_end = math.nextafter(max(now, self._slot_end), math.inf)
            return
        closed = self._closed
        private = self._closed_private
        total = self._closed_total
        ring = self._ring
        if self._cur:
            closed = dict(closed)
            private = dict(private)
            slot_total = 0
            for key, (n, b) in self._cur.items():
                slot_total += n
                old = closed.get(key)
                closed[key] = (n, b) if old is None else (old[0] + n, old[1] + b)
            _add(private, self._cur_private)
            total += slot_total
            ring.append((cur_idx, self._cur, self._cur_private, slot_total))
            self._cur, self._cur_private, self._cur_new = {}, {}, 0
        oldest = idx - self.slots  # slots <= oldest are out of the window
        if ring and ring[0][0] <= oldest:
            if closed is self._closed:
                closed, private = dict(closed), dict(private)
            while ring and ring[0][0] <= oldest:
                _, counts, slot_private, slot_total = ring.popleft()
                _sub_counts(closed, counts)
                _sub(private, slot_private)
                total -= slot_total
        self._closed, self._closed_private, self._closed_total = closed, private, total
        self._cur_idx = idx
        self._slot_end = (idx + 1) * self.slot_seconds
        if self._slot_end <= now:  # float rounding
            self._slot_end = math.nextafter(now, math.inf)
        self._published = (idx, self._cur, self._cur_private, tuple(ring), closed, private, total)
        self.locator.maybe_reload()
        self._log_proxy(*_proxy_stats(total, private, self._cur, self._cur_private))

    def _log_proxy(self, total: int, private: int, top: tuple[str, int]) -> None:
        """One warning when the Docker proxy pattern appears, one info line when it goes."""
        if total < self.proxy_min_transfers:
            return  # no evidence either way; keep what was logged
        suspected = top[1] >= self.proxy_ratio * total
        if suspected and not self._proxy_logged:
            log.warning(
                "node %s: %d of %d transfers in the last %g min come from the private address "
                "%s. With Docker's userland proxy every remote address is the bridge gateway "
                "(172.17.0.1), so peers cannot be geolocated: run the storagenode container "
                'with host networking (--network host) or set "userland-proxy": false in '
                "/etc/docker/daemon.json.",
                self.node or "?",
                top[1],
                total,
                self.window_seconds / 60,
                top[0],
            )
        elif not suspected and self._proxy_logged:
            log.info(
                "node %s: remote addresses look public again (%d of %d private)",
                self.node or "?",
                private,
                total,
            )
        self._proxy_logged = suspected

    # ---- reading (any thread) -------------------------------------------------------------

    def snapshot(self, now: float | None = None):
        """The window as of ``now``: (counts, private_ratio, proxy_suspected), where counts maps
        (action, geohash, country) -> (transfers, bytes). Mutates nothing."""
        if now is None:
            now = self._clock()
        oldest = int(now // self.slot_seconds) - self.slots
        cur_idx, cur, cur_private, ring, closed, private, total = self._published
        counts = dict(closed)
        private = dict(private)
        for slot_idx, slot_counts, slot_private, slot_total in ring:
            if slot_idx > oldest:
                break
            _sub_counts(counts, slot_counts)
            _sub(private, slot_private)
            total -= slot_total
        live_items: list = []
        live_private: dict[str, int] = {}
        if cur_idx is not None and cur_idx > oldest:
            live_items = list(cur.items())  # atomic copy; the writer may be adding keys
            live_private = dict(cur_private)
        for key, entry in live_items:
            n, b = entry[0], entry[1]
            total += n
            old = counts.get(key)
            counts[key] = (n, b) if old is None else (old[0] + n, old[1] + b)
        _add(private, live_private)
        total, n_private, top = _proxy_stats(total, private, {}, {})
        suspected = total >= self.proxy_min_transfers and top[1] >= self.proxy_ratio * total
        return counts, (n_private / total if total else 0.0), suspected


def _proxy_stats(total: int, private: dict[str, int], cur: dict, cur_private: dict[str, int]):
    """(transfers, private transfers, (top private address, its transfers)) of a window given as
    closed totals plus a live slot."""
    total += sum(e[0] for e in cur.values())
    if cur_private:
        private = dict(private)
        _add(private, cur_private)
    n_private = sum(private.values())
    top = max(
        ((h, n) for h, n in private.items() if h != "*"), key=lambda hn: hn[1], default=("", 0)
    )
    return total, n_private, top


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


def _sub(into: dict[str, int], other: dict[str, int]) -> None:
    for key, n in other.items():
        left = into[key] - n
        if left:
            into[key] = left
        else:
            del into[key]


def _sub_counts(into: dict, slot: dict) -> None:
    for key, entry in slot.items():
        n, b = entry[0], entry[1]
        old = into[key]
        if old[0] == n:
            del into[key]
        else:
            into[key] = (old[0] - n, old[1] - b)
