"""Rate limiting for the gateway: GCRA, in memory or shared through Redis.

>>> import asyncio
>>> from ramparts.events import EventEmitter, MemorySink
>>> limit = RateLimit.parse("2/s", key="ip")
>>> limiter = RateLimiter(MemoryBackend(), EventEmitter([MemorySink()], service="gateway"))
>>> key = key_for("ip", "203.0.113.7", route="payments")
>>> async def three():
...     return [await limiter.check(key, limit, peer="203.0.113.7") for _ in range(3)]
>>> [d.allowed for d in asyncio.run(three())]
[True, True, False]

A limit is ``rate`` requests per ``per`` seconds with a ``burst`` (bucket
size). :func:`key_for` builds the key from a verified value (client IP, JWT
subject, API key, route), bounding its size and digesting API keys. The
:class:`RateLimiter` asks a backend (:class:`MemoryBackend` for one instance,
:class:`RedisBackend` for several), emits ``ratelimit.exceeded`` for every
deny, and applies ``on_backend_error`` ("closed" or "open") when the backend
is down. :meth:`Decision.headers` gives ``Retry-After`` and the
``RateLimit-Policy`` / ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers.

Exceptions::

    ValueError
     └── RateLimitConfigError   a limit, rate string or key that cannot be built
    Exception
     └── BackendUnavailable     the backend could not be asked (the limiter handles it)
"""

from ramparts.ratelimit._backend import Backend, BackendUnavailable
from ramparts.ratelimit._config import KeyKind, RateLimit, RateLimitConfigError
from ramparts.ratelimit._decision import Decision
from ramparts.ratelimit._keys import LimitKey, key_for
from ramparts.ratelimit._limiter import (
    BACKEND_RECOVERED,
    BACKEND_UNAVAILABLE,
    EXCEEDED,
    OnBackendError,
    RateLimiter,
)
from ramparts.ratelimit._memory import MemoryBackend
from ramparts.ratelimit._redis import RedisBackend

__all__ = [
    "BACKEND_RECOVERED",
    "BACKEND_UNAVAILABLE",
    "EXCEEDED",
    "Backend",
    "BackendUnavailable",
    "Decision",
    "KeyKind",
    "LimitKey",
    "MemoryBackend",
    "OnBackendError",
    "RateLimit",
    "RateLimitConfigError",
    "RateLimiter",
    "RedisBackend",
    "key_for",
]
