"""Remote addresses: public unicast IPv4 only, unless the caller names networks."""

from __future__ import annotations

import ipaddress


def _prefixes(*nets: str) -> frozenset[int]:
    out = set()
    for cidr in nets:
        net = ipaddress.IPv4Network(cidr)
        shift = 32 - (8 if net.prefixlen <= 8 else 16 if net.prefixlen <= 16 else 24)
        first, last = int(net.network_address), int(net.broadcast_address)
        out.update(range(first >> shift, (last >> shift) + 1))
    return frozenset(out)


# Not public: this-network, private, shared, loopback, link-local, test, benchmark, multicast.
_RESERVED_8 = _prefixes("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3")
_RESERVED_16 = _prefixes("100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12",
                         "192.168.0.0/16", "198.18.0.0/15")
_RESERVED_24 = _prefixes("192.0.0.0/24", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")


def _public(n: int) -> bool:
    """True for a public unicast IPv4 address (as an int)."""
    return (
        n >> 24 not in _RESERVED_8
        and n >> 16 not in _RESERVED_16
        and n >> 8 not in _RESERVED_24
    )
