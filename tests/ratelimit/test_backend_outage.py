"""Redis goes away and comes back: fail open or closed, one event per outage window.

Each test runs its own redis-server process, kills it, and starts it again on
the same port. The limiter's probe clock is injected, so "time passes" is a
variable, not a sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from ramparts.events import EventEmitter, MemorySink, Outcome
from ramparts.ratelimit import (
    BACKEND_RECOVERED,
    BACKEND_UNAVAILABLE,
    EXCEEDED,
    RateLimit,
    RateLimiter,
    RedisBackend,
    key_for,
)

pytestmark = pytest.mark.services

LIMIT = RateLimit.parse("3/h", key="ip")
KEY = key_for("ip", "192.0.2.10", route="accounts")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until_recovered(limiter: RateLimiter, clock: Clock) -> int:
    """Probe (advancing the fake clock past each probe interval) until Redis answers."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        clock.now += limiter.probe_interval
        decision = await limiter.check(KEY, LIMIT)
        if not decision.degraded:
            return decision.remaining
        await asyncio.sleep(0.01)
    raise AssertionError("limiter did not see Redis come back within 10 s")


def test_fail_open(own_redis) -> None:
    """Open: during an outage every request passes, and one event marks the window."""
    sink = MemorySink()
    clock = Clock()

    async def run() -> None:
        backend = RedisBackend.from_url(own_redis.url, prefix="rl:", timeout=0.5)
        limiter = RateLimiter(
            backend, EventEmitter([sink], service="gateway"), on_backend_error="open", clock=clock
        )
        try:
            assert (await limiter.check(KEY, LIMIT)).remaining == 2
            own_redis.kill()
            for _ in range(20):
                decision = await limiter.check(KEY, LIMIT)
                assert decision.allowed
                assert decision.degraded
                assert decision.headers() == []
                clock.now += 0.3
            assert limiter.backend_down
            assert len(sink.of_type(BACKEND_UNAVAILABLE)) == 1
            assert sink.of_type(BACKEND_UNAVAILABLE)[0].outcome is Outcome.ALLOW

            own_redis.start()  # empty: no persistence, so the key starts afresh
            assert await until_recovered(limiter, clock) == 2
            assert not limiter.backend_down
            assert len(sink.of_type(BACKEND_RECOVERED)) == 1

            # A second outage is a second window: a second event.
            own_redis.kill()
            assert (await limiter.check(KEY, LIMIT)).allowed
            assert (await limiter.check(KEY, LIMIT)).allowed
            assert len(sink.of_type(BACKEND_UNAVAILABLE)) == 2
        finally:
            await backend.aclose()

    asyncio.run(run())
    assert sink.of_type(EXCEEDED) == []


def test_fail_closed(own_redis) -> None:
    """Closed: during an outage every request is denied with 503 and its own deny event."""
    sink = MemorySink()
    clock = Clock()

    async def run() -> None:
        backend = RedisBackend.from_url(own_redis.url, prefix="rl:", timeout=0.5)
        limiter = RateLimiter(backend, EventEmitter([sink], service="gateway"), clock=clock)
        try:
            assert (await limiter.check(KEY, LIMIT, peer="192.0.2.10")).allowed
            own_redis.kill()
            for _ in range(5):
                decision = await limiter.check(KEY, LIMIT, peer="192.0.2.10")
                assert not decision.allowed
                assert decision.status == 503
                assert decision.degraded
                assert dict(decision.headers()) == {"Retry-After": "1"}
            events = sink.of_type(BACKEND_UNAVAILABLE)
            assert len(events) == 5
            assert {e.outcome for e in events} == {Outcome.DENY}
            assert events[0].peer == "192.0.2.10"
            assert events[0].detail["route"] == "accounts"
            assert events[0].detail["on_backend_error"] == "closed"

            own_redis.start()
            assert await until_recovered(limiter, clock) == 2
            assert len(sink.of_type(BACKEND_RECOVERED)) == 1
        finally:
            await backend.aclose()

    asyncio.run(run())


def test_outage_probes_the_backend_once_per_interval(own_redis) -> None:
    """While down, requests inside one probe interval do not wait on Redis again."""
    clock = Clock()
    attempts = 0

    class CountingBackend(RedisBackend):
        async def decide(self, key, limit):  # type: ignore[no-untyped-def]
            nonlocal attempts
            attempts += 1
            return await super().decide(key, limit)

    async def run() -> None:
        backend = CountingBackend.from_url(own_redis.url, prefix="rl:", timeout=0.5)
        limiter = RateLimiter(
            backend,
            EventEmitter([MemorySink()], service="gateway"),
            on_backend_error="open",
            probe_interval=5.0,
            clock=clock,
        )
        try:
            own_redis.kill()
            for _ in range(10):
                await limiter.check(KEY, LIMIT)
                clock.now += 0.1
            assert attempts == 1
            clock.now += 5.0
            await limiter.check(KEY, LIMIT)
            assert attempts == 2
        finally:
            await backend.aclose()

    asyncio.run(run())


def test_hung_redis_times_out_to_fallback(own_redis) -> None:
    """A Redis that accepts but never answers (SIGSTOP) is an outage after `timeout`."""
    sink = MemorySink()

    async def run() -> None:
        backend = RedisBackend.from_url(own_redis.url, prefix="rl:", timeout=0.2)
        limiter = RateLimiter(backend, EventEmitter([sink], service="gateway"), clock=Clock())
        try:
            assert (await limiter.check(KEY, LIMIT)).allowed
            os.kill(own_redis.proc.pid, signal.SIGSTOP)
            try:
                decision = await limiter.check(KEY, LIMIT)
            finally:
                os.kill(own_redis.proc.pid, signal.SIGCONT)
            assert (decision.allowed, decision.status) == (False, 503)
        finally:
            await backend.aclose()

    asyncio.run(run())
    assert len(sink.of_type(BACKEND_UNAVAILABLE)) == 1


def test_redis_refusing_writes_is_an_outage(own_redis) -> None:
    """An out-of-memory Redis (writes refused) is handled like an unreachable one."""
    import redis

    admin = redis.Redis.from_url(own_redis.url)
    sink = MemorySink()

    async def run() -> None:
        backend = RedisBackend.from_url(own_redis.url, prefix="rl:")
        limiter = RateLimiter(backend, EventEmitter([sink], service="gateway"), clock=Clock())
        try:
            decision = await limiter.check(KEY, LIMIT)
            assert (decision.allowed, decision.status) == (False, 503)
        finally:
            await backend.aclose()

    try:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        asyncio.run(run())
    finally:
        admin.close()
    (event,) = sink.of_type(BACKEND_UNAVAILABLE)
    assert event.outcome is Outcome.DENY
