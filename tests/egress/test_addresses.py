"""Which addresses the guard refuses, as a table across IPv4, IPv6 and the embedding forms."""

from __future__ import annotations

import ipaddress

import pytest

from ramparts.egress import embedded_ipv4, forbidden_reason


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("169.254.0.1", "link-local"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "RFC 1918"),
        ("172.16.5.4", "RFC 1918"),
        ("172.31.255.255", "RFC 1918"),
        ("192.168.1.1", "RFC 1918"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.255", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this network"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "not a global"),  # TEST-NET-1
        ("198.18.0.1", "not a global"),  # benchmarking
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("fd00::1", "unique local"),
        ("fc00::1", "unique local"),
        ("ff02::1", "multicast"),
        ("::ffff:169.254.169.254", "IPv6 form of 169.254.169.254"),
        ("::ffff:10.0.0.1", "IPv6 form of 10.0.0.1"),
        ("::127.0.0.1", "IPv6 form of 127.0.0.1"),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", "IPv6 form of 169.254.169.254"),  # NAT64
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:a9fe:a9fe::", "IPv6 form of 169.254.169.254"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:3f57:fdf2", "Teredo"),
        ("2001:db8::1", "not a global"),  # documentation
    ],
)
def test_refused(addr: str, reason: str) -> None:
    got = forbidden_reason(ipaddress.ip_address(addr))
    assert got is not None and reason in got, got


@pytest.mark.parametrize(
    "addr",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2607:f8b0:400a:807::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ],
)
def test_global_addresses_pass(addr: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(addr)) is None


def test_embedded_forms() -> None:
    v4 = ipaddress.IPv4Address("10.1.2.3")
    for form in ("::ffff:10.1.2.3", "::10.1.2.3", "64:ff9b::10.1.2.3", "2002:0a01:0203::1"):
        assert embedded_ipv4(ipaddress.IPv6Address(form)) == v4, form
    assert embedded_ipv4(ipaddress.IPv6Address("::1")) is None
    assert embedded_ipv4(ipaddress.IPv6Address("2607:f8b0::1")) is None
