"""Which listen addresses may be served without authentication.

One rule for every listener of both programs (the exporter's web and OTLP listeners, the
forwarder's), so "loopback only without auth" means the same everywhere.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: the only ones served without auth."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
