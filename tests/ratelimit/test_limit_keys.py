"""key_for / LimitKey: bounded, unambiguous keys that never carry a credential."""

from __future__ import annotations

import pytest

from ramparts.ratelimit import LimitKey, RateLimitConfigError, key_for
from ramparts.ratelimit._keys import MAX_PART_LENGTH


def test_readable_values_are_kept() -> None:
    """IPs, subjects and routes stay readable in storage and events."""
    key = key_for("ip", "2001:db8::1", route="payments")
    assert key == LimitKey(kind="ip", value="2001:db8::1", route="payments")
    assert key.storage == "ip|payments|2001:db8::1"
    assert key_for("subject", "user-42").storage == "subject||user-42"


def test_api_key_is_always_digested() -> None:
    """An API key is a credential: neither the key nor its repr contains it."""
    secret = "rk_live_51Habc0123456789"
    key = key_for("api_key", secret, route="accounts")
    assert secret not in key.storage
    assert secret not in repr(key)
    assert key.value.startswith("h:")
    assert len(key.value) == 2 + 32
    assert key == key_for("api_key", secret, route="accounts")
    assert key != key_for("api_key", secret + "x", route="accounts")


def test_long_values_are_bounded() -> None:
    """A megabyte value costs a fixed-size key; different long values stay distinct."""
    a = key_for("subject", "a" * 1_000_000)
    b = key_for("subject", "a" * 999_999 + "b")
    assert len(a.storage) < 64
    assert a != b
    at_limit = "s" * MAX_PART_LENGTH
    assert key_for("subject", at_limit).value == at_limit


@pytest.mark.parametrize(
    "value",
    ["a|b", "caf\u00e9", "tab\there", "nul\x00", "h:0123", "\ud800"],
)
def test_odd_values_are_digested(value: str) -> None:
    """Separators, non-ASCII, control characters and look-alike digests are hashed."""
    key = key_for("subject", value)
    assert key.value.startswith("h:")
    assert key.value != value


def test_no_two_triples_share_storage() -> None:
    """A client-chosen value cannot land in another route's or kind's bucket."""
    keys = [
        key_for("ip", "1|x", route="a"),
        key_for("ip", "x", route="a|1"),
        key_for("subject", "1", route="a"),
        key_for("ip", "1", route="a"),
        key_for("route", "a"),
    ]
    assert len({k.storage for k in keys}) == len(keys)


@pytest.mark.parametrize(
    ("kind", "value", "route", "fragment"),
    [
        ("cookie", "x", "", "key kind must be one of"),
        ("ip", "", "", "needs a non-empty str value"),
        ("subject", None, "", "needs a non-empty str value"),
        ("ip", "1.2.3.4", None, "route must be a str"),
    ],
)
def test_bad_keys_fail_closed(kind: str, value: object, route: object, fragment: str) -> None:
    """An empty value would pool every such client in one bucket: it is an error."""
    with pytest.raises(RateLimitConfigError, match=fragment):
        key_for(kind, value, route)  # type: ignore[arg-type]
