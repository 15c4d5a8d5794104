"""SPIFFE ID parsing (SPIFFE-ID spec §2) as a table, and the package's public surface."""

from __future__ import annotations

import pytest

from ramparts import identity
from ramparts.identity import InvalidSVIDError, parse_spiffe_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("spiffe://refbank.local/ns/refbank/sa/ledger", ("refbank.local", "/ns/refbank/sa/ledger")),
        ("spiffe://a_b-c.d/x", ("a_b-c.d", "/x")),
        ("spiffe://td/A.b-C_9", ("td", "/A.b-C_9")),
    ],
)
def test_valid_ids(value, expected) -> None:
    assert parse_spiffe_id(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("http://td/x", "must start with"),
        ("SPIFFE://td/x", "must start with"),
        ("spiffe://td", "no path"),
        ("spiffe://td/", "no path"),
        ("spiffe://TD/x", "invalid trust domain"),
        ("spiffe://td:443/x", "invalid trust domain"),
        ("spiffe://user@td/x", "invalid trust domain"),
        ("spiffe:///x", "invalid trust domain"),
        ("spiffe://td/x/", "invalid path segment ''"),
        ("spiffe://td//x", "invalid path segment ''"),
        ("spiffe://td/./x", r"invalid path segment '\.'"),
        ("spiffe://td/x/..", r"invalid path segment '\.\.'"),
        ("spiffe://td/x?q=1", "invalid path segment"),
        ("spiffe://td/x#f", "invalid path segment"),
        ("spiffe://td/%41", "invalid path segment"),
        ("spiffe://td/" + "a" * 2100, "at most 2048"),
    ],
)
def test_invalid_ids(value, error) -> None:
    with pytest.raises(InvalidSVIDError, match=error):
        parse_spiffe_id(value)


def test_all_matches_the_public_names() -> None:
    public = {n for n in dir(identity) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(identity, n)).__name__ == "module"}
    assert set(identity.__all__) == public - modules


def test_doctests_run() -> None:
    import doctest

    from ramparts.identity import _ca, _source

    for mod in (identity, _ca, _source):
        assert doctest.testmod(mod).failed == 0
