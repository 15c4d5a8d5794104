"""What the limiter needs from a backend, and the one error a backend raises."""

from __future__ import annotations

from typing import Protocol

from ramparts.ratelimit._config import RateLimit
from ramparts.ratelimit._decision import Decision


class BackendUnavailable(Exception):
    """The backend could not be asked (unreachable, timed out, refused); the cause is chained."""


class Backend(Protocol):
    """Keeps GCRA state per storage key. ``decide`` raises only :class:`BackendUnavailable`."""

    async def decide(self, key: str, limit: RateLimit) -> Decision: ...

    async def decide_at_time(self, key: str, limit: RateLimit, now: float) -> Decision: ...

    async def aclose(self) -> None: ...
