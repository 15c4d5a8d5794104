"""The Redis backend: limits shared by every gateway instance.

Each decision is one atomic Lua script (EVALSHA, falling back to EVAL when
the server answers NOSCRIPT, which also caches it there again). The script
reads the clock with TIME on the Redis server, so the gateway hosts' clocks
never enter the arithmetic, and stores the key's TAT with a TTL equal to the
time until it passes, so idle keys leave Redis by themselves.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from ramparts.ratelimit._backend import BackendUnavailable
from ramparts.ratelimit._config import RateLimit
from ramparts.ratelimit._decision import Decision
from ramparts.ratelimit._gcra import US

DEFAULT_PREFIX = "ramparts:rl:"

# Times are integer microseconds; TAT is stored with %.17g so a double round
# trips exactly. TIME in a script needs effects replication: the default from
# Redis 5 and the only mode from 7; redis.replicate_commands() turns it on for
# 3.2 to 4.x and is a no-op after.
GCRA_LUA = """\
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now
if ARGV[3] ~= nil and ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at - now > interval * 1e-9 then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat),
           'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return {1, math.max(0, math.floor((now - allow_at) / interval + 1e-9)), math.ceil(new_tat - now), 0}
"""
GCRA_SHA1 = hashlib.sha1(GCRA_LUA.encode(), usedforsecurity=False).hexdigest()


class RedisBackend:
    """GCRA state in Redis under ``prefix``, one round trip per decision.

    Takes an asyncio client so the caller controls pooling and TLS; use
    :meth:`from_url` for one with short timeouts and no backoff, since a
    limiter on the request path must learn of an outage in milliseconds, not
    after retries with a 10 s cap (redis-py's default).
    """

    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix:
            raise ValueError("prefix must not be empty: limiter keys would mix with other data")
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 0.5,
        max_connections: int = 64,
    ) -> RedisBackend:
        """A backend with its own client: ``timeout`` seconds to connect and per command.

        The pool blocks (up to ``timeout``) when all ``max_connections`` are
        busy: redis-py's default pool raises instead, which under a burst of
        concurrent requests would read as an outage. One immediate retry
        covers a pooled connection that died while idle (e.g. after a Redis
        restart); a real outage still fails fast.
        """
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(Redis.from_pool(pool), prefix=prefix)

    async def decide(self, key: str, limit: RateLimit) -> Decision:
        """Decide one request for ``key`` at the Redis server's time.

        Raises:
            BackendUnavailable: Redis could not be reached or refused the script.
        """
        return await self._run(key, limit, "")

    async def decide_at_time(self, key: str, limit: RateLimit, now: float) -> Decision:
        """:meth:`decide` at an explicit ``now`` (Unix seconds), for tests and replays."""
        return await self._run(key, limit, str(round(now * US)))

    async def _run(self, key: str, limit: RateLimit, now_us: str) -> Decision:
        args = (repr(limit.emission_interval * US), limit.burst, now_us)
        name = self.prefix + key
        try:
            try:
                reply = await self.client.evalsha(GCRA_SHA1, 1, name, *args)
            except NoScriptError:
                reply = await self.client.eval(GCRA_LUA, 1, name, *args)
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"redis rate-limit backend: {exc.__class__.__name__}") from exc
        allowed, remaining, reset_us, retry_us = (int(v) for v in reply)
        return Decision(
            allowed=bool(allowed),
            limit=limit.burst,
            remaining=remaining,
            reset_after=reset_us / US,
            retry_after=retry_us / US,
            policy=limit,
            status=200 if allowed else 429,
        )

    async def aclose(self) -> None:
        """Close the client and its pool."""
        await self.client.aclose()
