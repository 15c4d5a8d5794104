"""Capped exponential backoff with full jitter, for every retry loop that talks to a server.

>>> import random
>>> b = Backoff(base=0.1, cap=2.0)
>>> 0 <= b.delay(1, random.Random(1)) <= 0.1 and 0 <= b.delay(30) <= 2.0
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """``uniform(0, min(cap, base * 2**(attempt-1)))`` seconds before retry ``attempt``.

    Full jitter spreads the retries of many processes that lost the same server
    at the same moment, so they do not come back in lockstep when it recovers.
    """

    base: float = 0.1
    cap: float = 30.0

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        ceiling = min(self.cap, self.base * 2 ** min(max(attempt, 1) - 1, 62))
        return (rng or random).uniform(0, ceiling)
