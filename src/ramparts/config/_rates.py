"""The rate grammar of ``ramparts.yaml`` (``"100/s"``, ``"6000/min"``, ``"10/5s"``).

One grammar for the topology and for :class:`ramparts.ratelimit.RateLimit`, so
a rate the file accepts is exactly a rate the limiter enforces.
"""

from __future__ import annotations

import re

# Unit names accepted after the slash, in seconds. "m" is left out on purpose:
# it reads as minute to some and month to others.
UNITS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*")


def parse_rate(text: str) -> tuple[int, float]:
    """``"<count>/<unit>"`` or ``"<count>/<n><unit>"`` as (count, period in seconds).

    Raises ValueError naming the string and what was expected.
    """
    if not isinstance(text, str):
        raise ValueError(f"rate limit must be a string, got {type(text).__name__}")
    match = _RATE.fullmatch(text)
    if match is None:
        raise ValueError(f"rate limit {text!r} is not '<count>/<unit>' like '100/s' or '6000/min'")
    count, multiple, unit = match.groups()
    seconds = UNITS.get(unit.lower())
    if seconds is None:
        raise ValueError(
            f"rate limit {text!r}: unknown unit {unit!r}, expected one of {', '.join(UNITS)}"
        )
    factor = float(multiple) if multiple is not None else 1.0
    if factor <= 0:
        raise ValueError(f"rate limit {text!r}: the period must be positive")
    return int(count), factor * seconds
