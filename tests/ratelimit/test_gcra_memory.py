"""GCRA and the in-memory backend, exact under an injected clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ramparts.ratelimit import MemoryBackend, RateLimit
from ramparts.ratelimit._gcra import US, gcra_at_time

TEN_PER_S_BURST_5 = RateLimit(rate=10, per=1.0, burst=5)


def test_burst_then_one_per_interval() -> None:
    """An idle key gets `burst` at once, then exactly one per emission interval."""
    backend = MemoryBackend()
    limit = TEN_PER_S_BURST_5
    first = [backend.decide_at_time_nowait("k", limit, 0.0) for _ in range(5)]
    assert [d.allowed for d in first] == [True] * 5
    assert [d.remaining for d in first] == [4, 3, 2, 1, 0]
    assert first[0].reset_after == pytest.approx(0.1)
    assert first[-1].reset_after == pytest.approx(0.5)

    denied = backend.decide_at_time_nowait("k", limit, 0.0)
    assert not denied.allowed
    assert denied.status == 429
    assert denied.remaining == 0
    assert denied.retry_after == pytest.approx(0.1)
    assert denied.reset_after == pytest.approx(0.5)

    # Just before the interval ends: still denied; at it: exactly one more.
    assert not backend.decide_at_time_nowait("k", limit, 0.0999).allowed
    at_interval = backend.decide_at_time_nowait("k", limit, 0.1)
    assert at_interval.allowed
    assert at_interval.remaining == 0
    assert not backend.decide_at_time_nowait("k", limit, 0.1).allowed


def test_denied_requests_do_not_consume() -> None:
    """Hammering while throttled does not push the next admission further away."""
    backend = MemoryBackend()
    limit = RateLimit(rate=1, per=1.0, burst=1)
    assert backend.decide_at_time_nowait("k", limit, 0.0).allowed
    for step in range(1, 100):
        assert not backend.decide_at_time_nowait("k", limit, step / 100).allowed
    assert backend.decide_at_time_nowait("k", limit, 1.0).allowed


def test_idle_key_refills_to_full_burst() -> None:
    """After burst * interval of silence the key has its whole burst again."""
    backend = MemoryBackend()
    limit = TEN_PER_S_BURST_5
    for _ in range(5):
        backend.decide_at_time_nowait("k", limit, 0.0)
    half = backend.decide_at_time_nowait("k", limit, 0.25)
    assert half.allowed
    assert half.remaining == 1  # 2.5 intervals refilled, one just used, floor
    full = [backend.decide_at_time_nowait("k", limit, 10.0) for _ in range(6)]
    assert [d.allowed for d in full] == [True] * 5 + [False]


def test_keys_and_limits_are_independent() -> None:
    """Exhausting one key leaves another untouched."""
    backend = MemoryBackend()
    limit = RateLimit(rate=2, per=1.0)
    assert [backend.decide_at_time_nowait("a", limit, 0.0).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert backend.decide_at_time_nowait("b", limit, 0.0).allowed


def test_async_decide_reads_the_injected_clock() -> None:
    """decide() asks the backend's clock; with a fake clock it is exact too."""
    now = [100.0]
    backend = MemoryBackend(clock=lambda: now[0])
    limit = RateLimit(rate=1, per=2.0, burst=1)

    async def run() -> list[bool]:
        out = [
            (await backend.decide("k", limit)).allowed,
            (await backend.decide("k", limit)).allowed,
        ]
        now[0] = 102.0
        out.append((await backend.decide("k", limit)).allowed)
        return out

    assert asyncio.run(run()) == [True, False, True]


def test_expired_keys_are_swept() -> None:
    """Keys whose TAT has passed are dropped as time goes by: memory follows activity."""
    backend = MemoryBackend()
    limit = RateLimit(rate=10, per=1.0, burst=1)  # TAT = now + 0.1 s
    for i in range(10_000):
        backend.decide_at_time_nowait(f"client-{i}", limit, i * 1.0)
    assert len(backend) <= 2


def test_lru_bound_holds_and_keeps_hot_keys() -> None:
    """Never more than max_keys entries; a key being throttled is not flushed by others."""
    backend = MemoryBackend(max_keys=100)
    limit = RateLimit(rate=1, per=3600.0, burst=1)
    assert backend.decide_at_time_nowait("abuser", limit, 0.0).allowed
    for i in range(1_000):
        backend.decide_at_time_nowait(f"other-{i}", limit, 0.0)
        assert not backend.decide_at_time_nowait("abuser", limit, 0.0).allowed
        assert len(backend) <= 100
    # The oldest of the others were evicted, so they start afresh.
    assert backend.decide_at_time_nowait("other-0", limit, 0.0).allowed


def test_max_keys_must_be_positive() -> None:
    """A zero-sized store would forget every key at once: rejected at build time."""
    with pytest.raises(ValueError, match="max_keys"):
        MemoryBackend(max_keys=0)


limits = st.builds(
    RateLimit,
    rate=st.integers(1, 50),
    per=st.sampled_from([0.5, 1.0, 2.0, 60.0]),
    burst=st.integers(1, 20),
)
gaps = st.lists(st.floats(0.0, 0.5, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=150, deadline=None)
@given(limit=limits, gaps=gaps)
def test_never_more_than_burst_plus_rate_in_any_interval(
    limit: RateLimit, gaps: list[float]
) -> None:
    """Conformance: admitted requests i..j satisfy j - i + 1 <= burst + (t_j - t_i) / T."""
    now, admitted = 0, []
    tat: float | None = None
    for gap in gaps:
        now += round(gap * limit.per * US)
        new_tat, _ = gcra_at_time(tat, now, limit)
        if new_tat is not None:
            tat = new_tat
            admitted.append(now)
    interval = limit.emission_interval * US
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= limit.burst + (admitted[j] - admitted[i]) / interval + 1e-6


@settings(max_examples=150, deadline=None)
@given(limit=limits, gaps=gaps)
def test_retry_after_is_exact(limit: RateLimit, gaps: list[float]) -> None:
    """A denied client that waits exactly retry_after is admitted; a hair sooner it is not."""
    now = 0
    tat: float | None = None
    for gap in gaps:
        now += round(gap * limit.per * US)
        new_tat, decision = gcra_at_time(tat, now, limit)
        if new_tat is not None:
            tat = new_tat
            assert decision.remaining >= 0
            continue
        wait = decision.retry_after * US
        assert wait > 0
        hair = 1e-6 * limit.emission_interval * US
        if wait > hair:
            early, _ = gcra_at_time(tat, now + wait - hair, limit)
            assert early is None
        on_time, _ = gcra_at_time(tat, now + wait, limit)
        assert on_time is not None


@settings(max_examples=100, deadline=None)
@given(limit=limits, idle=st.floats(0.0, 5.0, allow_nan=False))
def test_remaining_counts_the_requests_that_will_pass(limit: RateLimit, idle: float) -> None:
    """`remaining` after an admission is exactly how many more pass at the same instant."""
    backend = MemoryBackend()
    backend.decide_at_time_nowait("k", limit, 0.0)
    decision = backend.decide_at_time_nowait("k", limit, (idle + 1) * limit.per)
    extra = 0
    while backend.decide_at_time_nowait("k", limit, (idle + 1) * limit.per).allowed:
        extra += 1
    assert decision.allowed
    assert extra == decision.remaining
