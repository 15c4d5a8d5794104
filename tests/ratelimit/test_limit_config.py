"""RateLimit: the policy object and the "100/s" parser."""

from __future__ import annotations

import dataclasses

import pytest

from ramparts.ratelimit import RateLimit, RateLimitConfigError


@pytest.mark.parametrize(
    ("text", "rate", "per"),
    [
        ("100/s", 100, 1.0),
        ("6000/min", 6000, 60.0),
        ("10/5s", 10, 5.0),
        ("3/1.5s", 3, 1.5),
        (" 7 / hour ", 7, 3600.0),
        ("1000/day", 1000, 86400.0),
        ("50/30MIN", 50, 1800.0),
        ("1/d", 1, 86400.0),
    ],
)
def test_parse_accepts(text: str, rate: int, per: float) -> None:
    """Count, optional multiple and unit give rate and period in seconds."""
    limit = RateLimit.parse(text)
    assert (limit.rate, limit.per) == (rate, per)
    assert limit.emission_interval == pytest.approx(per / rate)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is not '<count>/<unit>'"),
        ("100", "is not '<count>/<unit>'"),
        ("100/", "is not '<count>/<unit>'"),
        ("-1/s", "is not '<count>/<unit>'"),
        ("1.5/s", "is not '<count>/<unit>'"),
        ("100/fortnight", "unknown unit 'fortnight'"),
        ("100/m", "unknown unit 'm'"),
        ("0/s", "rate must be in 1.."),
        ("2000000/s", "rate must be in 1.."),
        ("100/0s", "the period must be positive"),
        ("100/8d", "per must be in"),
    ],
)
def test_parse_rejects_naming_the_string(text: str, fragment: str) -> None:
    """Every bad string raises RateLimitConfigError that quotes it and says what is wrong."""
    with pytest.raises(RateLimitConfigError) as info:
        RateLimit.parse(text)
    assert fragment in str(info.value)
    assert repr(text) in str(info.value)


def test_parse_rejects_non_string() -> None:
    """A number where a string belongs is a config error, not a crash."""
    with pytest.raises(RateLimitConfigError, match="must be a string"):
        RateLimit.parse(100)  # type: ignore[arg-type]


def test_burst_defaults_to_rate() -> None:
    """Without a burst, a key may use its whole rate at once, like a fixed window."""
    assert RateLimit.parse("100/min").burst == 100
    assert RateLimit.parse("100/min", burst=5).burst == 5


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rate": 10, "per": 1.0, "burst": -1}, "burst must be"),
        ({"rate": 10, "per": 1.0, "burst": 2_000_000}, "burst must be"),
        ({"rate": 10.5, "per": 1.0}, "rate must be an int"),
        ({"rate": True, "per": 1.0}, "rate must be an int"),
        ({"rate": 10, "per": float("nan")}, "per must be a finite"),
        ({"rate": 10, "per": "1"}, "per must be a finite"),
        ({"rate": 10, "per": -1.0}, "per must be in"),
        ({"rate": 10, "per": 1.0, "key": "cookie"}, "key must be one of ip, subject"),
        ({"rate": 10, "per": 1.0, "name": 'a"b'}, "name must be"),
        ({"rate": 10, "per": 1.0, "name": "x\r\nSet-Cookie: a=b"}, "name must be"),
        ({"rate": 10, "per": 1.0, "name": "n" * 65}, "name must be"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, object], fragment: str) -> None:
    """Bad fields are rejected when the object is built, naming the field."""
    with pytest.raises(RateLimitConfigError, match=fragment):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_frozen_and_named() -> None:
    """Limits are immutable values; the header name defaults to the key kind."""
    limit = RateLimit(rate=5, per=2, key="subject")
    assert limit.name == "subject"
    assert limit.per == 2.0
    assert limit == RateLimit(rate=5, per=2.0, burst=5, key="subject")
    with pytest.raises(dataclasses.FrozenInstanceError):
        limit.rate = 6  # type: ignore[misc]


def test_slug_separates_parameters() -> None:
    """Limits with different parameters have different storage slugs."""
    slugs = {
        RateLimit(rate=10, per=1).slug,
        RateLimit(rate=10, per=60).slug,
        RateLimit(rate=10, per=1, burst=3).slug,
        RateLimit(rate=100, per=10).slug,
    }
    assert len(slugs) == 4
