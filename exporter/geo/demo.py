"""Synthetic peer networks for the demo node: one list feeds both the log generator and the
demo GeoIP database (exporter/data/demo-geoip.mmdb, built by scripts/build_demo_geoip.py).

SYNTHETIC DATA, NOT GEOLOCATION. Every network is a /24 of 198.18.0.0/15, the range RFC 2544
reserves for benchmarking; it is never routed on the internet, so the demo database cannot
mislocate a real peer, and the generated logs contain no one's real address. The places are real
cities with their public coordinates, spread over all continents so the world map has something to
show. Europe and North America, where most Storj traffic comes from, have the most entries.
"""

from __future__ import annotations

from pathlib import Path

#: (cidr, country ISO code, city, latitude, longitude)
DEMO_NETWORKS: list[tuple[str, str, str, float, float]] = [
    # Europe
    ("198.18.1.0/24", "DE", "Frankfurt am Main", 50.1109, 8.6821),
    ("198.18.2.0/24", "DE", "Berlin", 52.5200, 13.4050),
    ("198.18.3.0/24", "NL", "Amsterdam", 52.3676, 4.9041),
    ("198.18.4.0/24", "GB", "London", 51.5074, -0.1278),
    ("198.18.5.0/24", "FR", "Paris", 48.8566, 2.3522),
    ("198.18.6.0/24", "PL", "Warsaw", 52.2297, 21.0122),
    ("198.18.7.0/24", "SE", "Stockholm", 59.3293, 18.0686),
    ("198.18.8.0/24", "ES", "Madrid", 40.4168, -3.7038),
    ("198.18.9.0/24", "IT", "Milan", 45.4642, 9.1900),
    ("198.18.10.0/24", "UA", "Kyiv", 50.4501, 30.5234),
    ("198.18.11.0/24", "FI", "Helsinki", 60.1699, 24.9384),
    ("198.18.12.0/24", "CZ", "Prague", 50.0755, 14.4378),
    ("198.18.13.0/24", "AT", "Vienna", 48.2082, 16.3738),
    ("198.18.14.0/24", "CH", "Zurich", 47.3769, 8.5417),
    ("198.18.15.0/24", "PT", "Lisbon", 38.7223, -9.1393),
    ("198.18.16.0/24", "RO", "Bucharest", 44.4268, 26.1025),
    ("198.18.17.0/24", "NO", "Oslo", 59.9139, 10.7522),
    ("198.18.18.0/24", "IE", "Dublin", 53.3498, -6.2603),
    ("198.18.19.0/24", "GR", "Athens", 37.9838, 23.7275),
    ("198.18.20.0/24", "TR", "Istanbul", 41.0082, 28.9784),
    # North America
    ("198.18.40.0/24", "US", "New York", 40.7128, -74.0060),
    ("198.18.41.0/24", "US", "Ashburn", 39.0438, -77.4874),
    ("198.18.42.0/24", "US", "Chicago", 41.8781, -87.6298),
    ("198.18.43.0/24", "US", "Dallas", 32.7767, -96.7970),
    ("198.18.44.0/24", "US", "Los Angeles", 34.0522, -118.2437),
    ("198.18.45.0/24", "US", "Seattle", 47.6062, -122.3321),
    ("198.18.46.0/24", "US", "Salt Lake City", 40.7608, -111.8910),
    ("198.18.47.0/24", "US", "Miami", 25.7617, -80.1918),
    ("198.18.48.0/24", "CA", "Toronto", 43.6532, -79.3832),
    ("198.18.49.0/24", "CA", "Montreal", 45.5019, -73.5674),
    ("198.18.50.0/24", "CA", "Vancouver", 49.2827, -123.1207),
    ("198.18.51.0/24", "MX", "Mexico City", 19.4326, -99.1332),
    # South America
    ("198.18.70.0/24", "BR", "Sao Paulo", -23.5505, -46.6333),
    ("198.18.71.0/24", "AR", "Buenos Aires", -34.6037, -58.3816),
    ("198.18.72.0/24", "CL", "Santiago", -33.4489, -70.6693),
    ("198.18.73.0/24", "CO", "Bogota", 4.7110, -74.0721),
    ("198.18.74.0/24", "PE", "Lima", -12.0464, -77.0428),
    # Asia
    ("198.19.1.0/24", "JP", "Tokyo", 35.6762, 139.6503),
    ("198.19.2.0/24", "JP", "Osaka", 34.6937, 135.5023),
    ("198.19.3.0/24", "KR", "Seoul", 37.5665, 126.9780),
    ("198.19.4.0/24", "SG", "Singapore", 1.3521, 103.8198),
    ("198.19.5.0/24", "HK", "Hong Kong", 22.3193, 114.1694),
    ("198.19.6.0/24", "TW", "Taipei", 25.0330, 121.5654),
    ("198.19.7.0/24", "IN", "Mumbai", 19.0760, 72.8777),
    ("198.19.8.0/24", "IN", "Bengaluru", 12.9716, 77.5946),
    ("198.19.9.0/24", "ID", "Jakarta", -6.2088, 106.8456),
    ("198.19.10.0/24", "TH", "Bangkok", 13.7563, 100.5018),
    ("198.19.11.0/24", "VN", "Hanoi", 21.0278, 105.8342),
    ("198.19.12.0/24", "AE", "Dubai", 25.2048, 55.2708),
    ("198.19.13.0/24", "IL", "Tel Aviv", 32.0853, 34.7818),
    # Oceania
    ("198.19.40.0/24", "AU", "Sydney", -33.8688, 151.2093),
    ("198.19.41.0/24", "AU", "Melbourne", -37.8136, 144.9631),
    ("198.19.42.0/24", "NZ", "Auckland", -36.8485, 174.7633),
    # Africa
    ("198.19.70.0/24", "ZA", "Johannesburg", -26.2041, 28.0473),
    ("198.19.71.0/24", "NG", "Lagos", 6.5244, 3.3792),
    ("198.19.72.0/24", "KE", "Nairobi", -1.2921, 36.8219),
    ("198.19.73.0/24", "EG", "Cairo", 30.0444, 31.2357),
    ("198.19.74.0/24", "MA", "Casablanca", 33.5731, -7.5898),
]

#: metadata build time written into the demo database, so rebuilding it is byte-reproducible
DEMO_BUILD_EPOCH = 1767225600  # 2026-01-01T00:00:00Z

DEMO_DATABASE_TYPE = "Demo-GeoIP2-City"


def demo_database_path() -> str:
    """Path of the committed demo database (GeoIP2-City layout, synthetic)."""
    return str(Path(__file__).resolve().parent.parent / "data" / "demo-geoip.mmdb")


def demo_record(country: str, city: str, lat: float, lon: float) -> dict:
    """The GeoIP2-City-layout record of one demo network."""
    return {
        "country": {"iso_code": country},
        "registered_country": {"iso_code": country},
        "city": {"names": {"en": city}},
        "location": {"latitude": lat, "longitude": lon, "accuracy_radius": 50},
    }
