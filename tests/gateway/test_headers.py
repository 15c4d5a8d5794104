"""Header hygiene: hop-by-hop removal, internal namespace stripping, X-Forwarded-*."""

from __future__ import annotations

import pytest
from tests.gateway.conftest import Client, raw_request, status_of, topology_text


def test_hop_by_hop_and_connection_named_headers_are_removed(gateway, upstream):
    """Connection and what it names, Keep-Alive, TE, Trailer, Upgrade, Proxy-* stay at the edge."""
    response = raw_request(
        gateway.port,
        b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\r\n"
        b"Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
        b"TE: trailers\r\nTrailer: X-T\r\nProxy-Authorization: Basic abc\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"Upgrade: h2c\r\nX-Kept: yes\r\n\r\n",
    )
    assert status_of(response) == 200
    got = upstream.last()
    for name in (
        "connection",
        "x-secret-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
    ):
        assert name not in got.names(), name
    assert got.header("x-kept") == "yes"


def test_client_supplied_internal_headers_are_stripped(gateway, upstream):
    """Nothing in X-Ramparts-*, nor a forged identity, reaches the service from a client."""
    c = Client(gateway.port)
    status, _, _ = c.request(
        "GET",
        "/v1/accounts",
        [
            ("X-Ramparts-Subject", "admin"),
            ("x-ramparts-scopes", "everything"),
            ("X-RAMPARTS-ISSUER", "https://evil"),
            ("X-Ramparts-Anything", "1"),
            ("Forwarded", "for=1.2.3.4"),
            ("X-Real-IP", "1.2.3.4"),
            ("X-Forwarded-Host", "evil"),
        ],
    )
    assert status == 200
    got = upstream.last()
    assert not any(n.startswith("x-ramparts-") for n in got.names())
    assert "forwarded" not in got.names()
    assert "x-real-ip" not in got.names()
    assert "x-forwarded-host" not in got.names()


def test_untrusted_peer_gets_its_own_address_in_xff(gateway, upstream):
    """A client's X-Forwarded-For chain is replaced by the TCP peer when the peer is not trusted."""
    c = Client(gateway.port)
    c.request(
        "GET", "/v1/accounts", [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https")]
    )
    got = upstream.last()
    assert got.header("x-forwarded-for") == "127.0.0.1"
    assert got.header("x-forwarded-proto") == "http"


@pytest.mark.parametrize(
    ("inbound", "expected_chain", "expected_client"),
    [
        (["203.0.113.9"], "203.0.113.9, 127.0.0.1", "203.0.113.9"),
        (["198.51.100.1, 203.0.113.9"], "198.51.100.1, 203.0.113.9, 127.0.0.1", "203.0.113.9"),
        (["203.0.113.9", "127.0.0.5"], "203.0.113.9, 127.0.0.5, 127.0.0.1", "203.0.113.9"),
        (["not-an-ip"], "127.0.0.1", "127.0.0.1"),
    ],
)
def test_trusted_proxy_chain_is_extended(  # noqa: PLR0917 - fixtures plus parameters
    upstream, upstream2, make_gateway, inbound, expected_chain, expected_client
):
    """From a configured trusted proxy the chain is kept and the peer appended; junk discards it."""
    gw = make_gateway(
        topology_text(
            upstream.port, upstream2.port, gateway_extra="  trusted_proxies: [127.0.0.0/8]"
        )
    )
    c = Client(gw.port)
    headers = [("X-Forwarded-For", v) for v in inbound] + [("X-Forwarded-Proto", "https")]
    c.request("GET", "/v1/accounts", headers)
    got = upstream.last()
    assert got.header("x-forwarded-for") == expected_chain
    assert got.header("x-forwarded-proto") == "https"
    assert gw.access_lines()[-1]["client_ip"] == expected_client


def test_authorization_and_expect_are_not_forwarded(gateway, upstream):
    c = Client(gateway.port)
    c.request("GET", "/v1/accounts", [("Authorization", "Bearer abc")])
    assert "authorization" not in upstream.last().names()


def test_response_hop_by_hop_headers_are_removed(upstream, upstream2, make_gateway):
    def handler(req):
        body = b"hello"
        return (
            200,
            [
                ("connection", "x-up-hop"),
                ("x-up-hop", "1"),
                ("keep-alive", "timeout=1"),
                ("x-app", "v"),
                ("content-length", "5"),
            ],
            body,
        )

    upstream.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    status, headers, body = c.request("GET", "/v1/accounts")
    assert status == 200 and body == b"hello"
    assert "x-up-hop" not in headers
    assert "keep-alive" not in headers
    assert headers["x-app"] == "v"
