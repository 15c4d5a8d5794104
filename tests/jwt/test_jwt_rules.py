"""Every rejection rule, each with a twin token that passes.

Each case builds a bad token and a good twin that differs only in the point
under test; the bad one must raise the named class with the named reason
code and the twin must verify under the same policy. All judged at NOW.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey
from tests.jwt.jwt_helpers import (
    AUDIENCE,
    ISSUER,
    NOW,
    Keys,
    claims,
    jwks_of,
    mint,
    policy,
    public_jwk,
    sign_raw,
    write_jwks,
)

from ramparts.events import EventEmitter, MemorySink, Outcome
from ramparts.jwt import (
    ClaimsRejectedError,
    HeaderRejectedError,
    InsufficientScopeError,
    JWTError,
    JWTValidator,
    KeyResolutionError,
    MalformedTokenError,
    SignatureInvalidError,
    VerifiedToken,
)
from ramparts.jwt._codec import b64url_encode
from ramparts.jwt._jws import IGNORED_KEY_LOCATIONS


@pytest.fixture
def jwks_path(tmp_path: Path, keys: Keys) -> Path:
    return write_jwks(tmp_path / "jwks.json", jwks_of(keys.rsa, keys.ec, keys.ed))


def verify(
    token: str, jwks: Path, emitter: EventEmitter | None = None, **overrides: Any
) -> VerifiedToken:
    validator = JWTValidator([policy(jwks, **overrides)], cache_size=0, emitter=emitter)
    return asyncio.run(validator.verify_at_time(token, NOW))


Builder = Callable[[Keys], str]

# (id, bad, good, error class, reason, policy overrides for both)
CASES: list[tuple[str, Builder, Builder, type[JWTError], str, dict[str, Any]]] = [
    ("expired", lambda k: mint(k.rsa, exp=int(NOW) - 31), lambda k: mint(k.rsa, exp=int(NOW) - 29),
     ClaimsRejectedError, "expired", {}),
    ("not-yet-valid", lambda k: mint(k.rsa, nbf=int(NOW) + 31),
     lambda k: mint(k.rsa, nbf=int(NOW) + 29),
     ClaimsRejectedError, "not_yet_valid", {}),
    ("iat-in-future", lambda k: mint(k.rsa, iat=int(NOW) + 3600),
     lambda k: mint(k.rsa, iat=int(NOW) + 29), ClaimsRejectedError, "issued_in_future", {}),
    ("audience-string", lambda k: mint(k.rsa, aud="other-api"), lambda k: mint(k.rsa, aud=AUDIENCE),
     ClaimsRejectedError, "audience_mismatch", {}),
    ("audience-list", lambda k: mint(k.rsa, aud=["a", "b"]),
     lambda k: mint(k.rsa, aud=["a", AUDIENCE]),
     ClaimsRejectedError, "audience_mismatch", {}),
    ("audience-missing", lambda k: mint(k.rsa, aud=None), lambda k: mint(k.rsa),
     ClaimsRejectedError, "audience_mismatch", {}),
    ("audience-bad-type", lambda k: mint(k.rsa, aud=[AUDIENCE, 7]),
     lambda k: mint(k.rsa, aud=[AUDIENCE]),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("unknown-issuer", lambda k: mint(k.rsa, iss="https://evil.test"),
     lambda k: mint(k.rsa, iss=ISSUER),
     ClaimsRejectedError, "unknown_issuer", {}),
    ("issuer-not-string", lambda k: mint(k.rsa, iss=["https://idp.test"]), lambda k: mint(k.rsa),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("exp-missing", lambda k: mint(k.rsa, exp=None), lambda k: mint(k.rsa),
     ClaimsRejectedError, "missing_claim", {}),
    ("required-claim", lambda k: mint(k.rsa, jti=None), lambda k: mint(k.rsa, jti="id-1"),
     ClaimsRejectedError, "missing_claim", {"required_claims": ("jti",)}),
    ("exp-string", lambda k: mint(k.rsa, exp=str(int(NOW) + 300)),
     lambda k: mint(k.rsa, exp=NOW + 300.5),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("exp-bool", lambda k: mint(k.rsa, exp=True), lambda k: mint(k.rsa, exp=int(NOW) + 1),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("nbf-bool", lambda k: mint(k.rsa, nbf=False), lambda k: mint(k.rsa, nbf=0),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("iat-string", lambda k: mint(k.rsa, iat="yesterday"), lambda k: mint(k.rsa, iat=int(NOW)),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("sub-not-string", lambda k: mint(k.rsa, sub=42), lambda k: mint(k.rsa, sub="42"),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("scope-not-string", lambda k: mint(k.rsa, scope=["a"]), lambda k: mint(k.rsa, scope="a"),
     ClaimsRejectedError, "bad_claim_type", {}),
    ("alg-not-allowed", lambda k: mint(k.ec, "ES256"), lambda k: mint(k.rsa, "RS256"),
     HeaderRejectedError, "alg_not_allowed", {"algorithms": ("RS256",)}),
    ("kty-mismatch", lambda k: mint(k.rsa, header={"kid": "ec-1"}), lambda k: mint(k.ec, "ES256"),
     KeyResolutionError, "key_mismatch", {}),
    ("unknown-kid", lambda k: mint(k.rsa, header={"kid": "nope"}), lambda k: mint(k.rsa),
     KeyResolutionError, "unknown_kid", {}),
    ("kid-not-string", lambda k: mint(k.rsa, header={"kid": 1}), lambda k: mint(k.rsa),
     HeaderRejectedError, "bad_header", {}),
    ("bad-signature", lambda k: mint(k.rsa2, header={"kid": "rsa-1"}), lambda k: mint(k.rsa),
     SignatureInvalidError, "bad_signature", {}),
    ("crit", lambda k: mint(k.rsa, header={"crit": ["exp"], "exp": 1}),
     lambda k: mint(k.rsa, header={"exp": 1}),
     HeaderRejectedError, "crit_unsupported", {}),
    ("b64-false", lambda k: mint(k.rsa, header={"b64": False, "crit": None}), lambda k: mint(k.rsa),
     HeaderRejectedError, "bad_header", {}),
    ("too-large", lambda k: mint(k.rsa, pad="x" * 9000), lambda k: mint(k.rsa, pad="x" * 4000),
     MalformedTokenError, "too_large", {}),
    ("header-duplicate-member",
     lambda k: sign_raw(b'{"alg":"RS256","kid":"rsa-1","alg":"RS256"}', claims(), k.rsa),
     lambda k: sign_raw(b'{"alg":"RS256","kid":"rsa-1"}', claims(), k.rsa),
     MalformedTokenError, "duplicate_member", {}),
    ("payload-duplicate-member",
     lambda k: sign_raw({"alg": "RS256", "kid": "rsa-1"},
                        json.dumps(claims()).encode()[:-1] + b', "sub": "mallory"}', k.rsa),
     lambda k: sign_raw({"alg": "RS256", "kid": "rsa-1"},
                        json.dumps(claims()).encode()[:-1] + b', "act": "mallory"}', k.rsa),
     MalformedTokenError, "duplicate_member", {}),
    ("payload-nan",
     lambda k: sign_raw({"alg": "RS256", "kid": "rsa-1"},
                        json.dumps(claims(exp=None)).encode()[:-1] + b', "exp": NaN}', k.rsa),
     lambda k: mint(k.rsa), MalformedTokenError, "bad_json", {}),
    ("payload-not-object", lambda k: sign_raw({"alg": "RS256", "kid": "rsa-1"}, b"[1]", k.rsa),
     lambda k: mint(k.rsa), MalformedTokenError, "bad_json", {}),
    ("two-segments", lambda k: mint(k.rsa).rsplit(".", 1)[0], lambda k: mint(k.rsa),
     MalformedTokenError, "malformed", {}),
    ("padded-base64", lambda k: mint(k.rsa) + "=", lambda k: mint(k.rsa),
     MalformedTokenError, "bad_encoding", {}),
    ("space-in-token", lambda k: " " + mint(k.rsa), lambda k: mint(k.rsa),
     MalformedTokenError, "bad_encoding", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "good", "error", "reason", "overrides"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rule_rejects_and_twin_passes(  # noqa: PLR0917 - one parameter per table column
    keys: Keys,
    jwks_path: Path,
    bad: Builder,
    good: Builder,
    error: type[JWTError],
    reason: str,
    overrides: dict[str, Any],
) -> None:
    """The bad token raises the named class and reason; its twin verifies."""
    with pytest.raises(error) as caught:
        verify(bad(keys), jwks_path, **overrides)
    assert caught.value.reason == reason
    assert str(caught.value)
    verified = verify(good(keys), jwks_path, **overrides)
    assert verified.issuer == ISSUER


def unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return (
        b64url_encode(json.dumps(header).encode())
        + b"."
        + b64url_encode(json.dumps(payload).encode())
        + b"."
    ).decode()


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_never_accepted(keys: Keys, jwks_path: Path, alg: str) -> None:
    """An unsigned token is rejected as alg_none, whatever the case of 'none'."""
    with pytest.raises(HeaderRejectedError) as caught:
        verify(unsigned({"alg": alg, "kid": "rsa-1"}, claims()), jwks_path)
    assert caught.value.reason == "alg_none"
    assert verify(mint(keys.rsa), jwks_path).subject == "alice"


def test_alg_confusion_hs256_with_rsa_public_key_is_rejected(keys: Keys, jwks_path: Path) -> None:
    """HS256 'signed' with the RSA public key PEM as HMAC secret never verifies."""
    pem = keys.rsa.as_pem(private=False)
    header = b64url_encode(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    payload = b64url_encode(json.dumps(claims(sub="admin")).encode())
    import hashlib
    import hmac

    mac = hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()
    forged = (header + b"." + payload + b"." + b64url_encode(mac)).decode()
    with pytest.raises(HeaderRejectedError) as caught:
        verify(forged, jwks_path)
    assert caught.value.reason == "alg_not_allowed"
    # Even an issuer configured for HS256 cannot be fooled: its JWKS has no
    # secret under that kid, only the RSA public key, which cannot verify HS256.
    with pytest.raises(KeyResolutionError) as caught2:
        verify(forged, jwks_path, algorithms=("HS256",))
    assert caught2.value.reason == "key_mismatch"


@pytest.mark.parametrize("location", IGNORED_KEY_LOCATIONS)
def test_key_locations_in_the_token_never_select_a_key(
    keys: Keys, jwks_path: Path, location: str
) -> None:
    """A token signed by an attacker key that it carries (or points to) is refused."""
    attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    value: Any = {
        "jwk": public_jwk(attacker),
        "jku": "https://evil.test/jwks.json",
        "x5u": "https://evil.test/cert.pem",
        "x5c": ["MIIB"],
    }[location]
    forged = mint(attacker, header={location: value})
    with pytest.raises(SignatureInvalidError):
        verify(forged, jwks_path)
    # Twin: our own key's token carrying the same header is judged on our key.
    assert verify(mint(keys.rsa, header={location: value}), jwks_path).kid == "rsa-1"


def test_missing_kid_accepted_only_when_one_key_fits(keys: Keys, tmp_path: Path) -> None:
    """No kid: fine with exactly one RSA key in the set, kid_required with two."""
    one = write_jwks(tmp_path / "one.json", jwks_of(keys.rsa, keys.ec))
    assert verify(mint(keys.rsa, header={"kid": None}), one).kid == "rsa-1"
    two = write_jwks(tmp_path / "two.json", jwks_of(keys.rsa, keys.rsa2))
    with pytest.raises(KeyResolutionError) as caught:
        verify(mint(keys.rsa, header={"kid": None}), two)
    assert caught.value.reason == "kid_required"


def test_es256_and_eddsa_verify(keys: Keys, jwks_path: Path) -> None:
    """EC and OKP keys verify their own algorithms."""
    assert verify(mint(keys.ec, "ES256"), jwks_path).alg == "ES256"
    assert verify(mint(keys.ed, "EdDSA"), jwks_path).kid == "ed-1"


def test_hs256_issuer_with_secret_from_file(keys: Keys, tmp_path: Path) -> None:
    """A symmetric issuer (file JWKS of secrets) verifies HS256 and refuses a wrong secret."""
    path = write_jwks(tmp_path / "hs.json", {"keys": [keys.hmac.as_dict(private=True)]})
    assert verify(mint(keys.hmac, "HS256"), path, algorithms=("HS256",)).kid == "hs-1"
    from joserfc.jwk import OctKey

    other = OctKey.generate_key(256, parameters={"kid": "hs-1"})
    with pytest.raises(SignatureInvalidError):
        verify(mint(other, "HS256"), path, algorithms=("HS256",))


def test_verified_token_is_frozen_and_complete(keys: Keys, jwks_path: Path) -> None:
    """The result carries subject, issuer, scopes, expiry, kid and read-only claims."""
    verified = verify(mint(keys.rsa, scp=["ledger:read"], extra={"roles": ["a"]}), jwks_path)
    assert verified.subject == "alice"
    assert verified.scopes == {"accounts:read", "payments:write", "ledger:read"}
    assert verified.expires_at == NOW + 300
    assert verified.expiry.timestamp() == NOW + 300
    assert verified.kid == "rsa-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.subject = "mallory"  # type: ignore[misc]
    with pytest.raises(TypeError):
        verified.claims["sub"] = "mallory"  # type: ignore[index]
    with pytest.raises(TypeError):
        verified.claims["extra"]["roles"] = ()  # type: ignore[index]


def test_scopes_are_checked_per_route(keys: Keys, jwks_path: Path) -> None:
    """A route's required scopes must all be present (scope string or scp list)."""
    validator = JWTValidator([policy(jwks_path)], cache_size=0)
    token = asyncio.run(validator.verify_at_time(mint(keys.rsa, scp="ledger:read"), NOW))
    validator.require_scopes(token, ["payments:write", "ledger:read"])
    with pytest.raises(InsufficientScopeError) as caught:
        validator.require_scopes(token, ["payments:write", "admin"])
    assert caught.value.reason == "insufficient_scope"
    assert "admin" in str(caught.value)


def test_every_rejection_emits_one_deny_event_without_the_token(
    keys: Keys, jwks_path: Path
) -> None:
    """One jwt.rejected event per rejection, with the reason code and no token bytes."""
    sink = MemorySink()
    emitter = EventEmitter([sink], service="gateway")
    bad = mint(keys.rsa, exp=int(NOW) - 3600)
    with pytest.raises(ClaimsRejectedError):
        verify(bad, jwks_path, emitter=emitter)
    events = sink.events
    assert [e.type for e in events] == ["jwt.rejected"]
    assert events[0].outcome is Outcome.DENY
    assert events[0].detail["reason_code"] == "expired"
    assert events[0].detail["kid"] == "rsa-1"
    text = events[0].to_json()
    for segment in bad.split("."):
        assert segment not in text
    sink.clear()
    verify(mint(keys.rsa), jwks_path, emitter=emitter)
    assert [(e.type, e.outcome) for e in sink.events] == [("jwt.accepted", Outcome.ALLOW)]


def test_messages_do_not_echo_long_untrusted_values(keys: Keys, jwks_path: Path) -> None:
    """A huge kid is cut before it reaches the message."""
    with pytest.raises(KeyResolutionError) as caught:
        verify(mint(keys.rsa, header={"kid": "k" * 2000}), jwks_path)
    assert len(str(caught.value)) < 200


def test_sync_convenience(keys: Keys, jwks_path: Path) -> None:
    """verify_sync (for the CLI) accepts and raises exactly like the async path."""
    validator = JWTValidator([policy(jwks_path)], cache_size=0)
    assert validator.verify_sync(mint(keys.rsa), now=NOW).subject == "alice"
    with pytest.raises(ClaimsRejectedError) as caught:
        validator.verify_sync(mint(keys.rsa, exp=int(NOW) - 3600), now=NOW)
    assert caught.value.reason == "expired"
