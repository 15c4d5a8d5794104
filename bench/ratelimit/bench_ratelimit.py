"""Decisions per second: ramparts GCRA vs a naive fixed window (INCR + EXPIRE), side by side.

Run by hand: ``.venv/bin/python bench/ratelimit/bench_ratelimit.py [--redis URL]``.

The reference is the limiter most people write first: a counter per key and
window, ``INCR`` then ``EXPIRE ... NX`` (pipelined, so one round trip like our
one EVALSHA), and for memory a dict of (window, count). It is less accurate
(up to 2x the limit across a window edge) and cannot say when to retry; the
point of comparing is what the exact, shared GCRA costs per decision.

Each pair runs ROUNDS times, alternating ours and the reference, and the best
round of each is printed (the machine is shared: the best is the least
disturbed). Every loop is bounded by a count; all traffic goes to the Redis on
127.0.0.1, through the same connection pool for both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

from ramparts.events import EventEmitter, MemorySink
from ramparts.ratelimit import MemoryBackend, RateLimit, RateLimiter, RedisBackend, key_for
from ramparts.ratelimit._redis import GCRA_LUA, GCRA_SHA1

ROUNDS = 3
KEYS = [f"ip|bench|10.0.{i // 250}.{i % 250}" for i in range(1000)]
LIMIT = RateLimit.parse("1000000/h", burst=1_000_000)  # never denies: measures the decision


def rate(n: int, seconds: float) -> float:
    return n / seconds


def bench_sync(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return rate(n, time.perf_counter() - start)


async def bench_async(fn: Callable[[int], Awaitable[object]], n: int, tasks: int = 1) -> float:
    per_task = n // tasks

    async def worker(offset: int) -> None:
        for i in range(per_task):
            await fn(offset + i)

    start = time.perf_counter()
    await asyncio.gather(*(worker(t * per_task) for t in range(tasks)))
    return rate(per_task * tasks, time.perf_counter() - start)


async def bench_batches(fn: Callable[[int], Awaitable[object]], n: int, batch: int) -> float:
    start = time.perf_counter()
    for offset in range(0, n, batch):
        await fn(offset)
    return rate(n, time.perf_counter() - start)


class NaiveMemoryWindow:
    """The reference in memory: fixed one-hour windows, a dict of counters."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, now: float) -> bool:
        window = int(now // 3600)
        current, count = self.counts.get(key, (window, 0))
        count = count + 1 if current == window else 1
        self.counts[key] = (window, count)
        return count <= LIMIT.rate


def row(name: str, ours: float, ref: float) -> None:
    print(f"{name:<46} {ours:>12,.0f} {ref:>12,.0f} {ours / ref:>8.2f}x", flush=True)


def best_sync(name: str, ours: Callable[[], float], ref: Callable[[], float]) -> None:
    pairs = [(ours(), ref()) for _ in range(ROUNDS)]
    row(name, max(p[0] for p in pairs), max(p[1] for p in pairs))


async def best_async(
    name: str, ours: Callable[[], Awaitable[float]], ref: Callable[[], Awaitable[float]]
) -> None:
    pairs = [(await ours(), await ref()) for _ in range(ROUNDS)]
    row(name, max(p[0] for p in pairs), max(p[1] for p in pairs))


async def main(url: str, n_mem: int, n_redis: int) -> None:
    title = f"decisions/s (best of {ROUNDS})"
    print(f"{title:<46} {'GCRA':>12} {'fixed win':>12} {'ratio':>9}")

    memory = MemoryBackend()
    naive = NaiveMemoryWindow()
    clock = time.monotonic
    best_sync(
        "memory, backend core (sync)",
        lambda: bench_sync(
            lambda i: memory.decide_at_time_nowait(KEYS[i % 1000], LIMIT, clock()), n_mem
        ),
        lambda: bench_sync(lambda i: naive.hit(KEYS[i % 1000], clock()), n_mem),
    )

    limiter = RateLimiter(MemoryBackend(), EventEmitter([MemorySink()], service="bench"))
    ips = [k.rsplit("|", 1)[1] for k in KEYS]

    async def full_path(i: int) -> object:
        return await limiter.check(key_for("ip", ips[i % 1000], route="bench"), LIMIT)

    async def naive_async(i: int) -> bool:
        return naive.hit(KEYS[i % 1000], clock())

    await best_async(
        "memory, key_for + RateLimiter.check (async)",
        lambda: bench_async(full_path, n_mem),
        lambda: bench_async(naive_async, n_mem),
    )

    prefix = f"bench:{secrets.token_hex(4)}:"
    backend = RedisBackend.from_url(url, prefix=prefix, max_connections=64)
    client = backend.client
    await client.ping()
    await client.script_load(GCRA_LUA)
    interval_us = repr(LIMIT.emission_interval * 1_000_000)

    async def gcra(i: int) -> object:
        return await backend.decide(KEYS[i % 1000], LIMIT)

    async def fixed_window(i: int) -> object:
        key = f"{prefix}fw:{KEYS[i % 1000]}"
        pipe = client.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, 3600, nx=True)
        return await pipe.execute()

    batch = 64

    async def gcra_pipeline(offset: int) -> object:
        pipe = client.pipeline(transaction=False)
        for i in range(offset, offset + batch):
            pipe.evalsha(GCRA_SHA1, 1, prefix + KEYS[i % 1000], interval_us, LIMIT.burst, "")
        return await pipe.execute()

    async def fixed_pipeline(offset: int) -> object:
        pipe = client.pipeline(transaction=False)
        for i in range(offset, offset + batch):
            key = f"{prefix}fw:{KEYS[i % 1000]}"
            pipe.incr(key)
            pipe.expire(key, 3600, nx=True)
        return await pipe.execute()

    try:
        await best_async(
            "redis, one client, sequential",
            lambda: bench_async(gcra, n_redis),
            lambda: bench_async(fixed_window, n_redis),
        )
        for tasks in (8, 32):
            await best_async(
                f"redis, {tasks} concurrent tasks (pool)",
                lambda t=tasks: bench_async(gcra, n_redis, tasks=t),
                lambda t=tasks: bench_async(fixed_window, n_redis, tasks=t),
            )
        await best_async(
            f"redis, pipelined batches of {batch}",
            lambda: bench_batches(gcra_pipeline, n_redis * 4, batch),
            lambda: bench_batches(fixed_pipeline, n_redis * 4, batch),
        )
    finally:
        keys_left = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for start in range(0, len(keys_left), 500):
            await client.delete(*keys_left[start : start + 500])
        await backend.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--memory-ops", type=int, default=200_000)
    parser.add_argument("--redis-ops", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.memory_ops, args.redis_ops))
