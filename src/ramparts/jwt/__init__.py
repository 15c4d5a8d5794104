"""Strict JWT validation for the gateway (RFC 7515, 7517, 7519, 8725).

>>> import asyncio, json, os, tempfile, time
>>> from joserfc import jwt as jose_jwt
>>> from joserfc.jwk import ECKey
>>> signing_key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
>>> jwks = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
>>> _ = jwks.write(json.dumps({"keys": [signing_key.as_dict(private=False)]})); jwks.close()
>>> policy = IssuerPolicy(issuer="https://idp.example", audiences=("bank",),
...                       algorithms=("ES256",), jwks=jwks.name)
>>> token = jose_jwt.encode({"alg": "ES256", "kid": "k1"},
...     {"iss": "https://idp.example", "aud": "bank", "sub": "alice",
...      "exp": int(time.time()) + 60, "scope": "payments:read"}, signing_key)
>>> validator = JWTValidator([policy])
>>> verified = asyncio.run(validator.verify(token))
>>> verified.subject, sorted(verified.scopes)
('alice', ['payments:read'])
>>> os.unlink(jwks.name)

Rules, in the order they are applied: size limit; strict compact form
(canonical base64url, duplicate-free JSON); ``alg`` never ``none`` and in the
issuer's allowlist (HS* never next to asymmetric algorithms); no ``crit``;
``jku``/``x5u``/``jwk``/``x5c`` ignored (keys come only from the issuer's
JWKS); key chosen by ``kid`` (without a kid only if exactly one key fits) and
its type and curve must fit the ``alg``; signature (joserfc); ``exp``
(required), ``nbf``, ``iat`` as JSON numbers with leeway; ``iss``; ``aud``;
required claims. Scopes are checked per route by :func:`require_scopes`.

Exceptions::

    JWTError                       .reason (machine code), str() / .message (human)
     +-- MalformedTokenError       malformed, too_large, bad_encoding, bad_json,
     |                             duplicate_member
     +-- HeaderRejectedError       alg_none, alg_not_allowed, crit_unsupported, bad_header
     +-- KeyResolutionError        unknown_kid, kid_required, key_mismatch, jwks_unavailable
     +-- SignatureInvalidError     bad_signature
     +-- ClaimsRejectedError       expired, not_yet_valid, issued_in_future, unknown_issuer,
     |                             issuer_mismatch, audience_mismatch, missing_claim,
     |                             bad_claim_type
     +-- InsufficientScopeError    insufficient_scope   (valid token, HTTP 403)
    JWKSError                      a JWKS document is unusable (configuration/upstream)

Every class before ``InsufficientScopeError`` means "unauthenticated" (HTTP 401).
"""

from ramparts.jwt._cache import CacheStatistics, VerificationCache, token_digest
from ramparts.jwt._claims import (
    VerifiedToken,
    check_claims_at_time,
    check_times_at_time,
    require_scopes,
)
from ramparts.jwt._errors import (
    ClaimsRejectedError,
    HeaderRejectedError,
    InsufficientScopeError,
    JWKSError,
    JWTError,
    KeyResolutionError,
    MalformedTokenError,
    SignatureInvalidError,
)
from ramparts.jwt._jwks import JWKSSource, SourceStatistics
from ramparts.jwt._jws import VerifiedJWS, verify_jws
from ramparts.jwt._keys import KeyRing, TrustedKey, parse_jwks
from ramparts.jwt._policy import ALGORITHMS, IssuerPolicy, KeyRequirement, policy_from_config
from ramparts.jwt._validator import JWTValidator

__all__ = [
    "ALGORITHMS",
    "CacheStatistics",
    "ClaimsRejectedError",
    "HeaderRejectedError",
    "InsufficientScopeError",
    "IssuerPolicy",
    "JWKSError",
    "JWKSSource",
    "JWTError",
    "JWTValidator",
    "KeyRequirement",
    "KeyResolutionError",
    "KeyRing",
    "MalformedTokenError",
    "SignatureInvalidError",
    "SourceStatistics",
    "TrustedKey",
    "VerificationCache",
    "VerifiedJWS",
    "VerifiedToken",
    "check_claims_at_time",
    "check_times_at_time",
    "parse_jwks",
    "policy_from_config",
    "require_scopes",
    "token_digest",
    "verify_jws",
]
