"""Route matching, path normalisation, 404/405/413 — through real sockets."""

from __future__ import annotations

import pytest
from tests.gateway.conftest import Client

from ramparts.config import default_topology
from ramparts.gateway import BadTarget, RouteTable, normalise_target


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/v1/accounts", "/v1/accounts", None),
        (b"/v1/accounts/7?x=1&y=%2F", "/v1/accounts/7", "x=1&y=%2F"),
        (b"/v1/%61ccounts", "/v1/accounts", None),
        (b"/v1/a%7e%2d", "/v1/a~-", None),
        (b"/v1/a%c3%a9", "/v1/a%C3%A9", None),
        (b"/v1/accounts/", "/v1/accounts/", None),
    ],
)
def test_normalise_target_accepts(target, path, query):
    assert normalise_target(target) == (path, query)


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/accounts/../payments",
        b"/v1/accounts/./x",
        b"/v1/accounts/%2e%2e/payments",
        b"/v1/accounts/.%2E/payments",
        b"/v1/accounts%2Fx",
        b"/v1/accounts%2fx",
        b"/v1/accounts%5cx",
        b"/v1/accounts\\x",
        b"/v1/accounts%00",
        b"/v1/accounts%zz",
        b"/v1/accounts%2",
        b"/v1//accounts",
        b"http://evil/v1/accounts",
        b"*",
        b"/v1/accounts#frag",
        b"/v1/\xc3\xa9",
    ],
)
def test_normalise_target_refuses(target):
    with pytest.raises(BadTarget):
        normalise_target(target)


def test_longest_prefix_on_segment_boundary():
    table = RouteTable.from_spec(default_topology().gateway)
    assert table.match("/v1/accounts").prefix == "/v1/accounts"
    assert table.match("/v1/accounts/7/entries").prefix == "/v1/accounts"
    assert table.match("/v1/accountsX") is None
    assert table.match("/v1") is None
    assert table.match("/") is None


def test_unknown_route_is_404_without_contacting_any_service(gateway, upstream, upstream2):
    c = Client(gateway.port)
    status, headers, _body = c.request("GET", "/v1/accountsX")
    assert status == 404
    assert upstream.connections == 0 and upstream2.connections == 0
    events = gateway.sink.of_type("route.unknown")
    assert len(events) == 1
    assert events[0].correlation_id == headers["x-request-id"]
    # The connection stays usable after a deny without a body.
    status, _, _ = c.request("GET", "/v1/accounts")
    assert status == 200


def test_dot_segment_is_400_and_not_forwarded(gateway, upstream):
    c = Client(gateway.port)
    status, _, _ = c.request("GET", "/v1/payments/../accounts")
    assert status == 400
    assert upstream.connections == 0
    assert len(gateway.sink.of_type("request.malformed")) == 1


def test_normalised_path_is_what_the_service_gets(gateway, upstream):
    c = Client(gateway.port)
    status, _, _ = c.request("GET", "/v1/%61ccounts/7?q=%2f")
    assert status == 200
    assert upstream.last().target == "/v1/accounts/7?q=%2f"


def test_method_not_allowed_is_405_with_allow(gateway, upstream2):
    c = Client(gateway.port)
    status, headers, _ = c.request("DELETE", "/v1/payments/1")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, POST"
    assert upstream2.connections == 0
    assert len(gateway.sink.of_type("route.method_not_allowed")) == 1


def test_declared_body_over_route_limit_is_413(gateway, upstream2):
    c = Client(gateway.port)
    status, headers, _ = c.request("POST", "/v1/payments", body=b"x" * 1001)
    assert status == 413
    assert headers["connection"] == "close"
    assert upstream2.connections == 0
    assert len(gateway.sink.of_type("request.too_large")) == 1


def test_chunked_body_over_route_limit_is_413(gateway, upstream2):
    c = Client(gateway.port)
    c.send_raw(
        b"POST /v1/payments HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"3e8\r\n"
        + b"x" * 1000
        + b"\r\n"
        + b"10\r\n"
        + b"y" * 16
        + b"\r\n0\r\n\r\n"
    )
    status, _, _ = c.read_response()
    assert status == 413
    assert upstream2.requests == []
    assert len(gateway.sink.of_type("request.too_large")) == 1


def test_body_within_limit_passes(gateway, upstream2):
    c = Client(gateway.port)
    status, _, _ = c.request("POST", "/v1/payments", body=b"x" * 1000)
    assert status == 200
    assert upstream2.last().body == b"x" * 1000


def test_absolute_form_target_is_refused(gateway, upstream):
    """``GET http://host/path``: the gateway is not a forward proxy; 400, nothing forwarded."""
    c = Client(gateway.port)
    c.send_raw(b"GET http://internal.admin/v1/accounts HTTP/1.1\r\nHost: gw.test\r\n\r\n")
    status, _, _ = c.read_response()
    assert status == 400
    assert upstream.connections == 0
    assert len(gateway.sink.of_type("request.malformed")) == 1


def test_double_encoding_is_not_decoded_twice(gateway, upstream):
    """``%252e%252e`` stays an escaped percent sign: one decoding step, as RFC 3986 intends."""
    c = Client(gateway.port)
    status, _, _ = c.request("GET", "/v1/accounts/%252e%252e/x")
    assert status == 200
    assert upstream.last().target == "/v1/accounts/%252e%252e/x"
