"""Correlation IDs and W3C trace context: generated, continued only from trusted proxies."""

from __future__ import annotations

import re

import pytest
from tests.gateway.conftest import Client, topology_text

INBOUND_TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TP = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def test_every_request_gets_a_fresh_id_and_trace(gateway, upstream):
    c = Client(gateway.port)
    ids = set()
    for _ in range(3):
        _, headers, _ = c.request("GET", "/v1/accounts")
        rid = headers["x-request-id"]
        got = upstream.last()
        assert got.header("x-request-id") == rid
        match = TP.fullmatch(got.header("traceparent"))
        assert match, got.header("traceparent")
        assert match.group(1) != "0" * 32
        ids.add(rid)
    assert len(ids) == 3


def test_untrusted_inbound_ids_are_replaced(gateway, upstream):
    c = Client(gateway.port)
    _, headers, _ = c.request(
        "GET",
        "/v1/accounts",
        [
            ("X-Request-ID", "client-chosen-id-123"),
            ("traceparent", INBOUND_TP),
            ("tracestate", "a=b"),
        ],
    )
    got = upstream.last()
    assert headers["x-request-id"] != "client-chosen-id-123"
    assert got.header("x-request-id") == headers["x-request-id"]
    assert "4bf92f3577b34da6a3ce929d0e0e4736" not in got.header("traceparent")
    assert got.header("tracestate") is None


@pytest.fixture
def trusted_gateway(upstream, upstream2, make_gateway):
    return make_gateway(
        topology_text(upstream.port, upstream2.port, gateway_extra="  trusted_proxies: [127.0.0.1]")
    )


def test_trusted_proxy_ids_are_continued(trusted_gateway, upstream):
    c = Client(trusted_gateway.port)
    _, headers, _ = c.request(
        "GET",
        "/v1/accounts",
        [("X-Request-ID", "edge-4f1c2a9b"), ("traceparent", INBOUND_TP), ("tracestate", "a=b")],
    )
    assert headers["x-request-id"] == "edge-4f1c2a9b"
    got = upstream.last()
    assert got.header("x-request-id") == "edge-4f1c2a9b"
    match = TP.fullmatch(got.header("traceparent"))
    assert match.group(1) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert match.group(2) != "00f067aa0ba902b7"  # the gateway is a new span
    assert got.header("tracestate") == "a=b"


@pytest.mark.parametrize(
    ("rid", "tp"),
    [
        ("short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
        ("has space in it", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("x" * 200, "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ("bad\u00e9value1", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
    ],
)
def test_malformed_ids_from_trusted_proxy_are_replaced(trusted_gateway, upstream, rid, tp):
    c = Client(trusted_gateway.port)
    _, headers, _ = c.request("GET", "/v1/accounts", [("X-Request-ID", rid), ("traceparent", tp)])
    assert headers["x-request-id"] != rid
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    got = upstream.last()
    assert TP.fullmatch(got.header("traceparent"))
    assert "4bf92f3577b34da6a3ce929d0e0e4736" not in got.header("traceparent").lower()


def test_correlation_id_is_in_events_and_log_lines(gateway, upstream):
    c = Client(gateway.port)
    _, headers, _ = c.request("GET", "/v1/nowhere")
    rid = headers["x-request-id"]
    assert gateway.sink.of_type("route.unknown")[0].correlation_id == rid
    assert [x["status"] for x in gateway.access_lines() if x["correlation_id"] == rid] == [404]
