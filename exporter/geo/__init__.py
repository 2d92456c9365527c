"""Where traffic comes from: GeoIP lookups and geo-bucketed gauges for the world map.

``GeoLocator`` (one per database, shared by all nodes) turns an address into (country, geohash);
``GeoRecorder`` (one per node) keeps a sliding window of transfers and bytes per
(action, geohash, country); ``GeoCollector`` renders all recorders at scrape time.
"""

from .collector import GeoCollector
from .geohash import geohash_encode
from .locator import PRIVATE, UNKNOWN, GeoDatabaseError, GeoLocator
from .recorder import OTHER, GeoRecorder

__all__ = [
    "OTHER",
    "PRIVATE",
    "UNKNOWN",
    "GeoCollector",
    "GeoDatabaseError",
    "GeoLocator",
    "GeoRecorder",
    "geohash_encode",
]
