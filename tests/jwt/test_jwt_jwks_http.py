"""JWKS over real HTTP on 127.0.0.1: refresh, rotation, storms, outages.

The source's monotonic clock is a fake moved by hand, so refresh scheduling
is decided by the test, not by sleeping. Fetches are counted at the server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.jwt.jwt_helpers import NOW, FakeMonotonic, JWKSServer, Keys, mint, policy

from ramparts.jwt import JWKSSource, JWTValidator, KeyResolutionError, VerifiedToken

pytestmark = pytest.mark.timeout(60)


def make(server_url: str, clock: FakeMonotonic, **source: Any) -> JWTValidator:
    options: dict[str, Any] = {"min_refresh_interval": 30.0, "refresh_interval": 300.0}
    options.update(source)
    jwks = JWKSSource(server_url, clock=clock, fetch_timeout=5.0, **options)
    p = policy(server_url)
    return JWTValidator([p], sources={p.issuer: jwks})


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro())  # type: ignore[arg-type]


async def outcome(validator: JWTValidator, token: str) -> VerifiedToken | str:
    try:
        return await validator.verify_at_time(token, NOW)
    except KeyResolutionError as exc:
        return exc.reason


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def test_keys_load_on_first_use(jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic):
    """The first token loads the JWKS once; the next uses the cached keys."""
    validator = make(jwks_server.url, monotonic)

    async def scenario() -> None:
        assert (await validator.verify_at_time(mint(keys.rsa), NOW)).kid == "rsa-1"
        assert (await validator.verify_at_time(mint(keys.rsa, sub="bob"), NOW)).subject == "bob"

    run(scenario)
    assert jwks_server.fetch_count() == 1


def test_unknown_kid_triggers_refresh_and_rotation_is_picked_up(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """A new kid after rotation is found by one refresh; the removed key stops working."""
    validator = make(jwks_server.url, monotonic)
    old_token = mint(keys.rsa, sub="old")

    async def scenario() -> None:
        await validator.verify_at_time(old_token, NOW)
        jwks_server.set_keys(keys.rsa2)  # rsa-1 rotated out, rsa-2 in
        monotonic.advance(31)
        assert (await validator.verify_at_time(mint(keys.rsa2), NOW)).kid == "rsa-2"
        assert jwks_server.fetch_count() == 2
        assert await outcome(validator, mint(keys.rsa, sub="new")) == "unknown_kid"

    run(scenario)


def test_refresh_storm_is_limited_and_shared(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """50 concurrent tokens with made-up kids cause one fetch, not 50."""
    validator = make(jwks_server.url, monotonic)

    async def scenario() -> list[Any]:
        await validator.verify_at_time(mint(keys.rsa), NOW)
        monotonic.advance(31)
        jwks_server.hold = True  # hold the next fetch open until released
        tasks = [
            asyncio.create_task(outcome(validator, mint(keys.rsa2, header={"kid": f"made-up-{i}"})))
            for i in range(50)
        ]
        # Wait until the one fetch is in flight at the server, then let it answer.
        assert await asyncio.to_thread(jwks_server.waiting.acquire, True, 5)
        await asyncio.sleep(0.05)
        jwks_server.release.set()
        results = await asyncio.gather(*tasks)
        # Still inside the rate-limit window: more unknown kids fetch nothing.
        results.append(await outcome(validator, mint(keys.rsa2, header={"kid": "late"})))
        return results

    results = run(scenario)
    assert results == ["unknown_kid"] * 51
    assert jwks_server.fetch_count() == 2  # the first load + one refresh


def test_concurrent_callers_share_one_fetch_after_rotation(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """Twin of the storm test: real new-kid tokens all wait for the same fetch and pass."""
    validator = make(jwks_server.url, monotonic)

    async def scenario() -> list[Any]:
        await validator.verify_at_time(mint(keys.rsa), NOW)
        jwks_server.set_keys(keys.rsa, keys.rsa2)
        monotonic.advance(31)
        return await asyncio.gather(
            *(outcome(validator, mint(keys.rsa2, sub=f"u{i}")) for i in range(20))
        )

    results = run(scenario)
    assert all(isinstance(r, VerifiedToken) and r.kid == "rsa-2" for r in results)
    assert jwks_server.fetch_count() == 2


def test_endpoint_down_keeps_serving_cached_keys(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """After the scheduled refresh fails, known keys still verify."""
    validator = make(jwks_server.url, monotonic)
    source = validator.source("https://idp.test")

    async def scenario() -> None:
        await validator.verify_at_time(mint(keys.rsa), NOW)
        jwks_server.set_status(503)
        monotonic.advance(301)  # past refresh_interval: a background refresh starts
        verified = await validator.verify_at_time(mint(keys.rsa, sub="during-outage"), NOW)
        assert verified.subject == "during-outage"
        await wait_until(lambda: source.statistics().failures == 1)
        again = await validator.verify_at_time(mint(keys.rsa, sub="after-failure"), NOW)
        assert again.subject == "after-failure"

    run(scenario)
    stats = source.statistics()
    assert stats.keys == 1
    assert stats.last_error is not None and "503" in stats.last_error
    assert jwks_server.fetch_count() == 2


def test_scheduled_refresh_picks_up_new_keys(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """Twin of the outage test: a working endpoint's new keys arrive by schedule."""
    validator = make(jwks_server.url, monotonic)
    source = validator.source("https://idp.test")

    async def scenario() -> None:
        await validator.verify_at_time(mint(keys.rsa), NOW)
        jwks_server.set_keys(keys.rsa, keys.ec)
        monotonic.advance(301)
        await validator.verify_at_time(mint(keys.rsa, sub="x"), NOW)
        await wait_until(lambda: source.generation == 2)

    run(scenario)
    assert source.keyring is not None and source.keyring.kids == {"rsa-1", "ec-1"}


def test_no_key_known_fails_closed(jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic):
    """With the endpoint failing from the start every token is refused, and retries are limited."""
    jwks_server.set_status(500)
    validator = make(jwks_server.url, monotonic)

    async def scenario() -> list[Any]:
        return [await outcome(validator, mint(keys.rsa, sub=f"u{i}")) for i in range(5)]

    assert run(scenario) == ["jwks_unavailable"] * 5
    assert jwks_server.fetch_count() == 1


def test_unreachable_endpoint_fails_closed(keys: Keys, monotonic: FakeMonotonic):
    """A closed port (nothing listening) also means no keys and no acceptance."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    validator = make(f"http://127.0.0.1:{port}/jwks.json", monotonic)
    assert run(lambda: outcome(validator, mint(keys.rsa))) == "jwks_unavailable"


def test_cache_entry_dropped_when_key_removed(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """A cached acceptance does not outlive the key that verified it."""
    validator = make(jwks_server.url, monotonic)
    token = mint(keys.rsa)

    async def scenario() -> None:
        await validator.verify_at_time(token, NOW)
        await validator.verify_at_time(token, NOW)
        assert validator.cache_statistics().hits == 1
        jwks_server.set_keys(keys.rsa2)
        monotonic.advance(31)
        await validator.source("https://idp.test").refresh()
        assert validator.cache_statistics().entries == 0
        assert validator.cache_statistics().invalidations == 1
        assert await outcome(validator, token) == "unknown_kid"

    run(scenario)


def test_plain_http_only_to_loopback() -> None:
    """Keys over plain HTTP could be swapped in transit; only loopback may use it."""
    with pytest.raises(ValueError, match="https"):
        JWKSSource("http://idp.example/jwks.json")
    JWKSSource("https://idp.example/jwks.json")
    JWKSSource("http://127.0.0.1:8080/jwks.json")
    with pytest.raises(ValueError):
        JWKSSource("ftp://idp.example/jwks.json")


def test_oversized_jwks_is_refused(jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic):
    """A hostile endpoint cannot make us buffer an unbounded body."""
    jwks_server.document = {"keys": [], "padding": "x" * (600 * 1024)}
    validator = make(jwks_server.url, monotonic)
    assert run(lambda: outcome(validator, mint(keys.rsa))) == "jwks_unavailable"
    last_error = validator.source("https://idp.test").statistics().last_error
    assert last_error is not None and "more than" in last_error


def test_invalid_json_document_fails_closed(
    jwks_server: JWKSServer, keys: Keys, monotonic: FakeMonotonic
):
    """A body that is not a JWKS is an outage, recorded with the reason."""
    jwks_server.document = ["not", "a", "key", "set"]  # type: ignore[assignment]
    validator = make(jwks_server.url, monotonic)
    assert run(lambda: outcome(validator, mint(keys.rsa))) == "jwks_unavailable"
    last_error = validator.source("https://idp.test").statistics().last_error
    assert last_error is not None and "JWKSError" in last_error
