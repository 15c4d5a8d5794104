"""The outcome of one rate-limit check and the response headers it implies.

Header fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026), the
latest draft: ``RateLimit-Policy`` (a List of quota policies, ``q`` quota and
``w`` window in seconds, Section 3) and ``RateLimit`` (the service limit, ``r``
remaining and ``t`` effective window in seconds, Section 4), each item named by
the policy name as an sf-string. Drafts up to -06 used three fields instead
(``RateLimit-Limit``, ``-Remaining``, ``-Reset``); many clients still read
those, so :meth:`Decision.headers` can emit them too with ``legacy=True``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ramparts.ratelimit._config import RateLimit

# Float noise from the GCRA arithmetic (e.g. 1.0000000000002 s) must not turn
# into an extra second in a header.
_EPSILON = 1e-9


def _ceil_seconds(seconds: float) -> int:
    return max(0, math.ceil(seconds - _EPSILON))


class Decision(NamedTuple):
    """One rate-limit decision (a NamedTuple: immutable and cheap on the hot path).

    ``limit`` is the burst size, ``remaining`` how many more requests would be
    admitted right now, ``reset_after`` the seconds until the key is back to
    a full burst, ``retry_after`` the seconds until the next request can be
    admitted (0 when allowed). ``status`` is the HTTP status a denied request
    gets: 429 when over the limit, 503 when the backend was unreachable and the
    limiter fails closed. ``degraded`` marks a decision taken without the
    backend; it carries no quota to advertise.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    policy: RateLimit
    status: int = 200
    degraded: bool = False

    def __bool__(self) -> bool:
        # A non-empty tuple is always true, so `if decision:` would admit every
        # request. Refuse loudly instead of passing silently.
        raise TypeError("a Decision has no truth value; test decision.allowed")

    def headers(self, *, legacy: bool = False) -> list[tuple[str, str]]:
        """The response header fields for this decision, as (name, value) pairs.

        ``Retry-After`` (delay-seconds, rounded up, at least 1) only on a deny;
        on a deny the ``RateLimit`` effective window ``t`` equals it, as the
        draft asks (Retry-After never earlier than the end of the window).
        """
        out: list[tuple[str, str]] = []
        if not self.allowed:
            out.append(("Retry-After", str(max(1, _ceil_seconds(self.retry_after)))))
        if self.degraded:
            return out
        name = self.policy.name
        window = max(1, _ceil_seconds(self.policy.per))
        # "w" must be whole seconds (Section 3.1.3): a sub-second or fractional
        # period is advertised as the same rate over the rounded-up window.
        quota = round(self.policy.rate * window / self.policy.per)
        t = max(1, _ceil_seconds(self.retry_after)) if not self.allowed else self.reset_seconds
        out.append(("RateLimit-Policy", f'"{name}";q={quota};w={window}'))
        out.append(("RateLimit", f'"{name}";r={self.remaining};t={t}'))
        if legacy:
            out.append(("RateLimit-Limit", str(self.limit)))
            out.append(("RateLimit-Remaining", str(self.remaining)))
            out.append(("RateLimit-Reset", str(t)))
        return out

    @property
    def reset_seconds(self) -> int:
        """``reset_after`` as whole seconds, rounded up."""
        return _ceil_seconds(self.reset_after)
