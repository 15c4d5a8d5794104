"""Decision.headers: Retry-After and the draft-ietf-httpapi-ratelimit-headers fields."""

from __future__ import annotations

import pytest

from ramparts.ratelimit import Decision, RateLimit

LIMIT = RateLimit(rate=100, per=60.0, burst=20, key="subject")


def test_allowed_advertises_policy_and_remaining() -> None:
    """An admitted request carries RateLimit-Policy and RateLimit, no Retry-After."""
    decision = Decision(True, 20, 7, reset_after=7.8, retry_after=0.0, policy=LIMIT)
    assert decision.headers() == [
        ("RateLimit-Policy", '"subject";q=100;w=60'),
        ("RateLimit", '"subject";r=7;t=8'),
    ]


def test_denied_has_retry_after_rounded_up_and_matching_window() -> None:
    """Retry-After is whole seconds rounded up; t equals it (never earlier, per Section 6)."""
    decision = Decision(False, 20, 0, reset_after=12.0, retry_after=0.6, policy=LIMIT, status=429)
    assert decision.headers() == [
        ("Retry-After", "1"),
        ("RateLimit-Policy", '"subject";q=100;w=60'),
        ("RateLimit", '"subject";r=0;t=1'),
    ]


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [(0.0001, "1"), (1.0, "1"), (1.0000000000002, "1"), (1.2, "2"), (59.01, "60")],
)
def test_retry_after_rounding(retry_after: float, header: str) -> None:
    """Delay-seconds never undershoot the wait, and float noise adds no second."""
    decision = Decision(False, 1, 0, retry_after, retry_after, LIMIT, status=429)
    assert dict(decision.headers())["Retry-After"] == header


def test_legacy_fields_on_request() -> None:
    """legacy=True adds the draft-06 trio for clients that still read them."""
    decision = Decision(True, 20, 3, reset_after=2.5, retry_after=0.0, policy=LIMIT)
    headers = dict(decision.headers(legacy=True))
    assert headers["RateLimit-Limit"] == "20"
    assert headers["RateLimit-Remaining"] == "3"
    assert headers["RateLimit-Reset"] == "3"


def test_fractional_period_is_advertised_over_whole_seconds() -> None:
    """`w` must be an integer (Section 3.1.3): 5 per 0.5 s is advertised as 10 per 1 s."""
    limit = RateLimit.parse("5/0.5s", name="fast")
    decision = Decision(True, 5, 4, 0.1, 0.0, limit)
    assert dict(decision.headers())["RateLimit-Policy"] == '"fast";q=10;w=1'


def test_degraded_decisions_advertise_no_quota() -> None:
    """Without the backend there is no quota to tell; a 503 still says when to retry."""
    closed = Decision(False, 20, 0, 0.4, 0.4, LIMIT, status=503, degraded=True)
    assert closed.headers() == [("Retry-After", "1")]
    opened = Decision(True, 20, 0, 0.0, 0.0, LIMIT, degraded=True)
    assert opened.headers() == []


def test_decision_refuses_truth_testing() -> None:
    """`if decision:` would always be true for a tuple; it raises and names `.allowed`."""
    denied = Decision(False, 1, 0, 1.0, 1.0, LIMIT, status=429)
    with pytest.raises(TypeError, match=r"decision\.allowed"):
        bool(denied)
