"""The interfaces other pieces plug into the gateway through.

Each is a small :class:`typing.Protocol`, so the gateway depends on a shape,
not on a module: ``ramparts.jwt.JWTValidator`` satisfies :class:`TokenVerifier`,
``ramparts.ratelimit.RateLimiter`` satisfies :class:`Limiter`, and the WAF
engine will implement :class:`WAFHook`. Every stage is an ``async`` callable
returning ``None`` to continue or a :class:`~ramparts.gateway._http.Reply` to
answer (deny) at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ramparts.gateway._http import Reply
    from ramparts.gateway._request import Request

__all__ = ["Limiter", "Stage", "TokenVerifier", "VerifiedIdentity", "WAFHook"]


class Stage(Protocol):
    """One step of the request pipeline."""

    name: str

    async def __call__(self, req: Request) -> Reply | None: ...


class WAFHook(Protocol):
    """The WAF engine's entry point. ``mode`` is the route's ``waf`` (``block`` or ``detect``).

    It returns a Reply to block, or None; in ``detect`` mode it records and
    returns None. It must emit its own event for a block.

    It sees ``req.method``, the normalised ``req.path`` and raw ``req.query``,
    ``req.route`` and ``req.raw_headers`` (every header as received, lowercase
    names, before hygiene), and the whole body in ``req.body_buffer``: on WAF
    routes the gateway holds the body (bounded by ``max_body_bytes``) until it
    is complete. An engine with ``inspect_response`` also gets each response
    on those routes before the client does (held up to 1 MiB; larger ones
    stream on with a ``waf.response_not_inspected`` event).
    Set ``eager_safe = True`` on the engine if it never needs
    ``asyncio.current_task()`` before its first suspension (see ``_pipeline``).
    """

    async def inspect(self, req: Request, mode: str) -> Reply | None: ...


class VerifiedIdentity(Protocol):
    """What the gateway uses of a verified token."""

    subject: str | None
    issuer: str
    scopes: frozenset[str]


class TokenVerifier(Protocol):
    """Verifies a bearer token; raises an exception with a ``reason`` attribute on rejection.

    The verifier emits the ``jwt.rejected`` / scope-denied event itself, so the
    gateway does not emit a second one for the same decision.
    """

    async def verify(self, token: str, *, peer: str | None = None) -> VerifiedIdentity: ...

    def require_scopes(
        self, token: Any, required: Iterable[str], *, peer: str | None = None
    ) -> None: ...


class Limiter(Protocol):
    """Decides one request against one limit and emits ``ratelimit.exceeded`` on deny."""

    async def check(self, key: Any, limit: Any, *, peer: str | None = None) -> Any: ...
