"""RateLimiter: one ratelimit.exceeded event per deny, none for admissions."""

from __future__ import annotations

import asyncio

import pytest

from ramparts.events import EventEmitter, MemorySink, Outcome
from ramparts.ratelimit import EXCEEDED, MemoryBackend, RateLimit, RateLimiter, key_for
from ramparts.telemetry.context import bind_correlation


def make(**kw: object) -> tuple[RateLimiter, MemorySink]:
    sink = MemorySink()
    limiter = RateLimiter(MemoryBackend(), EventEmitter([sink], service="gateway"), **kw)  # type: ignore[arg-type]
    return limiter, sink


def test_every_deny_emits_one_exceeded_event() -> None:
    """Three denies, three events, each naming the key kind, route and limit."""
    limiter, sink = make()
    limit = RateLimit.parse("2/min", key="ip")
    key = key_for("ip", "203.0.113.9", route="payments")

    async def run() -> list[bool]:
        with bind_correlation("req-77"):
            return [
                (await limiter.check_at_time(key, limit, 5.0, peer="203.0.113.9")).allowed
                for _ in range(5)
            ]

    assert asyncio.run(run()) == [True, True, False, False, False]
    events = sink.events
    assert len(events) == 3
    event = events[0]
    assert event.type == EXCEEDED
    assert event.outcome is Outcome.DENY
    assert event.peer == "203.0.113.9"
    assert event.correlation_id == "req-77"
    assert event.detail["key_kind"] == "ip"
    assert event.detail["key"] == "203.0.113.9"
    assert event.detail["route"] == "payments"
    assert event.detail["limit"] == "2/60s"
    assert event.detail["burst"] == 2
    assert event.detail["retry_after"] == pytest.approx(30.0)


def test_api_key_never_reaches_the_event() -> None:
    """The event for an API-key limit carries the digest, never the key."""
    limiter, sink = make()
    secret = "rk_live_very_secret_api_key_0123456789"
    limit = RateLimit.parse("1/h", key="api_key")
    key = key_for("api_key", secret, route="statements")

    async def run() -> None:
        await limiter.check_at_time(key, limit, 0.0)
        await limiter.check_at_time(key, limit, 0.0)

    asyncio.run(run())
    (event,) = sink.of_type(EXCEEDED)
    assert secret not in event.to_json()
    assert event.detail["key"] == key.value


def test_limits_on_one_key_do_not_share_state() -> None:
    """A per-second and a per-hour limit on the same key each keep their own count."""
    limiter, _ = make()
    per_second = RateLimit.parse("1/s")
    per_hour = RateLimit.parse("3/h")
    key = key_for("ip", "198.51.100.4")

    async def run() -> list[bool]:
        out = []
        for t in (0.0, 1.0, 2.0, 3.0):
            out.append((await limiter.check_at_time(key, per_second, t)).allowed)
            out.append((await limiter.check_at_time(key, per_hour, t)).allowed)
        return out

    assert asyncio.run(run()) == [True, True, True, True, True, True, True, False]


def test_admissions_emit_nothing() -> None:
    """Allowed requests are the hot path: no event per request."""
    limiter, sink = make()
    limit = RateLimit.parse("100/s")

    async def run() -> None:
        for i in range(50):
            await limiter.check(key_for("subject", f"user-{i % 3}"), limit)

    asyncio.run(run())
    assert sink.events == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"on_backend_error": "maybe"}, "on_backend_error"), ({"probe_interval": 0}, "probe")],
)
def test_bad_options_rejected(kwargs: dict[str, object], fragment: str) -> None:
    """Unknown outage policies and non-positive probe intervals fail at build time."""
    with pytest.raises(ValueError, match=fragment):
        make(**kwargs)
