"""One gateway instance for test_shared_accuracy: hammer one key, print counts as JSON.

Run as ``python accuracy_worker.py URL PREFIX START_AT DURATION RATE PER BURST``;
it waits until wall time START_AT so the processes start together.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from ramparts.ratelimit import RateLimit, RedisBackend

CONCURRENCY = 4


async def main(url: str, prefix: str, start_at: float, duration: float, limit: RateLimit) -> None:
    backend = RedisBackend.from_url(url, prefix=prefix, timeout=2.0)
    admitted = denied = 0
    first = last = 0.0
    try:
        await backend.client.ping()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        first = time.time()
        stop = first + duration

        async def hammer() -> None:
            nonlocal admitted, denied
            while time.time() < stop:
                decision = await backend.decide("shared-key", limit)
                if decision.allowed:
                    admitted += 1
                else:
                    denied += 1

        await asyncio.gather(*(hammer() for _ in range(CONCURRENCY)))
        last = time.time()
    finally:
        await backend.aclose()
    print(json.dumps({"admitted": admitted, "denied": denied, "first": first, "last": last}))


if __name__ == "__main__":
    url, prefix, start_at, duration, rate, per, burst = sys.argv[1:8]
    limit = RateLimit(rate=int(rate), per=float(per), burst=int(burst))
    asyncio.run(main(url, prefix, float(start_at), float(duration), limit))
