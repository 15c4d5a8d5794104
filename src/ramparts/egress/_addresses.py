"""Which IP addresses a service may never reach from outside-bound traffic.

The rule is "global unicast or nothing": an address is refused unless Python's
``ipaddress`` calls it global (IANA special-purpose registries) and it is not
multicast. IPv6 forms that carry an IPv4 address inside them (IPv4-mapped,
IPv4-compatible, NAT64, 6to4) are judged by the IPv4 address they carry, so
``[::ffff:169.254.169.254]`` is the metadata service, not a public host.
Teredo is refused outright: its embedded client address is obfuscated and no
webhook endpoint needs it.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Named reasons, most specific first; anything else not global is "not a global address".
_NAMED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("169.254.169.254/32"), "cloud metadata service"),
    (_V4("0.0.0.0/32"), "unspecified address"),
    (_V4("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private network (RFC 1918)"),
    (_V4("172.16.0.0/12"), "private network (RFC 1918)"),
    (_V4("192.168.0.0/16"), "private network (RFC 1918)"),
    (_V4("100.64.0.0/10"), "shared address space / CGNAT (RFC 6598)"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast (deprecated, RFC 7526)"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "limited broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V6("::/128"), "unspecified address"),
    (_V6("::1/128"), "loopback"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local (deprecated)"),
    (_V6("fc00::/7"), "unique local address (private)"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("2001::/32"), "Teredo tunnel"),
)
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")
_COMPATIBLE = _V6("::/96")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the embedding forms."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    packed = int(addr)
    if addr in _NAT64 or (addr in _COMPATIBLE and packed > 1):
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    if addr in _SIX_TO_FOUR:
        return ipaddress.IPv4Address((packed >> 80) & 0xFFFFFFFF)
    return None


def forbidden_reason(addr: IPAddress) -> str | None:
    """Why ``addr`` must not be reached, or None if it is a global unicast address."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"IPv6 form of {inner}: {reason}" if reason else None
    for network, reason in _NAMED:
        if addr.version == network.version and addr in network:
            return reason
    if addr.is_multicast:
        return "multicast"
    if not addr.is_global:
        return "not a global address (IANA special-purpose range)"
    return None
