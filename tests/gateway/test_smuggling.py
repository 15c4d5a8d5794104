"""Request smuggling and malformed requests: 4xx, connection closed, never forwarded.

Each case is sent on a raw socket; the recording upstream must see nothing,
and the gateway must emit one ``request.malformed`` event per case.
"""

from __future__ import annotations

import pytest
from tests.gateway.conftest import raw_request, response_headers, status_of

H = b"Host: gw.test\r\n"
POST = b"POST /v1/accounts HTTP/1.1\r\n" + H

# (name, raw request, expected status)
CASES = [
    ("cl-and-te", POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-and-cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("duplicate-cl-same", POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("duplicate-cl-different", POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("cl-list", POST + b"Content-Length: 3, 3\r\n\r\nabc", 400),
    ("cl-plus", POST + b"Content-Length: +3\r\n\r\nabc", 400),
    ("cl-negative", POST + b"Content-Length: -3\r\n\r\nabc", 400),
    ("cl-hex", POST + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("cl-overflow", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("te-gzip-chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-gzip", POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("te-identity", POST + b"Transfer-Encoding: identity\r\n\r\n", 400),
    (
        "te-twice",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("te-xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    (
        "te-on-http10",
        b"POST /v1/accounts HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("obs-fold-space", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400),
    ("obs-fold-tab", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n", 400),
    ("bare-lf-in-headers", b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\nX-A: b\r\n\r\n", 400),
    ("bare-lf-everywhere", b"GET /v1/accounts HTTP/1.1\nHost: gw.test\n\n", 400),
    ("bare-cr", b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\rX-A: b\r\n\r\n", 400),
    ("space-before-colon", b"GET /v1/accounts HTTP/1.1\r\nHost : gw.test\r\n\r\n", 400),
    ("tab-before-colon", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X-A\t: b\r\n\r\n", 400),
    ("invalid-name", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X(A: b\r\n\r\n", 400),
    ("empty-name", b"GET /v1/accounts HTTP/1.1\r\n" + H + b": b\r\n\r\n", 400),
    ("nul-in-value", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("ctl-in-value", b"GET /v1/accounts HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("bad-chunk-size", POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-size-space", POST + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400),
    ("chunk-missing-crlf", POST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
    ("chunk-lf-only", POST + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400),
    (
        "chunk-size-overflow",
        POST + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    ("chunk-negative", POST + b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", 400),
    ("http-2.0", b"GET /v1/accounts HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http-1.2", b"GET /v1/accounts HTTP/1.2\r\n" + H + b"\r\n", 400),
    ("http-0.9", b"GET /v1/accounts\r\n\r\n", 505),
    ("missing-host", b"GET /v1/accounts HTTP/1.1\r\n\r\n", 400),
    ("two-hosts", b"GET /v1/accounts HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    (
        "upgrade-websocket",
        b"GET /v1/accounts HTTP/1.1\r\n" + H + b"Connection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        400,
    ),
    (
        "upgrade-h2c-with-body",
        b"POST /v1/accounts HTTP/1.1\r\n"
        + H
        + b"Connection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc",
        400,
    ),
    ("connect", b"CONNECT internal:443 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("lowercase-method", b"get /v1/accounts HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space-in-target", b"GET /v1/acc ounts HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("ctl-in-target", b"GET /v1/acc\x01ounts HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space-before-first-header", b"GET /v1/accounts HTTP/1.1\r\n Host: gw.test\r\n\r\n", 400),
    ("trace-method", b"TRACE /v1/accounts HTTP/1.1\r\n" + H + b"\r\n", 501),
]


@pytest.mark.parametrize(("name", "data", "status"), CASES, ids=[c[0] for c in CASES])
def test_malformed_request_is_rejected_and_never_forwarded(gateway, upstream, name, data, status):
    """Ambiguous or invalid framing: an error status, connection closed, nothing upstream."""
    response = raw_request(gateway.port, data)
    assert status_of(response) == status, response[:200]
    assert response_headers(response).get("connection") == "close"
    assert upstream.requests == []
    if "chunk" not in name:
        # Head-level errors are found before any service is contacted. A bad
        # chunk is found while streaming: the service may have seen the head
        # and part of the body, then the connection closed (never a request).
        assert upstream.connections == 0
    events = gateway.sink.of_type("request.malformed")
    assert len(events) == 1
    assert events[0].correlation_id


def test_smuggled_second_request_in_body_is_not_forwarded(gateway, upstream):
    """CL.TE: a request hidden behind conflicting framing never reaches the service."""
    data = (
        POST + b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"GET /v1/payments/admin HTTP/1.1\r\n" + H + b"\r\n"
    )
    response = raw_request(gateway.port, data)
    assert status_of(response) == 400
    assert response.count(b"HTTP/1.1") == 1
    assert upstream.requests == []


def test_valid_chunked_body_is_reframed(gateway, upstream):
    """A valid chunked request (with extensions and a trailer) reaches the service re-framed."""
    data = (
        POST
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    response = raw_request(gateway.port, data)
    assert status_of(response) == 200
    got = upstream.last()
    assert got.body == b"abcde"
    assert got.header("transfer-encoding") == "chunked"
    assert "x-trailer" not in got.names()
    raw = bytes(upstream.raw[1])
    assert b"ext=1" not in raw
    assert b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" in raw


def test_header_block_too_large_is_431(gateway, upstream):
    big = b"X-Big: " + b"a" * 40000 + b"\r\n"
    response = raw_request(gateway.port, b"GET /v1/accounts HTTP/1.1\r\n" + H + big + b"\r\n")
    assert status_of(response) == 431
    assert upstream.requests == []


def test_too_many_headers_is_431(gateway, upstream):
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    response = raw_request(gateway.port, b"GET /v1/accounts HTTP/1.1\r\n" + H + many + b"\r\n")
    assert status_of(response) == 431
    assert upstream.requests == []


def test_target_too_long_is_414(gateway, upstream):
    response = raw_request(
        gateway.port, b"GET /v1/accounts/" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n"
    )
    assert status_of(response) == 414
    assert upstream.requests == []
