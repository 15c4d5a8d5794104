"""The in-memory backend: one gateway instance, O(1) per decision, bounded."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ramparts.ratelimit._config import RateLimit
from ramparts.ratelimit._decision import Decision
from ramparts.ratelimit._gcra import US, gcra_at_time

DEFAULT_MAX_KEYS = 100_000

# How many least-recently-used entries to test for expiry per decision. Two
# keeps the sweep O(1) yet outpaces the one key a decision can add.
_SWEEP = 2


class MemoryBackend:
    """GCRA state in a dict, least recently used first.

    Bounded two ways: entries whose TAT has passed carry no state and are
    dropped as the LRU end is swept, and beyond ``max_keys`` the least recently
    used entry is evicted even if live. An evicted key starts again with a full
    burst, so size ``max_keys`` above the number of keys active within one
    ``per`` (100 000 IPv4 keys take about 20 MB with their strings). A key is
    touched on every decision, denied ones included, so a client being
    throttled stays at the recent end: to get it evicted, other traffic must
    bring ``max_keys`` new keys between two of its requests.

    Safe to share between an event loop and threads: a short lock guards the
    dict (no await happens while it is held).
    """

    def __init__(
        self, *, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.max_keys = max_keys
        self._clock = clock
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    async def decide(self, key: str, limit: RateLimit) -> Decision:
        """Decide one request for ``key`` now."""
        return self.decide_at_time_nowait(key, limit, self._clock())

    async def decide_at_time(self, key: str, limit: RateLimit, now: float) -> Decision:
        """:meth:`decide` at an explicit ``now`` (seconds on this backend's clock)."""
        return self.decide_at_time_nowait(key, limit, now)

    def decide_at_time_nowait(self, key: str, limit: RateLimit, now: float) -> Decision:
        """The synchronous core, for callers without an event loop."""
        tats = self._tats
        now_us = round(now * US)
        with self._lock:
            new_tat, decision = gcra_at_time(tats.get(key), now_us, limit)
            if new_tat is not None:
                tats[key] = new_tat
                tats.move_to_end(key)
            elif key in tats:
                tats.move_to_end(key)
            for _ in range(_SWEEP):
                oldest = next(iter(tats), None)
                if oldest is None or tats[oldest] > now_us:
                    break
                del tats[oldest]
            while len(tats) > self.max_keys:
                tats.popitem(last=False)
        return decision

    async def aclose(self) -> None:
        """Nothing to release; here so both backends close the same way."""
