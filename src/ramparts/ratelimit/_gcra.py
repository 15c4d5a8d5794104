"""The generic cell rate algorithm (GCRA), free of I/O and of the clock.

GCRA keeps one number per key, the theoretical arrival time (TAT): when the
key's bucket would be empty again if no more requests came. With emission
interval ``T = per / rate`` and burst ``B``, a request at ``now`` is admitted
iff ``max(TAT, now) + T - B*T <= now``; admitting it moves TAT to
``max(TAT, now) + T``. A TAT in the past is the same as no TAT, so state for
idle keys can be dropped. Times are microseconds, the resolution of Redis
TIME. The Redis backend runs the same steps in Lua (``_redis.GCRA_LUA``);
tests check the two agree step by step.
"""

from __future__ import annotations

from ramparts.ratelimit._config import RateLimit
from ramparts.ratelimit._decision import Decision

# Float rounding tolerance, in emission intervals: a request within a
# billionth of an interval of its slot is on time, and exactly N intervals of
# credit is never counted as N - 1 (e.g. now + 2T - 2T landing one ulp above now).
_EPSILON = 1e-9


US = 1_000_000


def gcra_at_time(tat: float | None, now: float, limit: RateLimit) -> tuple[float | None, Decision]:
    """Decide one request at ``now`` given the stored ``tat`` (None if none).

    Both are in microseconds: ``now`` a whole number (both backends round the
    clock to 1 us), ``tat`` a double. The steps and their order are exactly the
    Lua script's, so IEEE 754 doubles give both backends identical answers.

    Returns the TAT to store (None when the request is denied: state does not
    change) and the decision.
    """
    interval = limit.emission_interval * US
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    allow_at = new_tat - limit.burst * interval
    if allow_at - now > interval * _EPSILON:
        # Denied: state is unchanged; positional arguments keep this path cheap.
        return None, Decision(
            False, limit.burst, 0, (base - now) / US, (allow_at - now) / US, limit, 429
        )
    remaining = int((now - allow_at) / interval + _EPSILON)  # >= 0 here, so int() floors
    return new_tat, Decision(True, limit.burst, remaining, (new_tat - now) / US, 0.0, limit)
