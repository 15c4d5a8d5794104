"""Who the client is: trusted proxies, ``X-Forwarded-For`` and ``X-Forwarded-Proto``.

The address the gateway reports downstream is the TCP peer, unless that peer
is one of the configured ``trusted_proxies``; only then is the inbound chain
believed, and the client is the rightmost address in it that is not itself a
trusted proxy (the leftmost entries are whatever the client typed). A chain
with any entry that is not an IP address is discarded whole: it was not built
by a proxy we trust, so none of it is evidence.

>>> trust = TrustedProxies(["10.0.0.0/8"])
>>> trust.client_chain("10.1.2.3", [b"203.0.113.9, 10.9.9.9"])
('203.0.113.9', '203.0.113.9, 10.9.9.9, 10.1.2.3')
>>> trust.client_chain("198.51.100.7", [b"1.2.3.4"])
('198.51.100.7', '198.51.100.7')
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["TrustedProxies"]

# A forwarded chain longer than this is not from any real proxy path.
MAX_CHAIN_ENTRIES = 32
# Distinct peer addresses remembered per worker (the cache key is the peer
# address the kernel gave us, not client input, but a scan can still vary it).
_CACHE_LIMIT = 4096

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"trusted_proxies entry {entry!r} is not an IP address or CIDR range"
            ) from None
    return tuple(out)


class TrustedProxies:
    """The configured proxy networks, with a bounded per-address cache."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.networks = _parse_networks(entries)
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def is_trusted(self, address: str) -> bool:
        if not self.networks:
            return False
        hit = self._cache.get(address)
        if hit is not None:
            return hit
        try:
            ip = ipaddress.ip_address(address.partition("%")[0])
        except ValueError:
            trusted = False
        else:
            mapped = getattr(ip, "ipv4_mapped", None)
            if mapped is not None:
                ip = mapped
            trusted = any(ip in net for net in self.networks)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[address] = trusted
        return trusted

    def client_chain(self, peer: str, inbound: Sequence[bytes]) -> tuple[str, str]:
        """(client address, X-Forwarded-For value to send) for a request from ``peer``.

        ``inbound`` holds every X-Forwarded-For field the request carried, in order.
        """
        if not inbound or not self.is_trusted(peer):
            return peer, peer
        entries: list[str] = []
        for field in inbound:
            for item in field.split(b","):
                text = item.strip().decode("latin-1")
                if not text:
                    continue
                try:
                    entries.append(str(ipaddress.ip_address(text)))
                except ValueError:
                    return peer, peer
        if not entries or len(entries) > MAX_CHAIN_ENTRIES:
            return peer, peer
        client = peer
        for address in reversed(entries):
            client = address
            if not self.is_trusted(address):
                break
        return client, ", ".join([*entries, peer])
