"""The strict decoders: canonical base64url and duplicate-free JSON."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ramparts.jwt._codec import DuplicateMemberError, b64url_decode, b64url_encode, loads_object

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.binary(max_size=64))
def test_round_trip(raw: bytes) -> None:
    """Every byte string encodes to a segment that decodes back to it."""
    assert b64url_decode(b64url_encode(raw)) == raw


@given(st.text(alphabet=_ALPHABET + "+/= ?.\n", max_size=12))
def test_accepts_exactly_the_canonical_spelling(text: str) -> None:
    """A segment is accepted iff it is in the alphabet and re-encodes to itself."""
    segment = text.encode()
    in_alphabet = re.fullmatch(rb"[A-Za-z0-9_-]*", segment) is not None
    canonical = (
        in_alphabet
        and len(segment) % 4 != 1
        and b64url_encode(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))) == segment
    )
    try:
        b64url_decode(segment)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == canonical


@pytest.mark.parametrize(
    "raw",
    [b'{"a":1,"a":2}', b'{"o":{"x":1,"x":1}}', b'[{"a":1,"a":1}]'],
)
def test_duplicate_members_at_any_depth(raw: bytes) -> None:
    with pytest.raises(DuplicateMemberError):
        loads_object(raw if raw.startswith(b"{") else b'{"l":' + raw + b"}")


@pytest.mark.parametrize(
    "raw", [b"NaN", b'{"exp": Infinity}', b'{"exp": -Infinity}', b"[]", b'"s"', b"\xff{}"]
)
def test_not_a_strict_json_object(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads_object(raw)


def test_twin_plain_object_parses() -> None:
    assert loads_object(b'{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}
