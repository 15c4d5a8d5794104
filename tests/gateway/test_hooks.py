"""Pluggable stages: a WAF hook in its place in the pipeline; a Redis-backed limiter."""

from __future__ import annotations

import pytest
from tests.gateway.conftest import Client, topology_text

from ramparts.events import EventEmitter, MemorySink
from ramparts.gateway import Reply, Request
from ramparts.ratelimit import RateLimiter, RedisBackend

ROUTES = """
    - prefix: /v1/accounts
      service: accounts
      auth: none
    - prefix: /v1/nowaf
      service: accounts
      auth: none
      waf: "off"
    - prefix: /v1/detect
      service: accounts
      auth: none
      waf: detect
    - prefix: /v1/limited
      service: accounts
      auth: none
      rate_limit: {rate: 2/min, burst: 2, key: ip}
"""


class RecordingWAF:
    """A stand-in WAF engine: blocks a marker in the query, records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    async def inspect(self, req: Request, mode: str) -> Reply | None:
        # The WAF runs after routing: it sees the normalised path and the route.
        assert req.route is not None
        self.seen.append((mode, req.path, req.correlation_id))
        # The WAF sees headers as received, including ones never forwarded.
        assert (b"authorization", b"Bearer secret-ish") in req.raw_headers
        assert (b"authorization", b"Bearer secret-ish") not in req.headers
        if mode == "block" and req.query and "attack" in req.query:
            return Reply(403, "forbidden", "blocked by WAF")
        return None


def test_waf_hook_runs_after_routing_and_can_block(upstream, upstream2, make_gateway):
    waf = RecordingWAF()
    gw = make_gateway(topology_text(upstream.port, upstream2.port, routes=ROUTES), waf=waf)
    c = Client(gw.port)
    auth = [("Authorization", "Bearer secret-ish")]
    assert c.request("GET", "/v1/accounts?q=attack", auth)[0] == 403
    assert c.request("GET", "/v1/accounts?q=fine", auth)[0] == 200
    assert c.request("GET", "/v1/nowaf?q=attack", auth)[0] == 200
    assert c.request("GET", "/v1/detect?q=attack", auth)[0] == 200
    assert (
        c.request("GET", "/v1/nowhere?q=attack", auth)[0] == 404
    )  # unknown route: WAF never asked
    assert [(m, p) for m, p, _ in waf.seen] == [
        ("block", "/v1/accounts"),
        ("block", "/v1/accounts"),
        ("detect", "/v1/detect"),
    ]
    assert all(cid for _, _, cid in waf.seen)
    assert len(upstream.requests) == 3


def test_pipeline_order_is_fixed(upstream, upstream2, make_gateway):
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port, routes=ROUTES), waf=RecordingWAF()
    )
    names = gw.gateway.state.pipeline.names
    assert names == ["correlation", "hygiene", "route", "waf", "jwt", "ratelimit"]


@pytest.mark.services
def test_redis_backed_limiter_through_the_gateway(
    upstream, upstream2, make_gateway, redis_url, redis_prefix
):
    """A shared (Redis) limiter: the stage suspends on the network and still decides correctly."""
    sink = MemorySink()
    emitter = EventEmitter([sink], service="gateway")
    limiter = RateLimiter(RedisBackend.from_url(redis_url, prefix=redis_prefix), emitter)
    gw = make_gateway(
        topology_text(upstream.port, upstream2.port, routes=ROUTES),
        emitter=emitter,
        limiter=limiter,
    )
    # redis-py needs a real task (asyncio.timeout): this route is not driven eagerly.
    assert gw.gateway.state.pipeline.eager["/v1/limited"] is False
    c = Client(gw.port)
    statuses = [c.request("GET", "/v1/limited")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    events = sink.of_type("ratelimit.exceeded")
    assert len(events) == 1
    assert events[0].correlation_id
