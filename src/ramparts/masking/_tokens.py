"""Keyed tokenisation: masked identifiers that still correlate across log lines.

Why a *keyed* HMAC and not a plain hash: the identifiers masked here come from
tiny spaces. A BVN or NIN is 11 digits, 10^11 values; a NUBAN is 10 digits of
which one is a check digit, 10^9 values per bank; a Nigerian mobile number is
about 6 x 10^8. A GPU computes billions of SHA-256 hashes per second, so
``sha256(bvn)`` in a log is reversed by enumerating every BVN in about a
minute, and a salt stored beside the log changes nothing. HMAC-SHA256 under a
key that never reaches the log store makes the token useless without the key,
while equal inputs still give equal tokens, so an analyst can follow one
customer through the logs without seeing who it is.

The token is truncated to 48 bits (12 hex digits): enough that unrelated
values in one incident rarely collide, short enough to read. Tokens are for
correlation, never for lookup or authentication.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

# Domain separation: the same key used for anything else never yields these tokens.
_DOMAIN: Final = b"ramparts.masking.v1\x00"
TOKEN_HEX_CHARS: Final = 12
MIN_KEY_BYTES: Final = 16


class Tokeniser:
    """HMAC-SHA256 tokens for normalised identifier values; the key never leaves it."""

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError(f"hmac_key must be bytes, got {type(key).__name__}")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"hmac_key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        # The keyed state is computed once; each token copies it.
        self._mac = hmac.new(key, _DOMAIN, hashlib.sha256)

    def token(self, normalised: str) -> str:
        """The truncated HMAC of ``normalised`` as lower-case hex."""
        mac = self._mac.copy()
        mac.update(normalised.encode("utf-8"))
        return mac.hexdigest()[:TOKEN_HEX_CHARS]

    def __repr__(self) -> str:
        return "Tokeniser(key=<redacted>)"
