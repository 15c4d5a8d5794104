"""The ``RateLimit`` policy object and the parser for strings like ``"100/s"``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from ramparts.config._rates import parse_rate

KeyKind = Literal["ip", "subject", "api_key", "route"]
KEY_KINDS: tuple[str, ...] = get_args(KeyKind)

# Bounds that keep the arithmetic exact enough (microsecond TATs in a double)
# and catch typos such as "1000000000/s".
MAX_RATE = 1_000_000
MAX_PERIOD = 7 * 86400.0

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class RateLimitConfigError(ValueError):
    """A rate limit that cannot be built; the message names the field or string."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A GCRA limit: ``rate`` requests per ``per`` seconds, ``burst`` of them at once.

    ``burst`` is the bucket size: how many requests a key that has been idle
    may make back to back. It defaults to ``rate``, so ``100/min`` admits 100
    at once like a fixed window would, but refills one request every 0.6 s
    instead of all at once at the window edge. Over any interval of ``d``
    seconds a key gets at most ``burst + d * rate / per`` requests.

    ``name`` is the policy's identifier in the ``RateLimit`` response headers;
    it defaults to the key kind.
    """

    rate: int
    per: float
    burst: int = 0
    key: KeyKind = "ip"
    name: str = ""
    emission_interval: float = field(init=False, repr=False, compare=False)
    slug: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int):
            raise RateLimitConfigError(f"rate must be an int, got {type(self.rate).__name__}")
        if not 1 <= self.rate <= MAX_RATE:
            raise RateLimitConfigError(f"rate must be in 1..{MAX_RATE}, got {self.rate}")
        per = self.per
        if isinstance(per, bool) or not isinstance(per, int | float) or not math.isfinite(per):
            raise RateLimitConfigError(f"per must be a finite number of seconds, got {per!r}")
        if not 0 < per <= MAX_PERIOD:
            raise RateLimitConfigError(f"per must be in (0, {MAX_PERIOD:g}] seconds, got {per}")
        burst = self.burst or self.rate
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_RATE:
            raise RateLimitConfigError(f"burst must be an int in 1..{MAX_RATE}, got {burst!r}")
        if self.key not in KEY_KINDS:
            kinds = ", ".join(KEY_KINDS)
            raise RateLimitConfigError(f"key must be one of {kinds}, got {self.key!r}")
        name = self.name or self.key
        if not _NAME.fullmatch(name):
            raise RateLimitConfigError(
                f"name must be 1-64 of A-Z a-z 0-9 _ . - (it goes into a header), got {name!r}"
            )
        object.__setattr__(self, "per", float(per))
        object.__setattr__(self, "burst", burst)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "emission_interval", per / self.rate)
        # A short, stable id of the parameters, used in storage keys: two limits
        # on one key with different parameters must not share state, or the
        # stricter would consume the other's allowance.
        object.__setattr__(self, "slug", f"{self.rate}/{float(per):g}/{burst}")

    @classmethod
    def parse(cls, text: str, *, burst: int = 0, key: KeyKind = "ip", name: str = "") -> RateLimit:
        """Build a limit from ``"<count>/<unit>"`` or ``"<count>/<n><unit>"``.

        Examples: ``"100/s"``, ``"6000/min"``, ``"10/5s"``, ``"1000/day"``.

        Raises:
            RateLimitConfigError: naming the string and what was expected.
        """
        try:
            count, per = parse_rate(text)
        except ValueError as exc:
            raise RateLimitConfigError(str(exc)) from None
        try:
            return cls(rate=count, per=per, burst=burst, key=key, name=name)
        except RateLimitConfigError as exc:
            raise RateLimitConfigError(f"rate limit {text!r}: {exc}") from None
