"""Strict decoders for the two encodings inside a JWS: base64url and JSON.

Lenient decoders are how parser-differential attacks start: two components
reading the same token differently (a second ``"alg"`` member, a base64
character that one decoder skips). Both decoders here accept exactly one
spelling of each value and raise :class:`ValueError` for anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# RFC 4648 section 3.5: in a canonical encoding the unused low bits of the last
# character are zero. With 2 characters in the final quantum 4 bits are unused,
# with 3 characters 2 bits; these are the characters that satisfy that.
_CANONICAL_LAST = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_URL_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def b64url_decode(segment: bytes) -> bytes:
    """Decode unpadded base64url, refusing padding, foreign characters and
    non-canonical spellings (non-zero unused bits, RFC 4648 section 3.5).

    Raises:
        ValueError: the segment is not canonical unpadded base64url.
    """
    # RFC 7515 section 2: the alphabet is A-Z a-z 0-9 - _, with no padding.
    # The standard alphabet's + and / are refused before translating - and _ to them.
    if b"+" in segment or b"/" in segment or b"=" in segment:
        raise ValueError("characters outside the base64url alphabet (or padding)")
    tail = len(segment) % 4
    if tail == 1:
        raise ValueError("impossible base64url length")
    if tail and segment[-1] not in _CANONICAL_LAST[tail]:
        raise ValueError("non-canonical base64url (unused bits are not zero)")
    standard = segment.translate(_URL_TO_STANDARD) + b"=" * (-len(segment) % 4)
    try:
        # strict_mode refuses any character outside the alphabet (spaces too).
        return binascii.a2b_base64(standard, strict_mode=True)
    except binascii.Error:
        raise ValueError("characters outside the base64url alphabet (or padding)") from None


def b64url_encode(raw: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


class DuplicateMemberError(ValueError):
    """A JSON object names the same member twice (RFC 7515 section 4 / RFC 8259 4)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateMemberError(f"duplicate member {key[:40]!r}")
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity by default; they are not JSON (RFC 8259).
    raise ValueError(f"{name} is not valid JSON")


def loads_object(raw: bytes) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object, refusing duplicate members,
    NaN/Infinity and invalid UTF-8.

    Raises:
        DuplicateMemberError: an object (at any depth) repeats a member name.
        ValueError: anything else that is not a strict JSON object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8") from exc
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except DuplicateMemberError:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError(f"JSON {type(value).__name__}, expected an object")
    return value
