"""Background polling of one node's dashboard API, cached as plain data.

Each endpoint has its own interval and timeout; the polls of every node run on one shared
scheduler (scheduler.py: one timer thread, a small worker pool, at most two requests of a node
in flight), so the thread count does not grow with the nodes, a payout estimate that takes 90 s
on a big node does not hold up its 60 s node poll, and a scrape only copies the cache. The
per-satellite endpoints are scheduled when the node poll first brings the satellite list.

Failures: every failed or malformed answer adds one to the endpoint's error count (and to
its count by reason, client.REASONS); one log line is written when an endpoint starts failing
and one when it answers again (never one per poll). Every request has a total deadline (the
endpoint's timeout), so a dripping or hanging node is a counted failure, not a stuck thread.
While an endpoint fails, its last good values stay exposed; they are dropped once the last
success is older than STALE_INTERVALS polling intervals plus the timeout, so a dead node does
not show frozen numbers for hours.

`storagenode_up` is 1 only while all of these hold for the node endpoint (/api/sno/): its last
completed poll succeeded, that success is not stale (as above), and no poll in flight has run
past its timeout plus OVERRUN_GRACE (the DNS lookup is the one step without a deadline).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exporter import __version__
from exporter.nodeapi.client import ApiError, get_json, printable
from exporter.nodeapi.parse import (
    Held,
    Malformed,
    NodeInfo,
    Payout,
    PayStub,
    SatelliteMonth,
    Scores,
    parse_held,
    parse_node,
    parse_payout,
    parse_paystubs,
    parse_satellite,
    parse_satellites,
)
from exporter.nodeapi.scheduler import Job, Scheduler, shared_scheduler
from exporter.satellites import SATELLITES

log = logging.getLogger("exporter.nodeapi")

ENDPOINTS = ("node", "satellites", "satellite", "payout", "held", "satellite_payout",
             "paystubs")
PATHS = {
    "node": "/api/sno/",
    "satellites": "/api/sno/satellites",
    "satellite": "/api/sno/satellite/{id}",
    "payout": "/api/sno/estimated-payout",
    "held": "/api/heldamount/held-history",
    "satellite_payout": "/api/sno/estimated-payout?id={id}",
    "paystubs": "/api/heldamount/paystubs/{start}/{end}",
}
# Scores sync from the satellites every 4 h and storage every 12 h (reference §4.8), so
# polling faster gains nothing; payout and held history change even more slowly, and a
# paystub only once a month (the previous month's arrives in the first half of the next).
DEFAULT_INTERVALS = {"node": 60.0, "satellites": 60.0, "satellite": 300.0,
                     "payout": 900.0, "held": 1800.0, "satellite_payout": 900.0,
                     "paystubs": 21600.0}
DEFAULT_TIMEOUTS = {"node": 10.0, "satellites": 20.0, "satellite": 20.0,
                    "payout": 120.0, "held": 60.0, "satellite_payout": 120.0,
                    "paystubs": 60.0}
PER_SATELLITE = ("satellite", "satellite_payout")  # one request per listed satellite
PAYSTUB_MONTHS = 12  # months_ago 1..12: a bounded label, not a growing `period`
STALE_INTERVALS = 3
OVERRUN_GRACE = 1.0  # seconds past the timeout before a poll in flight counts as down


def _settings(given: dict[str, float] | None, defaults: dict[str, float],
              what: str) -> dict[str, float]:
    result = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise ValueError(f"unknown API endpoint {key!r} in {what}; "
                             f"known: {', '.join(ENDPOINTS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{what}[{key!r}] must be a positive number of seconds")
        result[key] = float(value)
    return result


@dataclass(slots=True)
class EndpointStats:
    name: str
    interval: float
    timeout: float
    errors: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # client.REASONS -> count
    ok: bool | None = None  # result of the last completed poll; None before the first
    failing: bool = False  # drives the one-line-per-state-change logging
    duration: float | None = None
    last_success: float | None = None  # wall clock, exposed
    last_success_mono: float | None = None  # monotonic, for staleness
    in_flight_since: float | None = None  # monotonic start of the poll under way

    @property
    def stale_after(self) -> float:
        return STALE_INTERVALS * self.interval + self.timeout

    def healthy(self, now: float) -> bool:
        """Last poll succeeded, recently enough, and no poll is overrunning its deadline."""
        return (self.ok is True and self.last_success_mono is not None
                and now - self.last_success_mono <= self.stale_after
                and (self.in_flight_since is None
                     or now - self.in_flight_since <= self.timeout + OVERRUN_GRACE))

    def copy(self) -> EndpointStats:
        return EndpointStats(self.name, self.interval, self.timeout, self.errors,
                             dict(self.by_reason), self.ok, self.failing, self.duration,
                             self.last_success, self.last_success_mono, self.in_flight_since)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the collector renders for one node: copies, safe to read without the lock."""

    node: str
    include_wallet: bool
    up: bool
    info: NodeInfo | None
    scores: dict[str, Scores]  # by satellite address
    months: tuple[SatelliteMonth, ...]
    payout: Payout | None
    held: tuple[Held, ...]
    satellite_payouts: tuple[tuple[str, Payout], ...]  # (satellite ID, its estimate)
    paystubs: tuple[tuple[int, PayStub], ...]  # (months ago, 1..PAYSTUB_MONTHS, paystub)
    endpoints: tuple[EndpointStats, ...]


@dataclass(slots=True)
class _Cache:
    info: NodeInfo | None = None
    scores: dict[str, Scores] | None = None
    months: dict[str, tuple[SatelliteMonth, float]] = field(default_factory=dict)
    payout: Payout | None = None
    held: tuple[Held, ...] | None = None
    satellite_payouts: dict[str, tuple[Payout, float]] = field(default_factory=dict)
    paystubs: tuple[PayStub, ...] | None = None


class NodeApiPoller:
    """Polls one node's dashboard API in the background; `snapshot()` never blocks on I/O."""

    def __init__(
        self,
        node: str,
        base_url: str,
        *,
        intervals: dict[str, float] | None = None,
        timeouts: dict[str, float] | None = None,
        include_wallet: bool = False,
        clock: Callable[[], float] = time.time,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.node = node
        url = base_url.strip().rstrip("/")
        self.base_url = url if "://" in url else f"http://{url}"
        # for log lines: never print credentials of a reverse proxy in front of the API
        self._display_url = re.sub(r"://[^/@]*@", "://", self.base_url)
        self.include_wallet = include_wallet
        self._clock = clock
        ivals = _settings(intervals, DEFAULT_INTERVALS, "intervals")
        touts = _settings(timeouts, DEFAULT_TIMEOUTS, "timeouts")
        self._stats = {n: EndpointStats(n, ivals[n], touts[n]) for n in ENDPOINTS}
        self._cache = _Cache()
        self._lock = threading.Lock()
        self._scheduler = scheduler
        self._have_satellites = False  # the node poll has brought the satellite list
        self._jobs: dict[str, Job] = {}  # the running schedule, empty while stopped
        self._parked: set[str] = set()  # per-satellite jobs waiting for the list
        self._headers = {"User-Agent": f"storagenode-exporter/{__version__}"}
        self._polls: dict[str, Callable[[], list[tuple[str, str]] | None]] = {
            "node": self._poll_node,
            "satellites": self._poll_satellites,
            "satellite": self._poll_satellite,
            "payout": self._poll_payout,
            "held": self._poll_held,
            "satellite_payout": self._poll_satellite_payout,
            "paystubs": self._poll_paystubs,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule every endpoint on the shared scheduler; the first polls start at once."""
        with self._lock:
            if self._jobs:
                return
            self._scheduler = self._scheduler or shared_scheduler()
            for name in ENDPOINTS:
                job = self._jobs[name] = Job(self, name, lambda: None,
                                             priority=0 if name == "node" else 1)
                job.run = functools.partial(self._job, job)
            jobs = list(self._jobs.values())
        for job in jobs:
            self._scheduler.add(job)

    def stop(self, wait: float = 1.0) -> None:
        """No poll of this node starts after this; waits up to `wait` s for one under way (a
        request stuck past that is left to finish on its worker, within its timeout)."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
            self._parked.clear()
        for job in jobs:
            job.cancelled = True
        if jobs and self._scheduler is not None:
            self._scheduler.wait_idle(self, wait)

    def poll_once(self, names: tuple[str, ...] = ENDPOINTS) -> dict[str, bool]:
        """Poll these endpoints (default all) once, in order, synchronously; returns
        endpoint -> success."""
        return {name: self._run(name) for name in names}

    def _job(self, job: Job) -> float | None:
        """One scheduled poll; returns when the next is due, None to park a per-satellite
        endpoint until the satellite list is known (see _release_parked)."""
        name = job.name
        with self._lock:
            if name in PER_SATELLITE and not self._have_satellites:
                if self._jobs.get(name) is job:  # not one of a schedule stopped meanwhile
                    self._parked.add(name)
                return None
        started = time.monotonic()
        self._run(name)
        return started + self._stats[name].interval

    def _release_parked(self) -> None:
        """The satellite list has arrived: schedule the endpoints that wait for it, now."""
        with self._lock:
            self._have_satellites = True
            jobs = [self._jobs[n] for n in sorted(self._parked) if n in self._jobs]
            self._parked.clear()
        for job in jobs:
            self._scheduler.add(job)

    # -- one poll ------------------------------------------------------------------------------

    def _run(self, name: str) -> bool:
        """Poll one endpoint, record duration/errors, log a state change; True on success."""
        stats = self._stats[name]
        started = time.perf_counter()
        with self._lock:
            stats.in_flight_since = time.monotonic()
        try:
            errors = self._polls[name]()
        except Exception as exc:  # a parser bug must not end the endpoint's polling
            errors = [_failure(exc, self.node, name)]
        duration = time.perf_counter() - started
        with self._lock:
            stats.in_flight_since = None
            if errors is None:  # nothing to poll yet (satellite list unknown)
                return False
            stats.duration = duration
            stats.errors += len(errors)
            for reason, _ in errors:
                stats.by_reason[reason] = stats.by_reason.get(reason, 0) + 1
            stats.ok = not errors
            if not errors:
                stats.last_success = self._clock()
                stats.last_success_mono = time.monotonic()
            was_failing, stats.failing = stats.failing, bool(errors)
        where = f"{self._display_url}{PATHS[name]}"
        if errors and not was_failing:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            log.warning("node %s: API %s failed: %s%s; keeping the last good values, "
                        "further failures are counted in storagenode_api_errors_total "
                        "but not logged until it answers again",
                        self.node, where, errors[0][1], more)
        elif was_failing and not errors:
            log.info("node %s: API %s answers again", self.node, where)
        return not errors

    def _get(self, name: str, **fmt: str):
        path = PATHS[name].format(**fmt)
        return get_json(self.base_url + path, self._stats[name].timeout, self._headers)

    def _poll_node(self) -> list[tuple[str, str]]:
        info = parse_node(self._get("node"))
        for sat in info.satellites:
            SATELLITES.learn(sat.id, sat.url)
        with self._lock:
            self._cache.info = info
            first = not self._have_satellites
        if first:
            self._release_parked()
        return []

    def _poll_satellites(self) -> list[tuple[str, str]]:
        scores = parse_satellites(self._get("satellites"))
        with self._lock:
            self._cache.scores = scores
        return []

    def _per_satellite(self, name: str, parse: Callable[[object, str], object],
                       cache: dict[str, tuple]) -> list[tuple[str, str]] | None:
        """One request per satellite the node lists; each success is cached on its own."""
        with self._lock:
            info = self._cache.info
        if info is None:
            return None
        errors = []
        for sat in info.satellites:
            try:
                value = parse(self._get(name, id=sat.id), sat.id)
            except Exception as exc:
                reason, text = _failure(exc, self.node, name)
                errors.append((reason, f"satellite {SATELLITES.name(sat.id)}: {text}"))
                continue
            with self._lock:
                cache[sat.id] = (value, time.monotonic())
        with self._lock:  # satellites the node no longer lists
            listed = {sat.id for sat in info.satellites}
            for sat_id in set(cache) - listed:
                del cache[sat_id]
        return errors

    def _poll_satellite(self) -> list[tuple[str, str]] | None:
        return self._per_satellite("satellite", parse_satellite, self._cache.months)

    def _poll_satellite_payout(self) -> list[tuple[str, str]] | None:
        return self._per_satellite("satellite_payout", lambda doc, _: parse_payout(doc),
                                   self._cache.satellite_payouts)

    def _poll_payout(self) -> list[tuple[str, str]]:
        payout = parse_payout(self._get("payout"))
        with self._lock:
            self._cache.payout = payout
        return []

    def _poll_held(self) -> list[tuple[str, str]]:
        held = parse_held(self._get("held"))
        for item in held:
            SATELLITES.learn(item.satellite_id, item.url)
        with self._lock:
            self._cache.held = held
        return []

    def _poll_paystubs(self) -> list[tuple[str, str]]:
        """The last PAYSTUB_MONTHS whole months (UTC) in one request."""
        now = _month_index(self._clock())
        start, end = (_period(now - PAYSTUB_MONTHS), _period(now - 1))
        stubs = parse_paystubs(self._get("paystubs", start=start, end=end))
        with self._lock:
            self._cache.paystubs = stubs
        return []

    # -- for the collector ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Copy the cache, leaving out values older than their endpoint's stale limit."""
        now = time.monotonic()
        with self._lock:
            fresh = {
                name: s.last_success_mono is not None
                and now - s.last_success_mono <= s.stale_after
                for name, s in self._stats.items()
            }
            sat_limit = self._stats["satellite"].stale_after
            pay_limit = self._stats["satellite_payout"].stale_after
            cache = self._cache
            month_now = _month_index(self._clock())
            stubs = tuple(
                (month_now - (stub.year * 12 + stub.month - 1), stub)
                for stub in (cache.paystubs or ()) if fresh["paystubs"])
            return Snapshot(
                node=self.node,
                include_wallet=self.include_wallet,
                up=self._stats["node"].healthy(now),
                info=cache.info if fresh["node"] else None,
                scores=dict(cache.scores or {}) if fresh["satellites"] else {},
                months=tuple(m for m, at in cache.months.values() if now - at <= sat_limit),
                payout=cache.payout if fresh["payout"] else None,
                held=(cache.held or ()) if fresh["held"] else (),
                satellite_payouts=tuple((sat_id, p) for sat_id, (p, at)
                                        in cache.satellite_payouts.items()
                                        if now - at <= pay_limit),
                paystubs=tuple(s for s in stubs if 1 <= s[0] <= PAYSTUB_MONTHS),
                endpoints=tuple(s.copy() for s in self._stats.values()),
            )


def _month_index(unix: float) -> int:
    """Months since year 0 of the UTC month `unix` falls in (year * 12 + month - 1)."""
    day = datetime.fromtimestamp(unix, UTC)
    return day.year * 12 + day.month - 1


def _period(index: int) -> str:
    """_month_index -> the node's YYYY-MM period."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _failure(exc: Exception, node: str, endpoint: str) -> tuple[str, str]:
    """(reason, one-line text) for a failed poll; anything unexpected is a malformed answer."""
    if isinstance(exc, ApiError):
        return exc.reason, str(exc)
    if isinstance(exc, Malformed):
        return "malformed", printable(str(exc))
    log.debug("node %s: %s poll crashed", node, endpoint, exc_info=True)
    return "malformed", printable(f"unexpected {type(exc).__name__}: {exc}")
