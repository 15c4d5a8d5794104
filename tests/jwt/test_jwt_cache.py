"""The verification cache: hits, bounds, expiry on hit, invalidation by key change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.jwt.jwt_helpers import NOW, FakeMonotonic, Keys, jwks_of, mint, policy, write_jwks

from ramparts.jwt import (
    ClaimsRejectedError,
    JWKSSource,
    JWTError,
    JWTValidator,
    KeyResolutionError,
    VerificationCache,
    token_digest,
)


def make(path: Path, clock: FakeMonotonic, cache_size: int = 100) -> JWTValidator:
    p = policy(path)
    source = JWKSSource(str(path), clock=clock, min_refresh_interval=30)
    return JWTValidator([p], sources={p.issuer: source}, cache_size=cache_size)


@pytest.fixture
def jwks_path(tmp_path: Path, keys: Keys) -> Path:
    return write_jwks(tmp_path / "jwks.json", jwks_of(keys.rsa, keys.rsa2))


def test_second_verification_is_a_hit(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """The same token twice: one miss, one hit, same result."""
    validator = make(jwks_path, monotonic)
    token = mint(keys.rsa)

    async def scenario():
        return [await validator.verify_at_time(token, NOW) for _ in range(2)]

    first, second = asyncio.run(scenario())
    assert first == second
    stats = validator.cache_statistics()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_changed_token_is_a_miss(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """Twin: one flipped character is a different key, and is verified (and refused)."""
    validator = make(jwks_path, monotonic)
    token = mint(keys.rsa)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]

    async def scenario():
        await validator.verify_at_time(token, NOW)
        await validator.verify_at_time(tampered, NOW)

    with pytest.raises(JWTError) as caught:
        asyncio.run(scenario())
    assert caught.value.reason in {"bad_signature", "bad_encoding"}
    assert validator.cache_statistics().hits == 0


def test_cache_is_bounded_lru(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """Never more than max entries; the least recently used goes first."""
    validator = make(jwks_path, monotonic, cache_size=2)
    a, b, c = (mint(keys.rsa, sub=s) for s in "abc")

    async def scenario():
        for token in (a, b, a, c):  # b is now least recently used
            await validator.verify_at_time(token, NOW)
        await validator.verify_at_time(a, NOW)

    asyncio.run(scenario())
    stats = validator.cache_statistics()
    assert stats.entries == 2
    assert stats.evictions == 1
    assert stats.hits == 2  # the second and third look-ups of a


def test_hit_is_rejudged_at_the_callers_time(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """A cached token still expires, and is not valid before nbf at an earlier instant."""
    validator = make(jwks_path, monotonic)
    token = mint(keys.rsa, nbf=int(NOW) - 10, exp=int(NOW) + 300)

    async def scenario():
        await validator.verify_at_time(token, NOW)
        with pytest.raises(ClaimsRejectedError) as early:
            await validator.verify_at_time(token, NOW - 100)
        assert early.value.reason == "not_yet_valid"
        with pytest.raises(ClaimsRejectedError) as late:
            await validator.verify_at_time(token, NOW + 331)
        assert late.value.reason == "expired"

    asyncio.run(scenario())
    assert validator.cache_statistics().entries == 0


def test_rotated_key_material_under_same_kid_invalidates(
    tmp_path: Path, keys: Keys, monotonic: FakeMonotonic
):
    """Same kid, new key: entries verified by the old material are dropped."""
    path = write_jwks(tmp_path / "jwks.json", jwks_of(keys.rsa))
    validator = make(path, monotonic)
    token = mint(keys.rsa)
    from joserfc.jwk import RSAKey

    replacement = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})

    async def scenario():
        await validator.verify_at_time(token, NOW)
        write_jwks(path, jwks_of(replacement))
        monotonic.advance(31)
        await validator.source("https://idp.test").refresh()
        assert validator.cache_statistics().entries == 0
        with pytest.raises(JWTError) as caught:
            await validator.verify_at_time(token, NOW)
        assert caught.value.reason == "bad_signature"
        assert (await validator.verify_at_time(mint(replacement), NOW)).kid == "rsa-1"

    asyncio.run(scenario())


def test_unrelated_key_change_keeps_entries(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """Twin: removing another key leaves entries verified by rsa-1 in place."""
    validator = make(jwks_path, monotonic)
    token = mint(keys.rsa)

    async def scenario():
        await validator.verify_at_time(token, NOW)
        write_jwks(jwks_path, jwks_of(keys.rsa))
        monotonic.advance(31)
        await validator.source("https://idp.test").refresh()
        assert validator.source("https://idp.test").generation == 2
        await validator.verify_at_time(token, NOW)

    asyncio.run(scenario())
    assert validator.cache_statistics().hits == 1


def test_file_removed_keeps_cached_keys(jwks_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """A JWKS file that disappears is an outage, not an empty key set."""
    validator = make(jwks_path, monotonic, cache_size=0)

    async def scenario():
        await validator.verify_at_time(mint(keys.rsa), NOW)
        jwks_path.unlink()
        monotonic.advance(31)
        await validator.source("https://idp.test").refresh()
        return await validator.verify_at_time(mint(keys.rsa, sub="still"), NOW)

    assert asyncio.run(scenario()).subject == "still"


def test_missing_file_from_start_fails_closed(tmp_path: Path, keys: Keys, monotonic: FakeMonotonic):
    """No file, no keys: every token is refused."""
    validator = make(tmp_path / "absent.json", monotonic)
    with pytest.raises(KeyResolutionError) as caught:
        asyncio.run(validator.verify_at_time(mint(keys.rsa), NOW))
    assert caught.value.reason == "jwks_unavailable"


def test_cache_unit_forget_keys() -> None:
    """forget_keys drops exactly the entries indexed under the given thumbprints."""
    cache = VerificationCache(10)
    cache.put(token_digest("a"), _token(), "tp-1")
    cache.put(token_digest("b"), _token(), "tp-2")
    assert cache.forget_keys(["tp-1"]) == 1
    assert cache.get(token_digest("a")) is None
    assert cache.get(token_digest("b")) is not None


def _token():
    from types import MappingProxyType

    from ramparts.jwt import VerifiedToken

    return VerifiedToken(
        subject="s",
        issuer="i",
        audiences=("a",),
        scopes=frozenset(),
        expires_at=NOW + 60,
        kid="k",
        alg="RS256",
        claims=MappingProxyType({}),
    )
