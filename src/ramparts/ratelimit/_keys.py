"""Rate-limit keys built from untrusted request data, bounded in size and safe to log."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from ramparts.ratelimit._config import KEY_KINDS, KeyKind, RateLimitConfigError

# Longer than any IPv6 literal with a zone, a DNS name (253) or a sane JWT
# subject. Anything longer is hashed, so a client sending a 1 MB header cannot
# make the limiter store 1 MB per key (bounded memory in-process and in Redis).
MAX_PART_LENGTH = 256

# Parts are joined with "|". Raw parts may not contain it (nor anything outside
# printable ASCII), so two different (kind, route, value) triples can never
# produce the same storage key; such parts are hashed instead.
_SEPARATOR = "|"


def _digest(raw: str) -> str:
    """A 128-bit BLAKE2b digest: collision resistant, short, and says nothing of the input."""
    data = raw.encode("utf-8", "surrogatepass")
    return "h:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def _bounded(part: str) -> str:
    # isascii() and isprintable() together mean exactly U+0020..U+007E.
    if (
        len(part) <= MAX_PART_LENGTH
        and part.isascii()
        and part.isprintable()
        and _SEPARATOR not in part
        and not part.startswith("h:")
    ):
        return part
    return _digest(part)


class LimitKey(NamedTuple):
    """Whose requests a limit counts: a kind, the route, and the (bounded) value.

    Build it with :func:`key_for`. ``value`` is safe to put in an event: API
    keys are always replaced by their digest, over-long or odd values too.
    """

    kind: KeyKind
    value: str
    route: str

    @property
    def storage(self) -> str:
        """The string the backends store state under."""
        return _SEPARATOR.join((self.kind, self.route, self.value))


def key_for(kind: KeyKind, value: str, route: str = "") -> LimitKey:
    """The key for ``value`` (an IP, a JWT subject, an API key or a route) on ``route``.

    The caller passes only verified values: the peer address the gateway saw
    (or one a trusted proxy vouched for), the ``sub`` of a verified token.

    Raises:
        RateLimitConfigError: for an unknown kind or an empty value, which would
            otherwise put every such request into one shared bucket.
    """
    if kind not in KEY_KINDS:
        raise RateLimitConfigError(f"key kind must be one of {', '.join(KEY_KINDS)}, got {kind!r}")
    if not isinstance(value, str) or not value:
        raise RateLimitConfigError(f"rate-limit key of kind {kind!r} needs a non-empty str value")
    if not isinstance(route, str):
        raise RateLimitConfigError(f"route must be a str, got {type(route).__name__}")
    # API keys are credentials: store and log only their digest.
    bounded = _digest(value) if kind == "api_key" else _bounded(value)
    return LimitKey(kind, bounded, _bounded(route))
