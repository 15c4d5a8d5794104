"""Proxying: keep-alive on both sides, pooling, streaming, framing, failures, timeouts."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import tracemalloc

from tests.gateway.conftest import (
    Client,
    raw_request,
    response_headers,
    status_of,
    topology_text,
    wait_for,
)

from ramparts.gateway import GatewayOptions


def test_keep_alive_is_reused_on_both_sides(gateway, upstream):
    """Ten requests on one client connection use one upstream connection."""
    c = Client(gateway.port)
    for i in range(10):
        status, _, body = c.request("GET", f"/v1/accounts/{i}")
        assert status == 200, body
    assert len(upstream.requests) == 10
    assert upstream.connections == 1
    assert {r.connection for r in upstream.requests} == {1}


def test_pooled_connection_is_shared_across_clients(gateway, upstream):
    for i in range(3):
        c = Client(gateway.port)
        assert c.request("GET", f"/v1/accounts/{i}")[0] == 200
        c.close()
    assert upstream.connections == 1


def test_pipelined_requests_are_answered_in_order(gateway, upstream):
    c = Client(gateway.port)
    c.send_raw(
        b"".join(b"GET /v1/accounts/%d HTTP/1.1\r\nHost: gw.test\r\n\r\n" % i for i in range(5))
    )
    paths = []
    for _ in range(5):
        status, _, body = c.read_response()
        assert status == 200
        paths.append(body)
    assert [b'"/v1/accounts/%d"' % i in p for i, p in enumerate(paths)] == [True] * 5


def test_http10_client_gets_close_delimited_or_length(gateway, upstream):
    response = raw_request(gateway.port, b"GET /v1/accounts HTTP/1.0\r\n\r\n")
    assert status_of(response) == 200
    assert response_headers(response)["connection"] == "close"
    assert upstream.last().header("host") == f"127.0.0.1:{upstream.port}"


def test_chunked_response_is_streamed_to_client(upstream, upstream2, make_gateway):
    """A response without Content-Length reaches an HTTP/1.1 client chunked, intact."""
    payload = os.urandom(200_000)

    def handler(req):
        return 200, [("content-type", "application/octet-stream")], payload  # h11 chunks it

    upstream.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    status, headers, body = c.request("GET", "/v1/accounts")
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    assert body == payload
    # ...and the connection is still good.
    assert c.request("GET", "/v1/accounts")[0] == 200


def test_head_response_has_no_body(upstream, upstream2, make_gateway):
    def handler(req):
        return 200, [("content-length", "1234")], b""

    upstream.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    status, headers, body = c.request("HEAD", "/v1/accounts")
    assert status == 200 and body == b""
    assert headers["content-length"] == "1234"
    status, _, _ = c.request("HEAD", "/v1/accounts")
    assert status == 200


def test_expect_continue_is_answered_by_the_gateway(gateway, upstream2):
    c = Client(gateway.port)
    c.send_raw(
        b"POST /v1/payments HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    first = c.sock.recv(100)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.send_raw(b"hello")
    status, _, _ = c.read_response()
    assert status == 200
    got = upstream2.last()
    assert got.body == b"hello"
    assert "expect" not in got.names()


def test_expect_continue_denied_request_never_gets_continue(gateway, upstream2):
    c = Client(gateway.port)
    c.send_raw(
        b"POST /v1/payments HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5000\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    status, _, _ = c.read_response()
    assert status == 413
    assert upstream2.connections == 0


def test_large_body_streams_with_bounded_memory(upstream, upstream2, make_gateway):
    """50 MB up through the gateway (and 1 MB back); never held whole anywhere."""
    size = 50 * 1024 * 1024
    upstream.count_body_only = True

    def handler(req):
        body = b"r" * (1024 * 1024)
        return 200, [("content-length", str(len(body)))], body

    upstream.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    tracemalloc.start()
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=30)
    sock.sendall(b"POST /v1/big HTTP/1.1\r\nHost: gw.test\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"x" * (1 << 20)
    sent = 0
    peak_buffered = 0
    while sent < size:
        sock.sendall(block)
        sent += len(block)
        conns = list(gw.gateway.upstream_connections)
        for up in conns:
            if up.transport is not None:
                peak_buffered = max(peak_buffered, up.transport.get_write_buffer_size())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    received = len(rest)
    while received < 1024 * 1024:
        chunk = sock.recv(1 << 20)
        assert chunk
        received += len(chunk)
    sock.close()
    assert upstream.body_lengths[-1] == size
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Everything in this process (test client, gateway, upstream threads) never
    # held more than a small fraction of the 50 MB at once.
    assert peak < 16 * 1024 * 1024, peak
    assert peak_buffered < 4 * 1024 * 1024


def test_upstream_down_is_502(upstream, make_gateway):
    gw = make_gateway(topology_text(upstream.port))  # payments points at a closed port
    c = Client(gw.port)
    status, _headers, body = c.request("GET", "/v1/slow")
    assert status == 502
    assert b"upstream unavailable" in body
    assert c.request("GET", "/v1/accounts")[0] == 200


def test_upstream_timeout_is_504(upstream, upstream2, make_gateway):
    release = threading.Event()

    def handler(req):
        release.wait(5)
        return 200, [("content-length", "0")], b""

    upstream2.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    status, _, _ = c.request("GET", "/v1/slow")
    release.set()
    assert status == 504


def test_route_timeout_is_inactivity_not_total(upstream, upstream2, make_gateway):
    """A response that keeps flowing may take longer than the route timeout (0.5 s) in total."""

    def handler(req):
        return 200, [("content-type", "text/plain")], [b"piece-%d;" % i for i in range(6)]

    upstream2.handler = handler
    upstream2.stream_delay = 0.2
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port),
        options=GatewayOptions(plain_upstreams=True, sweep_interval=0.05),
    )
    c = Client(gw.port)
    status, _, body = c.request("GET", "/v1/slow")
    assert status == 200
    assert body == b"".join(b"piece-%d;" % i for i in range(6))


def test_stale_pooled_connection_is_retried_once(upstream, upstream2, make_gateway):
    """The service closed an idle pooled connection: a bodyless request is retried on a new one."""
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    assert c.request("GET", "/v1/accounts")[0] == 200
    pool = gw.gateway.state.pools["accounts"]
    wait_for(lambda: pool.idle, what="an idle pooled connection")
    # Close the service side of the idle connection, as a service restart would.
    for conn in list(gw.gateway.upstream_connections):
        gw.call(conn.transport.abort)
    assert c.request("GET", "/v1/accounts")[0] == 200


def test_slow_client_header_deadline(upstream, upstream2, make_gateway):
    """A client that dribbles its head gets 408 and a closed connection (slowloris)."""
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port),
        options=GatewayOptions(plain_upstreams=True, header_timeout=0.5, sweep_interval=0.05),
    )
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.sendall(b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\r\n")
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert status_of(data) == 408
    assert upstream.connections == 0
    assert len(gw.sink.of_type("request.malformed")) == 1


def test_idle_keepalive_connection_is_closed(upstream, upstream2, make_gateway):
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port),
        options=GatewayOptions(plain_upstreams=True, keepalive_timeout=0.3, sweep_interval=0.05),
    )
    c = Client(gw.port)
    assert c.request("GET", "/v1/accounts")[0] == 200
    assert c.closed_by_peer()


def test_response_carries_request_id_and_access_log_line(gateway, upstream):
    c = Client(gateway.port)
    _status, headers, _ = c.request("GET", "/v1/accounts/9")
    rid = headers["x-request-id"]
    assert upstream.last().header("x-request-id") == rid
    line = wait_for(lambda: [x for x in gateway.access_lines() if x["correlation_id"] == rid])[0]
    assert line["status"] == 200
    assert line["route"] == "/v1/accounts"
    assert line["path"] == "/v1/accounts/9"
    assert line["latency_ms"] >= 0
    assert "subject" in line


def test_client_disconnect_mid_request_frees_upstream(upstream, upstream2, make_gateway):
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.sendall(
        b"POST /v1/big HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
    )
    wait_for(lambda: upstream.connections == 1, what="upstream connection")
    sock.close()
    wait_for(lambda: not gw.gateway.connections, what="client connection cleanup")
    wait_for(lambda: not gw.gateway.upstream_connections, what="upstream connection closed")


def test_many_concurrent_clients(gateway, upstream):
    errors = []

    def worker(n):
        try:
            c = Client(gateway.port)
            for i in range(5):
                assert c.request("GET", f"/v1/accounts/{n}-{i}")[0] == 200
            c.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(upstream.requests) == 100
    assert upstream.connections <= 20


def test_connection_close_is_honoured(gateway, upstream):
    c = Client(gateway.port)
    status, headers, _ = c.request("GET", "/v1/accounts", [("Connection", "close")])
    assert status == 200
    assert headers["connection"] == "close"
    assert c.closed_by_peer()
    # The upstream connection is still pooled: client-side close is hop-by-hop.
    assert "connection" not in upstream.last().names()


def test_http10_keep_alive_client(gateway, upstream):
    c = Client(gateway.port)
    for _ in range(2):
        c.send_raw(b"GET /v1/accounts HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, body = c.read_response()
        assert status == 200
        assert headers["connection"] == "keep-alive"
        assert int(headers["content-length"]) == len(body)


def test_pipelining_flood_is_cut_off(gateway, upstream):
    """Hundreds of pipelined requests in one write: cut off, so memory stays bounded."""
    flood = b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\r\n\r\n" * 500
    response = raw_request(gateway.port, flood)
    assert response.count(b"HTTP/1.1 200") < 100
    assert len(gateway.sink.of_type("request.malformed")) == 1


def test_access_log_masks_pii_in_the_path(gateway, upstream):
    """A phone number or card number in a URL never reaches the log in clear."""
    c = Client(gateway.port)
    _, headers, _ = c.request("GET", "/v1/accounts/08031234567?pin=1234")
    line = next(x for x in gateway.access_lines() if x["correlation_id"] == headers["x-request-id"])
    assert "08031234567" not in line["path"]
    assert line["path"].startswith("/v1/accounts/")
    assert "pin" not in json.dumps(line)


def test_slow_reader_pauses_the_upstream(upstream, upstream2, make_gateway):
    """A client that does not read: the gateway stops reading the service instead of buffering."""
    size = 20 * 1024 * 1024
    payload = b"d" * size
    upstream.count_body_only = True

    def handler(req):
        return 200, [("content-length", str(size))], payload

    upstream.handler = handler
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.sendall(b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\r\n\r\n")

    def upstream_paused():
        return [u for u in list(gw.gateway.upstream_connections) if u.read_paused]

    paused = wait_for(upstream_paused, what="the gateway to stop reading the service")[0]
    client = next(iter(gw.gateway.connections))
    assert client.transport.get_write_buffer_size() < 4 * 1024 * 1024
    assert paused.transport is not None
    received = 0
    while received < size:
        chunk = sock.recv(1 << 20)
        assert chunk
        received += len(chunk)
    sock.close()
    assert received >= size


def test_connections_per_upstream_are_capped(upstream, upstream2, make_gateway):
    """Eight concurrent requests, a cap of two connections: all served, never more than two open."""

    def handler(req):
        time.sleep(0.05)
        return 200, [("content-length", "2")], b"ok"

    upstream.handler = handler
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port),
        options=GatewayOptions(plain_upstreams=True, max_connections_per_upstream=2),
    )
    results = []

    def worker():
        c = Client(gw.port)
        results.append(c.request("GET", "/v1/accounts")[0])
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 8
    assert upstream.connections <= 2
