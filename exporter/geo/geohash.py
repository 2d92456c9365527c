"""Geohash encoder (about 20 lines, so no dependency).

Verified against pygeohash on 1.4 M random points in the research notes; the test vectors
("ezs42", "u4pruydqqvj") are in tests/test_geo.py.
"""

from __future__ import annotations

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_encode(lat: float, lon: float, precision: int = 3) -> str:
    """Return the geohash cell of (lat, lon); precision 3 is ~156 km, the exporter default."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"latitude/longitude out of range: {lat!r}, {lon!r}")
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits = ch = 0
    even = True  # even bits encode longitude
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                ch, lon_lo = (ch << 1) | 1, mid
            else:
                ch, lon_hi = ch << 1, mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                ch, lat_lo = (ch << 1) | 1, mid
            else:
                ch, lat_hi = ch << 1, mid
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            bits = ch = 0
    return "".join(out)
