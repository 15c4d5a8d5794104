"""The limiter the gateway calls: backend decision, events, and outage policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from ramparts.events import EventEmitter
from ramparts.ratelimit._backend import Backend, BackendUnavailable
from ramparts.ratelimit._config import RateLimit
from ramparts.ratelimit._decision import Decision
from ramparts.ratelimit._keys import LimitKey

OnBackendError = Literal["open", "closed"]

EXCEEDED = "ratelimit.exceeded"
BACKEND_UNAVAILABLE = "ratelimit.backend_unavailable"
BACKEND_RECOVERED = "ratelimit.backend_recovered"


class RateLimiter:
    """Checks a request against a limit and records every deny as an event.

    When the backend cannot be asked, ``on_backend_error`` decides:

    * ``"closed"`` (the default; security code fails closed): deny with a
      503 decision, one ``ratelimit.backend_unavailable`` deny event each.
    * ``"open"``: admit, and emit one ``ratelimit.backend_unavailable`` event
      per outage (not per request), so an outage cannot flood the trail.

    During an outage only one request per ``probe_interval`` seconds tries the
    backend; the rest get the fallback at once instead of each waiting out a
    connect timeout. The first success ends the outage with one
    ``ratelimit.backend_recovered`` event.
    """

    def __init__(
        self,
        backend: Backend,
        emitter: EventEmitter,
        *,
        on_backend_error: OnBackendError = "closed",
        probe_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if on_backend_error not in ("open", "closed"):
            raise ValueError(
                f"on_backend_error must be 'open' or 'closed', got {on_backend_error!r}"
            )
        if not probe_interval > 0:
            raise ValueError(f"probe_interval must be positive seconds, got {probe_interval!r}")
        self.backend = backend
        self.emitter = emitter
        self.on_backend_error = on_backend_error
        self.probe_interval = probe_interval
        self._clock = clock
        # Outage state: when it began and when the backend may next be tried.
        self._down_since: float | None = None
        self._next_probe = 0.0

    @property
    def backend_down(self) -> bool:
        """Whether the limiter is in an outage window."""
        return self._down_since is not None

    async def check(self, key: LimitKey, limit: RateLimit, *, peer: str | None = None) -> Decision:
        """Decide one request now. ``peer`` is the client address, for the event."""
        return await self._check(key, limit, peer, self._clock(), None)

    async def check_at_time(
        self, key: LimitKey, limit: RateLimit, now: float, *, peer: str | None = None
    ) -> Decision:
        """:meth:`check` at ``now``, on the backend's clock (see its ``decide_at_time``)."""
        return await self._check(key, limit, peer, now, now)

    async def _check(
        self, key: LimitKey, limit: RateLimit, peer: str | None, clock: float, at: float | None
    ) -> Decision:
        if self._down_since is not None:
            if clock < self._next_probe:
                return self._fallback(key, limit, peer, clock)
            # This request probes; concurrent ones take the fallback meanwhile.
            self._next_probe = clock + self.probe_interval
        storage = f"{limit.slug}|{key.storage}"
        try:
            if at is None:
                decision = await self.backend.decide(storage, limit)
            else:
                decision = await self.backend.decide_at_time(storage, limit, at)
        except BackendUnavailable as exc:
            return self._outage(key, limit, peer, clock, exc)
        if self._down_since is not None:
            self._recovered(clock, self._down_since)
        if not decision.allowed:
            self.emitter.deny(
                EXCEEDED,
                reason="rate limit exceeded",
                peer=peer,
                detail={**_describe(key, limit), "retry_after": decision.retry_after},
            )
        return decision

    def _outage(
        self, key: LimitKey, limit: RateLimit, peer: str | None, clock: float, exc: Exception
    ) -> Decision:
        self._next_probe = clock + self.probe_interval
        if self._down_since is None:
            self._down_since = clock
            if self.on_backend_error == "open":
                # Once per outage window; "closed" records each deny instead.
                self.emitter.allow(
                    BACKEND_UNAVAILABLE,
                    reason=f"rate-limit backend unavailable ({exc}); failing open",
                    detail={"on_backend_error": "open"},
                )
        return self._fallback(key, limit, peer, clock)

    def _fallback(
        self, key: LimitKey, limit: RateLimit, peer: str | None, clock: float
    ) -> Decision:
        if self.on_backend_error == "open":
            return Decision(True, limit.burst, 0, 0.0, 0.0, limit, status=200, degraded=True)
        retry_after = max(self._next_probe - clock, 0.0)
        self.emitter.deny(
            BACKEND_UNAVAILABLE,
            reason="rate-limit backend unavailable; failing closed",
            peer=peer,
            detail={**_describe(key, limit), "on_backend_error": "closed"},
        )
        return Decision(False, limit.burst, 0, retry_after, retry_after, limit, 503, degraded=True)

    def _recovered(self, clock: float, down_since: float) -> None:
        outage = clock - down_since
        self._down_since = None
        self.emitter.allow(
            BACKEND_RECOVERED,
            reason="rate-limit backend reachable again",
            detail={"outage_seconds": round(outage, 3), "on_backend_error": self.on_backend_error},
        )


def _describe(key: LimitKey, limit: RateLimit) -> dict[str, object]:
    """Event detail for a key: kind, route and value (digested for API keys), and the limit."""
    return {
        "key_kind": key.kind,
        "key": key.value,
        "route": key.route,
        "policy": limit.name,
        "limit": f"{limit.rate}/{limit.per:g}s",
        "burst": limit.burst,
    }
