"""The gateway's JWT validator: issuer policies + JWKS sources + result cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ramparts.events import EventEmitter
from ramparts.jwt._cache import (
    DEFAULT_MAX_ENTRIES,
    CacheStatistics,
    VerificationCache,
    token_digest,
)
from ramparts.jwt._claims import (
    VerifiedToken,
    check_claims_at_time,
    check_times_at_time,
    parse_claims,
    require_scopes,
)
from ramparts.jwt._errors import (
    ClaimsRejectedError,
    JWTError,
    KeyResolutionError,
    MalformedTokenError,
    quote_untrusted,
)
from ramparts.jwt._jwks import JWKSSource
from ramparts.jwt._jws import check_header, parse_compact, verify_signature
from ramparts.jwt._keys import KeyRing, TrustedKey
from ramparts.jwt._policy import IssuerPolicy

#: Reasons after which a JWKS refresh may find the key (rotation).
_REFRESH_REASONS = frozenset({"unknown_kid"})


class JWTValidator:
    """Verifies bearer tokens against one or more issuer policies.

    The issuer is chosen by the token's ``iss``; the signature must then
    verify with a key from *that* issuer's JWKS, so the unverified ``iss`` only
    selects which keys to try. Every rejection emits one ``jwt.rejected``
    event (when an emitter is given) and raises a :class:`JWTError`.

    Args:
        policies: one per trusted issuer (issuers must be distinct).
        sources: optional prebuilt JWKS sources by issuer (tests inject
            clocks this way); missing ones are built from ``policy.jwks``.
        emitter: where ``jwt.rejected``/``jwt.accepted`` events go.
        cache_size: LRU bound of the verification cache (0 disables it).
        clock: wall-clock seconds for :meth:`verify`.
    """

    def __init__(
        self,
        policies: Iterable[IssuerPolicy],
        *,
        sources: Mapping[str, JWKSSource] | None = None,
        emitter: EventEmitter | None = None,
        cache_size: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
        source_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._policies: dict[str, IssuerPolicy] = {}
        for policy in policies:
            if policy.issuer in self._policies:
                raise ValueError(f"issuer {policy.issuer!r} is configured twice")
            self._policies[policy.issuer] = policy
        if not self._policies:
            raise ValueError("JWTValidator needs at least one issuer policy")
        given = dict(sources or {})
        unknown = set(given) - set(self._policies)
        if unknown:
            raise ValueError(f"JWKS sources given for unconfigured issuer(s) {sorted(unknown)}")
        self._sources: dict[str, JWKSSource] = {}
        for issuer, policy in self._policies.items():
            source = given.get(issuer) or JWKSSource(
                policy.jwks, allow_symmetric=policy.symmetric, **dict(source_options or {})
            )
            source.add_listener(self._on_keys_changed)
            self._sources[issuer] = source
        self._max_bytes = max(p.max_token_bytes for p in self._policies.values())
        self._cache = VerificationCache(cache_size)
        self._emitter = emitter
        self._clock = clock

    # -- public surface -------------------------------------------------

    @property
    def policies(self) -> Mapping[str, IssuerPolicy]:
        return dict(self._policies)

    def source(self, issuer: str) -> JWKSSource:
        return self._sources[issuer]

    def cache_statistics(self) -> CacheStatistics:
        return self._cache.statistics()

    async def verify(self, token: str, *, peer: str | None = None) -> VerifiedToken:
        """Verify ``token`` now. See :meth:`verify_at_time`."""
        return await self.verify_at_time(token, self._clock(), peer=peer)

    async def verify_at_time(
        self, token: str, now: float, *, peer: str | None = None
    ) -> VerifiedToken:
        """Verify ``token`` as of ``now`` (seconds since the epoch).

        Raises:
            JWTError: a subclass naming the first rule that failed.
        """
        context: dict[str, Any] = {}
        try:
            verified = await self._verify(token, now, context)
        except JWTError as exc:
            self._emit_deny("jwt.rejected", exc, peer, context)
            raise
        if self._emitter is not None:
            self._emitter.allow(
                "jwt.accepted",
                reason="token verified",
                peer=peer,
                detail={"issuer": verified.issuer, "kid": verified.kid, "subject": verified.subject,
                        "cached": context.get("cached", False)},
            )  # fmt: skip
        return verified

    def require_scopes(
        self, token: VerifiedToken, required: Iterable[str], *, peer: str | None = None
    ) -> None:
        """Check a route's required scopes against a verified token.

        Raises:
            InsufficientScopeError: naming the missing scopes (an HTTP 403).
        """
        try:
            require_scopes(token, required)
        except JWTError as exc:
            self._emit_deny(
                "jwt.scope_denied",
                exc,
                peer,
                {"issuer": token.issuer, "kid": token.kid, "subject": token.subject},
            )
            raise

    def verify_many_at_time_sync(
        self, tokens: Sequence[str], now: float | None = None
    ) -> list[VerifiedToken | JWTError]:
        """Blocking convenience for the CLI: verify each token in one event loop.

        Returns, per token, the :class:`VerifiedToken` or the :class:`JWTError`.
        """

        async def run() -> list[VerifiedToken | JWTError]:
            out: list[VerifiedToken | JWTError] = []
            for token in tokens:
                try:
                    out.append(
                        await self.verify_at_time(token, self._clock() if now is None else now)
                    )
                except JWTError as exc:
                    out.append(exc)
            return out

        return asyncio.run(run())

    def verify_sync(self, token: str, now: float | None = None) -> VerifiedToken:
        """Blocking convenience: verify one token (not for use inside an event loop)."""
        result = self.verify_many_at_time_sync([token], now)[0]
        if isinstance(result, JWTError):
            raise result
        return result

    # -- the decision ---------------------------------------------------

    async def _verify(self, token: str, now: float, context: dict[str, Any]) -> VerifiedToken:
        if not isinstance(token, str):
            raise MalformedTokenError(f"token must be a string, got {type(token).__name__}")
        if len(token) > self._max_bytes:
            # Checked before hashing so a huge header costs nothing.
            raise MalformedTokenError(
                f"token is {len(token)} bytes, limit is {self._max_bytes}", reason="too_large"
            )
        digest = token_digest(token)
        hit = self._cache_lookup(digest, now, context)
        if hit is not None:
            return hit

        parsed = parse_compact(token, max_bytes=self._max_bytes)
        context["kid"] = parsed.kid
        context["alg"] = parsed.alg
        if parsed.alg.lower() == "none":
            # Judged before anything issuer-specific, so it is always named as such.
            check_header(parsed, ())
        claims = parse_claims(parsed.payload)
        policy = self._policy_for(claims)
        context["issuer"] = policy.issuer
        if len(token) > policy.max_token_bytes:
            raise MalformedTokenError(
                f"token is {len(token)} bytes, limit for {policy.issuer!r} "
                f"is {policy.max_token_bytes}",
                reason="too_large",
            )
        check_header(parsed, policy.algorithms)
        source = self._sources[policy.issuer]
        key = await self._select_key(source, parsed.alg, parsed.kid)
        verify_signature(parsed, key)
        verified = check_claims_at_time(claims, policy, now=now, kid=key.kid, alg=parsed.alg)
        self._cache.put(digest, verified, key.thumbprint)
        return verified

    def _cache_lookup(
        self, digest: bytes, now: float, context: dict[str, Any]
    ) -> VerifiedToken | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        verified = entry.token
        ring = self._sources[verified.issuer].keyring
        if ring is None or entry.thumbprint not in ring.thumbprints:
            # The verifying key is no longer trusted: verify from scratch.
            self._cache.discard(digest)
            return None
        context.update(issuer=verified.issuer, kid=verified.kid, alg=verified.alg, cached=True)
        try:
            check_times_at_time(
                verified.claims, now, self._policies[verified.issuer].leeway_seconds
            )
        except ClaimsRejectedError as exc:
            if exc.reason == "expired":
                self._cache.discard(digest)
            raise
        return verified

    def _policy_for(self, claims: Mapping[str, Any]) -> IssuerPolicy:
        iss = claims.get("iss")
        if iss is None:
            raise ClaimsRejectedError("claim 'iss' is required", reason="missing_claim")
        if not isinstance(iss, str):
            raise ClaimsRejectedError("claim 'iss' must be a string", reason="bad_claim_type")
        policy = self._policies.get(iss)
        if policy is None:
            raise ClaimsRejectedError(
                f"issuer {quote_untrusted(iss)} is not trusted", reason="unknown_issuer"
            )
        return policy

    async def _select_key(self, source: JWKSSource, alg: str, kid: str | None) -> TrustedKey:
        ring: KeyRing = await source.get_keyring()
        try:
            return ring.select(alg, kid)
        except KeyResolutionError as exc:
            if exc.reason not in _REFRESH_REASONS:
                raise
            # The issuer may have rotated: refresh (rate-limited, shared) and retry once.
            await source.refresh()
            fresh = source.keyring
            if fresh is None or fresh is ring:
                raise
            return fresh.select(alg, kid)

    def _on_keys_changed(self, old: KeyRing | None, new: KeyRing) -> None:
        if old is not None:
            self._cache.forget_keys(old.thumbprints - new.thumbprints)

    def _emit_deny(
        self, type_: str, exc: JWTError, peer: str | None, context: Mapping[str, Any]
    ) -> None:
        if self._emitter is None:
            return
        detail: dict[str, Any] = {"reason_code": exc.reason}
        for name in ("issuer", "kid", "alg", "subject"):
            value = context.get(name)
            if value is not None:
                detail[name] = value if name == "issuer" else quote_untrusted(value).strip("'\"")
        self._emitter.deny(type_, reason=exc.message, peer=peer, detail=detail)
