"""The JWT layer: claim rules (RFC 7519 section 4.1) and the verified result.

Every check here reads the clock through an explicit ``now`` (seconds since
the epoch), so tests and replays judge a token at any instant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from ramparts.jwt._codec import DuplicateMemberError, loads_object
from ramparts.jwt._errors import (
    ClaimsRejectedError,
    InsufficientScopeError,
    MalformedTokenError,
    quote_untrusted,
)
from ramparts.jwt._policy import IssuerPolicy

#: Claims that always have to be present: a token that never expires cannot
#: be cached safely and never stops working once leaked.
ALWAYS_REQUIRED = ("exp", "iss")

_NUMERIC_DATES = ("exp", "nbf", "iat")


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims were accepted. Immutable.

    ``claims`` is a read-only view (nested objects and arrays are frozen too).
    The token itself is not kept, so this object is safe to log.
    """

    subject: str | None
    issuer: str
    audiences: tuple[str, ...]
    scopes: frozenset[str]
    expires_at: float
    kid: str | None
    alg: str
    claims: Mapping[str, Any]

    @property
    def expiry(self) -> datetime:
        """``exp`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.expires_at, UTC)


def parse_claims(payload: bytes) -> dict[str, Any]:
    """Decode a JWT payload: a duplicate-free JSON object.

    Raises:
        MalformedTokenError: ``bad_json`` or ``duplicate_member``.
    """
    try:
        return loads_object(payload)
    except DuplicateMemberError as exc:
        raise MalformedTokenError(f"claims: {exc}", reason="duplicate_member") from None
    except ValueError as exc:
        raise MalformedTokenError(f"claims: {exc}", reason="bad_json") from None


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int subclass in Python; JSON true is not a NumericDate.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClaimsRejectedError(
            f"claim {name!r} must be a JSON number, got {type(value).__name__}",
            reason="bad_claim_type",
        )
    return float(value)


def check_times_at_time(claims: Mapping[str, Any], now: float, leeway: float) -> float:
    """Check ``exp``, ``nbf`` and ``iat`` against ``now`` with ``leeway``; return ``exp``.

    Raises:
        ClaimsRejectedError: ``missing_claim`` (no exp), ``bad_claim_type``,
            ``expired``, ``not_yet_valid`` or ``issued_in_future``.
    """
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is None:
        raise ClaimsRejectedError("claim 'exp' is required", reason="missing_claim")
    # RFC 7519 4.1.4: the current time MUST be before exp (plus leeway).
    if now >= exp + leeway:
        raise ClaimsRejectedError(
            f"token expired at {_iso(exp)} (now {_iso(now)})", reason="expired"
        )
    # RFC 7519 4.1.5: the current time MUST be at or after nbf (minus leeway).
    if nbf is not None and now + leeway < nbf:
        raise ClaimsRejectedError(
            f"token not valid before {_iso(nbf)} (now {_iso(now)})", reason="not_yet_valid"
        )
    # An iat in the future is a clock problem or a forged lifetime; refuse it.
    if iat is not None and iat > now + leeway:
        raise ClaimsRejectedError(
            f"token issued in the future at {_iso(iat)}", reason="issued_in_future"
        )
    return exp


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f}"


def _audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if aud is None:
        return ()
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    raise ClaimsRejectedError(
        "claim 'aud' must be a string or a list of strings", reason="bad_claim_type"
    )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    scopes: set[str] = set()
    # RFC 8693 section 4.2 / RFC 9068: "scope" is one space-separated string.
    if "scope" in claims:
        scope = claims["scope"]
        if not isinstance(scope, str):
            raise ClaimsRejectedError(
                "claim 'scope' must be a space-separated string", reason="bad_claim_type"
            )
        scopes.update(scope.split())
    # "scp" is a list in Okta-style tokens and a space-separated string in Entra ID.
    if "scp" in claims:
        scp = claims["scp"]
        if isinstance(scp, str):
            scopes.update(scp.split())
        elif isinstance(scp, list) and all(isinstance(s, str) for s in scp):
            scopes.update(scp)
        else:
            raise ClaimsRejectedError(
                "claim 'scp' must be a list of strings or a string", reason="bad_claim_type"
            )
    return frozenset(scopes)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def check_claims_at_time(
    claims: Mapping[str, Any],
    policy: IssuerPolicy,
    *,
    now: float,
    kid: str | None,
    alg: str,
) -> VerifiedToken:
    """Apply ``policy`` to signature-verified claims, judged at ``now``.

    Raises:
        ClaimsRejectedError: the first rule that fails, with its reason code.
    """
    for name in (*ALWAYS_REQUIRED, *policy.required_claims):
        if name not in claims:
            raise ClaimsRejectedError(f"claim {name!r} is required", reason="missing_claim")
    exp = check_times_at_time(claims, now, policy.leeway_seconds)
    iss = claims["iss"]
    if iss != policy.issuer:
        raise ClaimsRejectedError(
            f"issuer {quote_untrusted(iss)} is not {policy.issuer!r}", reason="issuer_mismatch"
        )
    audiences = _audiences(claims)
    if not set(audiences) & set(policy.audiences):
        raise ClaimsRejectedError(
            f"audience {quote_untrusted(list(audiences))} names none of {list(policy.audiences)}",
            reason="audience_mismatch",
        )
    subject = claims.get("sub")
    if subject is not None and not isinstance(subject, str):
        raise ClaimsRejectedError("claim 'sub' must be a string", reason="bad_claim_type")
    return VerifiedToken(
        subject=subject,
        issuer=policy.issuer,
        audiences=audiences,
        scopes=_scopes(claims),
        expires_at=exp,
        kid=kid,
        alg=alg,
        claims=_freeze(dict(claims)),
    )


def require_scopes(token: VerifiedToken, required: Iterable[str]) -> None:
    """Check that ``token`` carries every scope in ``required`` (a route's needs).

    Raises:
        InsufficientScopeError: naming the missing scopes.
    """
    missing = sorted(set(required) - token.scopes)
    if missing:
        raise InsufficientScopeError(f"token lacks required scope(s) {missing}")
