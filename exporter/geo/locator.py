"""IP address -> (country, geohash) from a MaxMind DB file, cached and reloaded when replaced.

Two record layouts are read, detected from the data rather than from the database name:

* GeoIP2 layout (MaxMind GeoIP2/GeoLite2 City or Country, DB-IP Lite mmdb downloads):
  ``{"country": {"iso_code": ...}, "location": {"latitude": ..., "longitude": ...}}``;
* flat layout (the npm ``@ip-location-db`` packages):
  ``{"country_code": ..., "latitude": ..., "longitude": ...}``.

Records are read with ``maxminddb`` directly, not through ``geoip2.database.Reader``: geoip2 refuses
any file whose *name* lacks "City"/"Country" (so it rejects the flat layout and custom builds) and
its model objects cost 35 us per lookup against 14 us for the raw record (GeoIP2-City-Test.mmdb).

Country-only databases give geohash "". Label values that are not places:

* ``("private", "")`` private, loopback, link-local, CGNAT (100.64/10) and Docker-bridge
  (172.16/12) addresses, IPv4-mapped IPv6 included;
* ``("unknown", "")`` not in the database, no country in the record, or not an IP address.

A miss (an address not in the host cache) must stay cheap with hundreds of thousands of distinct
peers: addresses are parsed with ``socket.inet_pton`` and checked for private ranges as integers
(``ipaddress.ip_address`` alone took 2.6 us, ``ip in network`` 0.15 us a network), and the answer
is also kept per database network: ``get_with_prefix_len`` says how wide the record's network is,
and when it covers a whole /8, /16 or /24 (IPv6: /16, /32, /48) the bucket is stored under that
prefix, so every later address in it costs three int-keyed dict lookups instead of a database
lookup, record decoding and geohash encoding (a GeoLite2 City record decodes in ~18 us).

The C hot path (exporter/hotpath/geo.c) reads these caches directly: a public dotted quad is
answered from the network answers without the host cache (they agree: both hold what the
database says, and a reload drops both), any other host from the host cache, promoting from the
old generation as ``lookup_miss`` does; the rest comes here. Keep the attribute names and the
layout of ``cache``, ``_old``, ``_generation`` and ``_v4_nets`` in step with it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from .geohash import geohash_encode

log = logging.getLogger(__name__)

PRIVATE = "private"
UNKNOWN = "unknown"

#: actions known to the parser; their window keys are built once per place
ACTIONS = ("GET", "PUT", "GET_AUDIT", "GET_REPAIR", "PUT_REPAIR")

_PRIVATE_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",  # RFC 1918, includes Docker's default bridge 172.17.0.0/16
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",  # CGNAT (RFC 6598), also Tailscale
        "::1/128",
        "fe80::/10",
        "fc00::/7",
    )
)
#: the private networks as (network int, shift): an address n is inside when n >> shift == net
_PRIVATE_V4 = tuple(
    (int(n.network_address) >> (32 - n.prefixlen), 32 - n.prefixlen)
    for n in _PRIVATE_NETS
    if n.version == 4
)
_PRIVATE_V6 = tuple(
    (int(n.network_address) >> (128 - n.prefixlen), 128 - n.prefixlen)
    for n in _PRIVATE_NETS
    if n.version == 6
)
#: first octets of the private IPv4 networks: any other address is public after one set lookup
_PRIVATE_V4_FIRST = frozenset(
    first
    for n in _PRIVATE_NETS
    if n.version == 4
    for first in range(int(n.network_address) >> 24, (int(n.broadcast_address) >> 24) + 1)
)
_V4_MAPPED = 0xFFFF  # ::ffff:a.b.c.d >> 32
_INET_PTON, _AF_INET, _AF_INET6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
# keys a record of a geolocation database has in one of the two layouts
_GEOIP2_KEYS = frozenset({"country", "registered_country", "continent", "location", "city"})
_FLAT_KEYS = frozenset({"country_code", "latitude", "longitude"})


class GeoDatabaseError(Exception):
    """The GeoIP database file is missing, unreadable, corrupt or not a City/Country database."""


class Bucket(dict):
    """One place: its labels, and as dict items action -> the (action, geohash, country) window
    key, built once so the recorder's hot path creates no tuple."""

    __slots__ = ("country", "geohash")

    def __init__(self, country: str, geohash: str, actions=ACTIONS) -> None:
        super().__init__((a, (a, geohash, country)) for a in actions)
        self.country = country
        self.geohash = geohash

    def __repr__(self) -> str:
        return f"Bucket({self.country!r}, {self.geohash!r})"


class GeoLocator:
    """Geolocate peers with a City or Country .mmdb (GeoLite2, GeoIP2, DB-IP Lite, ip-location-db).

    ``locate(ip)`` answers (country ISO code, geohash). Answers come from a bounded cache of
    ``cache_size`` addresses, an approximate LRU in two generations: ``cache`` (young) and an old
    dict; a hit in the young one is one ``dict.get`` (recorders read it directly), a hit in the
    old one promotes the entry, and when the young dict is full it becomes the old one, dropping
    what was not used for a whole generation. functools.lru_cache measured slower on hits with
    10k+ addresses (it relinks an entry on every hit).

    The file's identity (device, inode, size, mtime) is checked at most every ``check_interval``
    seconds, and a replaced file (geoipupdate renames a new one over the old weekly) is opened
    and swapped in without a restart. A replacement that cannot be opened is logged and the old
    database stays in use. Replace the file by rename, as geoipupdate does: rewriting an mmapped
    database in place (``cp new old``) can crash the process (SIGBUS) in a lookup before the
    next check notices.
    """

    def __init__(
        self,
        path: str,
        precision: int = 3,
        cache_size: int = 65536,
        *,
        check_interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= precision <= 5:
            # > 5 (cells < 5 km) would come close to locating households, which the GeoLite2
            # EULA forbids, and multiplies the series count
            raise ValueError(f"geohash precision must be 1..5, got {precision}")
        self.path = os.fspath(path)
        self.precision = precision
        self.check_interval = check_interval
        self._monotonic = monotonic
        self._reload_lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        #: the bucket of every non-public address, stable across reloads; it has no window keys
        #: so the recorder takes its slow path for it and can count private addresses
        self.private = Bucket(PRIVATE, "", actions=())
        self.unknown = self.bucket(UNKNOWN, "")
        #: answer for a host part that cannot be a whole address (an unbracketed IPv6 whose
        #: last group was split off as a "port"); not in ``_buckets``, never a window key
        self.ambiguous = Bucket(UNKNOWN, "", actions=())
        try:  # before opening: a file replaced in between is then reloaded at the next check
            self._identity: tuple | None = _identity(self.path)
        except OSError:
            self._identity = None  # _open reports it
        self._reader, self.database_type, self.build_epoch, self.layout = _open(self.path)
        self._failed_identity: tuple | None = None
        self.reloads = 0
        self.reload_failures = 0
        self._lookup_errors = 0
        self._next_check = monotonic() + check_interval
        if cache_size < 2:
            raise ValueError("cache_size must be >= 2")
        self.cache_size = cache_size
        self._generation = cache_size // 2
        #: young generation: host part of a remote address ("1.2.3.4", "[2001:db8::1]") -> Bucket
        self.cache: dict[str, Bucket] = {}
        self._old: dict[str, Bucket] = {}
        #: host-cache misses since start (new or forgotten peers) of the lookups made here;
        #: the C path answers most public IPv4 peers from ``_v4_nets`` without counting them
        self.misses = 0
        #: per network: prefix -> Bucket for records covering a whole /8, /16, /24 (IPv4) or
        #: /16, /32, /48 (IPv6); each dict holds at most cache_size entries (cleared when full)
        self._v4_nets: tuple[dict[int, Bucket], ...] = ({}, {}, {})
        self._v6_nets: tuple[dict[int, Bucket], ...] = ({}, {}, {})
        #: lookups answered by the database itself (not by a cache)
        self.db_lookups = 0

    # ---- public -------------------------------------------------------------------------

    def locate(self, ip: str) -> tuple[str, str]:
        """(country ISO code, geohash) of an IP address (no port); see the module docstring."""
        self.maybe_reload()
        if ":" in ip and not ip.startswith("["):
            ip = f"[{ip}]"
        bucket = self.lookup(ip)
        return bucket.country, bucket.geohash

    def lookup_address(self, address: str) -> Bucket:
        """Bucket of any "ip:port", "[v6]:port", "[v6]", bare IPv6 or IPv4 string (slow path)."""
        if address.startswith("["):
            host = address[: address.find("]") + 1] if "]" in address else address + "]"
        elif address.count(":") == 1:
            host = address.partition(":")[0]
        elif ":" in address:
            host = f"[{address}]"
        else:
            host = address
        return self.lookup(host)

    def bucket(self, country: str, geohash: str) -> Bucket:
        """The shared Bucket of a place (bounded by the number of cells and countries)."""
        key = (country, geohash)
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = Bucket(country, geohash)
        return found

    def maybe_reload(self) -> bool:
        """Reopen the database if the file was replaced; cheap unless check_interval elapsed."""
        now = self._monotonic()
        if now < self._next_check:
            return False
        if not self._reload_lock.acquire(blocking=False):
            return False  # another thread is checking
        try:
            self._next_check = now + self.check_interval
            return self._check()
        finally:
            self._reload_lock.release()

    def lookup(self, host: str) -> Bucket:
        """Bucket of the host part of a remote address: "1.2.3.4" or "[2001:db8::1]"."""
        bucket = self.cache.get(host)
        if bucket is None:
            bucket = self.lookup_miss(host)
        return bucket

    def lookup_miss(self, host: str) -> Bucket:
        """``lookup`` after a miss in the young generation (callers inline the first get)."""
        bucket = self._old.get(host)
        if bucket is None:
            self.misses += 1
            try:  # a dotted quad, parsed inline: this runs for every new peer
                n = int.from_bytes(_INET_PTON(_AF_INET, host), "big")
            except (OSError, ValueError):
                bucket = self._resolve_other(host)
            else:
                bucket = self._resolve_v4(n, host)
        cache = self.cache
        if len(cache) >= self._generation:
            self._old = cache
            self.cache = cache = {}
        cache[host] = bucket
        return bucket

    def cache_info(self) -> dict[str, int]:
        """Cache statistics: entries, maxsize, misses (of the host cache), database lookups."""
        return {
            "entries": len(self.cache) + len(self._old),
            "maxsize": self.cache_size,
            "misses": self.misses,
            "db_lookups": self.db_lookups,
        }

    # ---- internals ----------------------------------------------------------------------

    def _check(self) -> bool:
        try:
            identity = _identity(self.path)
        except OSError as exc:
            if self._failed_identity != ("missing",):
                self._failed_identity = ("missing",)
                self.reload_failures += 1
                log.warning(
                    "GeoIP database %s: %s; still using the database loaded before",
                    self.path,
                    exc.strerror or exc,
                )
            return False
        if identity == self._identity or identity == self._failed_identity:
            return False
        try:
            reader, db_type, epoch, layout = _open(self.path)
        except GeoDatabaseError as exc:
            self._failed_identity = identity
            self.reload_failures += 1
            log.warning("%s; still using the database loaded before", exc)
            return False
        self._reader = reader  # the old reader closes when its last user drops it
        self.database_type, self.build_epoch, self.layout = db_type, epoch, layout
        self._identity = identity
        self._failed_identity = None
        self.reloads += 1
        self.cache, self._old = {}, {}
        self._v4_nets, self._v6_nets = ({}, {}, {}), ({}, {}, {})
        log.info(
            "GeoIP database %s reloaded (%s, built %s)",
            self.path,
            db_type,
            time.strftime("%Y-%m-%d", time.gmtime(epoch)),
        )
        return True

    def _resolve_other(self, host: str) -> Bucket:
        """A host that is not a dotted quad: "[v6]", an odd spelling, or not an address."""
        if host.startswith("["):
            if not host.endswith("]"):
                return self.ambiguous
            text = host[1:-1]
            try:
                n = int.from_bytes(_INET_PTON(_AF_INET6, text), "big")
            except (OSError, ValueError):
                return self._resolve_slow(text)
            if n >> 32 == _V4_MAPPED:
                n &= 0xFFFFFFFF
                return self._resolve_v4(n, f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
            return self._resolve_v6(n, text)
        if ":" in host:
            return self.ambiguous
        return self._resolve_slow(host)

    def _resolve_slow(self, text: str) -> Bucket:
        """What inet_pton refused: an IPv6 scope ("fe80::1%eth0") or not an address at all."""
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return self.unknown
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.version == 4:
            return self._resolve_v4(int(ip), str(ip))
        return self._resolve_v6(int(ip), str(ip))

    def _resolve_v4(self, n: int, text: str) -> Bucket:
        if n >> 24 in _PRIVATE_V4_FIRST:
            for net, shift in _PRIVATE_V4:
                if n >> shift == net:
                    return self.private
        n8, n16, n24 = self._v4_nets
        bucket = n8.get(n >> 24)
        if bucket is None:
            bucket = n16.get(n >> 16)
            if bucket is None:
                bucket = n24.get(n >> 8)
                if bucket is None:
                    bucket, prefix_len = self._query(text)
                    if prefix_len >= 0:
                        self._store(n8, n16, n24, n, prefix_len, 32, bucket)
        return bucket

    def _resolve_v6(self, n: int, text: str) -> Bucket:
        for net, shift in _PRIVATE_V6:
            if n >> shift == net:
                return self.private
        n16, n32, n48 = self._v6_nets
        bucket = n16.get(n >> 112)
        if bucket is None:
            bucket = n32.get(n >> 96)
            if bucket is None:
                bucket = n48.get(n >> 80)
                if bucket is None:
                    bucket, prefix_len = self._query(text)
                    if prefix_len >= 0:
                        self._store(n16, n32, n48, n, prefix_len, 128, bucket)
        return bucket

    def _store(self, wide: dict, mid: dict, narrow: dict, n: int, prefix_len: int, bits: int,
               bucket: Bucket) -> None:
        """Keep the bucket for the widest of the three prefixes its record's network covers."""
        step = 8 if bits == 32 else 16
        for level, table in enumerate((wide, mid, narrow), 1):
            if prefix_len <= level * step:
                if len(table) >= self.cache_size:
                    table.clear()
                table[n >> (bits - level * step)] = bucket
                return

    def _query(self, text: str) -> tuple[Bucket, int]:
        """(bucket, prefix length of the record's network, -1 if it must not be reused)."""
        self.db_lookups += 1
        try:
            record, prefix_len = self._reader.get_with_prefix_len(text)
        except ValueError:  # IPv6 address in an IPv4-only database
            return self.unknown, -1
        except InvalidDatabaseError as exc:  # corrupt data section
            self._lookup_errors += 1
            if self._lookup_errors == 1:
                log.warning("GeoIP database %s: lookup of %s failed: %s", self.path, text, exc)
            return self.unknown, -1
        if record is None:
            return self.unknown, max(prefix_len, 0)
        if not isinstance(record, dict):
            return self.unknown, -1
        country, lat, lon = _fields(record)
        if not country:
            country = UNKNOWN
        geohash = ""
        if lat is not None and lon is not None:
            try:
                geohash = geohash_encode(float(lat), float(lon), self.precision)
            except (TypeError, ValueError):
                geohash = ""
        return self.bucket(country, geohash), max(prefix_len, 0)


def _fields(record: dict) -> tuple[str | None, object, object]:
    """(country ISO code, latitude, longitude) from a record in either layout."""
    country = record.get("country")
    if isinstance(country, dict):
        location = record.get("location")
        if isinstance(location, dict):
            return country.get("iso_code"), location.get("latitude"), location.get("longitude")
        return country.get("iso_code"), None, None
    if "country_code" in record or "latitude" in record:
        return record.get("country_code"), record.get("latitude"), record.get("longitude")
    location = record.get("location")  # GeoIP2 layout without a country (continent-level)
    if isinstance(location, dict):
        return None, location.get("latitude"), location.get("longitude")
    return None, None, None


def _identity(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open(path: str):
    """Open and validate; returns (reader, database_type, build_epoch, layout)."""
    if os.path.isdir(path):
        raise GeoDatabaseError(f"GeoIP database {path}: is a directory, not a file")
    try:
        reader = maxminddb.open_database(path)
    except FileNotFoundError:
        raise GeoDatabaseError(f"GeoIP database {path}: file not found") from None
    except PermissionError:
        raise GeoDatabaseError(f"GeoIP database {path}: permission denied") from None
    except OSError as exc:
        raise GeoDatabaseError(f"GeoIP database {path}: {exc.strerror or exc}") from None
    except (InvalidDatabaseError, ValueError):
        raise GeoDatabaseError(
            f"GeoIP database {path}: not a valid MaxMind DB (.mmdb) file"
        ) from None
    meta = reader.metadata()
    db_type = str(meta.database_type)
    try:
        sample = _first_record(reader)
    except (InvalidDatabaseError, ValueError, RuntimeError) as exc:
        raise GeoDatabaseError(f"GeoIP database {path}: corrupt data ({exc})") from None
    if sample is None:
        kind = db_type.lower()
        if "city" not in kind and "country" not in kind:
            raise GeoDatabaseError(_wrong_type(path, db_type))
        layout = "empty"
    elif _FLAT_KEYS & sample.keys():
        layout = "flat"
    elif _GEOIP2_KEYS & sample.keys():
        layout = "geoip2"
    else:
        raise GeoDatabaseError(_wrong_type(path, db_type))
    return reader, db_type, int(meta.build_epoch), layout


def _wrong_type(path: str, db_type: str) -> str:
    return (
        f"GeoIP database {path}: is a {db_type!r} database without locations; need a City or "
        "Country database (GeoLite2-City, GeoIP2-City, DB-IP City Lite, ip-location-db)"
    )


def _first_record(reader) -> dict | None:
    """The first dict record of the search tree (iteration is lazy), or None if there is none."""
    for n, (_network, record) in enumerate(reader):
        if isinstance(record, dict) and record:
            return record
        if n >= 64:
            break
    return None
