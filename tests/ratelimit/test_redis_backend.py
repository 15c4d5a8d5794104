"""RedisBackend on a real Redis: the Lua script agrees with the Python GCRA step by step."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis

from ramparts.ratelimit import MemoryBackend, RateLimit, RedisBackend
from ramparts.ratelimit._redis import GCRA_SHA1

pytestmark = pytest.mark.services


@pytest.mark.parametrize(
    "limit",
    [
        RateLimit(rate=10, per=1.0, burst=5),
        RateLimit(rate=3, per=1.0, burst=2),  # interval of 333333.33 us
        RateLimit(rate=100, per=60.0),
        RateLimit(rate=1, per=0.25, burst=4),
    ],
    ids=str,
)
def test_lua_matches_python(redis_url: str, redis_prefix: str, limit: RateLimit) -> None:
    """Same requests at the same instants: same verdicts, remaining, reset and retry (to 1 us)."""
    rng = random.Random(limit.slug)
    start = 1_750_000_000.0  # a Unix time: the magnitude Redis TIME gives
    times, now = [], start
    for _ in range(300):
        now += rng.choice([0.0, 0.0, limit.emission_interval / 3, limit.emission_interval, 0.7])
        times.append(now)

    async def run() -> None:
        backend = RedisBackend.from_url(redis_url, prefix=redis_prefix)
        memory = MemoryBackend()
        try:
            for i, t in enumerate(times):
                got = await backend.decide_at_time("k", limit, t)
                want = await memory.decide_at_time("k", limit, t)
                assert (got.allowed, got.remaining) == (want.allowed, want.remaining), i
                assert got.reset_after == pytest.approx(want.reset_after, abs=2e-6), i
                assert got.retry_after == pytest.approx(want.retry_after, abs=2e-6), i
                assert got.status == want.status
        finally:
            await backend.aclose()

    asyncio.run(run())


def test_server_time_burst_then_deny(redis_url: str, redis_prefix: str) -> None:
    """With Redis TIME: a burst of 5 passes, the sixth is denied with a positive retry_after."""
    limit = RateLimit(rate=5, per=3600.0)

    async def run() -> list[bool]:
        backend = RedisBackend.from_url(redis_url, prefix=redis_prefix)
        try:
            decisions = [await backend.decide("k", limit) for _ in range(6)]
        finally:
            await backend.aclose()
        assert decisions[-1].retry_after == pytest.approx(720.0, abs=1.0)
        assert decisions[-1].status == 429
        return [d.allowed for d in decisions]

    assert asyncio.run(run()) == [True] * 5 + [False]


def test_keys_live_under_prefix_with_ttl(redis_url: str, redis_prefix: str) -> None:
    """State is one string under the prefix whose TTL ends when the TAT passes."""
    limit = RateLimit(rate=1, per=10.0, burst=3)

    async def run() -> None:
        backend = RedisBackend.from_url(redis_url, prefix=redis_prefix)
        try:
            await backend.decide("ip|r|198.51.100.1", limit)
            await backend.decide("ip|r|198.51.100.1", limit)
        finally:
            await backend.aclose()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=redis_prefix + "*"))
        assert keys == [(redis_prefix + "ip|r|198.51.100.1").encode()]
        ttl_ms = client.pttl(keys[0])
        assert 19_000 < ttl_ms <= 20_000  # two intervals of 10 s
    finally:
        client.close()


def test_noscript_falls_back_to_eval_and_recaches(own_redis) -> None:
    """After SCRIPT FLUSH the next decision still works (EVAL), and EVALSHA works again after."""
    limit = RateLimit(rate=2, per=60.0)
    client = redis.Redis.from_url(own_redis.url)

    async def decide() -> bool:
        backend = RedisBackend.from_url(own_redis.url, prefix="t:")
        try:
            return (await backend.decide("k", limit)).allowed
        finally:
            await backend.aclose()

    try:
        assert client.script_exists(GCRA_SHA1) == [False]
        assert asyncio.run(decide())
        assert client.script_exists(GCRA_SHA1) == [True]
        client.script_flush()
        assert asyncio.run(decide())
        assert client.script_exists(GCRA_SHA1) == [True]
        assert not asyncio.run(decide())
        calls = client.info("commandstats")
        assert calls["cmdstat_eval"]["calls"] == 2  # the first call and the one after the flush
        assert calls["cmdstat_evalsha"]["calls"] == 3
    finally:
        client.close()


def test_empty_prefix_is_rejected(redis_url: str) -> None:
    """Without a prefix limiter keys would mix with every other key in the database."""
    with pytest.raises(ValueError, match="prefix"):
        RedisBackend(redis.asyncio.Redis.from_url(redis_url), prefix="")


def test_more_concurrent_requests_than_connections(redis_url: str, redis_prefix: str) -> None:
    """A full pool makes requests wait for a connection, not fail as if Redis were down."""
    limit = RateLimit(rate=1000, per=60.0)

    async def run() -> list[bool]:
        backend = RedisBackend.from_url(redis_url, prefix=redis_prefix, max_connections=2)
        try:
            decisions = await asyncio.gather(*(backend.decide("k", limit) for _ in range(50)))
        finally:
            await backend.aclose()
        return [d.allowed for d in decisions]

    assert asyncio.run(run()) == [True] * 50
