"""The JWS layer: strict compact parsing, header rules, signature check.

Parsing is ours (strict base64url, duplicate-free JSON, a size limit); the
signature itself is checked by joserfc with the one key we selected and the
one algorithm we allow for it. Order matters and is fixed: size, shape,
encoding, header rules, key selection, signature. This layer does not
interpret the payload; the validator reads only its unverified ``iss`` to
choose which issuer's keys to try, and judges the claims after the signature.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from joserfc.errors import JoseError
from joserfc.jws import JWSAlgModel, JWSRegistry

from ramparts.jwt._codec import DuplicateMemberError, b64url_decode, loads_object
from ramparts.jwt._errors import (
    HeaderRejectedError,
    KeyResolutionError,
    MalformedTokenError,
    SignatureInvalidError,
    quote_untrusted,
)
from ramparts.jwt._keys import KeyRing, TrustedKey
from ramparts.jwt._policy import ALGORITHMS, DEFAULT_MAX_TOKEN_BYTES

#: RFC 7515 section 4.1.11: extensions a recipient understands may be listed in
#: ``crit``. Ramparts implements none, so any ``crit`` is refused.
UNDERSTOOD_CRITICAL: frozenset[str] = frozenset()

#: Header members that point at keys. They are ignored: a key is chosen only
#: from the issuer's configured JWKS, by ``kid`` (RFC 8725 section 3.10).
IGNORED_KEY_LOCATIONS = ("jku", "x5u", "jwk", "x5c")


@dataclass(frozen=True, slots=True)
class ParsedJWS:
    """A compact JWS split and decoded, not yet verified."""

    header: Mapping[str, Any]
    payload: bytes
    signature: bytes
    signing_input: bytes

    @property
    def alg(self) -> str:
        return self.header["alg"]

    @property
    def kid(self) -> str | None:
        return self.header.get("kid")


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A JWS whose signature verified with ``key``."""

    header: Mapping[str, Any]
    payload: bytes
    key: TrustedKey


def parse_compact(token: str | bytes, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> ParsedJWS:
    """Split and decode a compact JWS, refusing anything not strictly well formed.

    Raises:
        MalformedTokenError: too long, not three segments, bad base64url,
            header not a duplicate-free JSON object.
        HeaderRejectedError: ``alg`` missing or not a string, ``kid`` not a string.
    """
    if isinstance(token, str):
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedTokenError(
                "token contains non-ASCII characters", reason="bad_encoding"
            ) from None
    elif isinstance(token, bytes):
        raw = token
    else:
        raise MalformedTokenError(f"token must be a string, got {type(token).__name__}")
    if len(raw) > max_bytes:
        raise MalformedTokenError(
            f"token is {len(raw)} bytes, limit is {max_bytes}", reason="too_large"
        )
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedTokenError(f"token has {len(parts)} segments, a compact JWS has 3")
    # An empty signature segment is parsed (and later fails verification), so
    # that alg "none" tokens are named as such rather than as malformed.
    header_b64, payload_b64, signature_b64 = parts
    decoded = []
    for name, segment in (
        ("header", header_b64),
        ("payload", payload_b64),
        ("signature", signature_b64),
    ):
        try:
            decoded.append(b64url_decode(segment))
        except ValueError as exc:
            raise MalformedTokenError(f"{name} segment: {exc}", reason="bad_encoding") from None
    try:
        header = loads_object(decoded[0])
    except DuplicateMemberError as exc:
        raise MalformedTokenError(f"header: {exc}", reason="duplicate_member") from None
    except ValueError as exc:
        raise MalformedTokenError(f"header: {exc}", reason="bad_json") from None
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise HeaderRejectedError("header has no string 'alg'", reason="bad_header")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise HeaderRejectedError("header 'kid' is not a string", reason="bad_header")
    return ParsedJWS(
        header=MappingProxyType(header),
        payload=decoded[1],
        signature=decoded[2],
        signing_input=header_b64 + b"." + payload_b64,
    )


def check_header(parsed: ParsedJWS, allowed: Collection[str]) -> None:
    """Apply the header rules: no ``none``, ``alg`` allowed, no ``crit``, no ``b64``.

    Raises:
        HeaderRejectedError: with reason ``alg_none``, ``alg_not_allowed``,
            ``crit_unsupported`` or ``bad_header``.
    """
    alg = parsed.alg
    if alg.lower() == "none":
        raise HeaderRejectedError("alg 'none' is never accepted", reason="alg_none")
    if alg not in ALGORITHMS or alg not in allowed:
        raise HeaderRejectedError(
            f"alg {quote_untrusted(alg)} is not allowed (allowed: {sorted(allowed)})",
            reason="alg_not_allowed",
        )
    if "crit" in parsed.header:
        crit = parsed.header["crit"]
        if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
            raise HeaderRejectedError(
                "header 'crit' must be a non-empty list of names", reason="bad_header"
            )
        unknown = [c for c in crit if c not in UNDERSTOOD_CRITICAL]
        if unknown:
            raise HeaderRejectedError(
                f"header 'crit' lists extensions not understood: {quote_untrusted(unknown)}",
                reason="crit_unsupported",
            )
    if "b64" in parsed.header:
        # RFC 7797 unencoded payloads are not for JWTs (RFC 7797 section 7).
        raise HeaderRejectedError("header 'b64' (RFC 7797) is not accepted", reason="bad_header")


_ALG_MODELS: dict[str, JWSAlgModel] = {}


def _alg_model(alg: str) -> JWSAlgModel:
    """joserfc's implementation of ``alg``, from a registry that allows only ``alg``."""
    model = _ALG_MODELS.get(alg)
    if model is None:
        with warnings.catch_warnings():
            # joserfc warns that "EdDSA" is deprecated by RFC 9864; it is still
            # what most issuers send, and the key's curve is pinned by ALGORITHMS.
            warnings.simplefilter("ignore")
            model = JWSRegistry(algorithms=[alg]).get_alg(alg)
        _ALG_MODELS[alg] = model
    return model


def verify_signature(parsed: ParsedJWS, key: TrustedKey) -> None:
    """Check the signature with exactly this key and the token's (allowed) alg.

    The cryptography is joserfc's (``JWSAlgModel.verify``); the header rules
    and key choice ran before, so only the key/alg fit is re-checked here.

    Raises:
        SignatureInvalidError: the signature does not verify.
        KeyResolutionError: the key cannot be used for this alg (``key_mismatch``).
    """
    alg = parsed.alg
    problem = key.unusable_for(alg)
    if problem is not None:
        raise KeyResolutionError(problem, reason="key_mismatch")
    model = _alg_model(alg)
    try:
        model.check_key(key.jwk)
        ok = model.verify(parsed.signing_input, parsed.signature, key.jwk)
    except (JoseError, ValueError) as exc:
        raise KeyResolutionError(
            f"key refused for {alg}: {type(exc).__name__}", reason="key_mismatch"
        ) from None
    if not ok:
        raise SignatureInvalidError(
            f"{alg} signature does not verify with key {quote_untrusted(key.kid)}"
        )


def verify_jws(
    token: str | bytes,
    keyring: KeyRing,
    *,
    algorithms: Collection[str],
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
) -> VerifiedJWS:
    """Parse, apply header rules, select the key and verify a compact JWS.

    The payload is returned as bytes; it is not interpreted here (see
    :mod:`ramparts.jwt._claims` for JWT claims).

    Raises:
        JWTError: one of its subclasses, see :mod:`ramparts.jwt`.
    """
    parsed = parse_compact(token, max_bytes=max_bytes)
    check_header(parsed, algorithms)
    key = keyring.select(parsed.alg, parsed.kid)
    verify_signature(parsed, key)
    return VerifiedJWS(header=parsed.header, payload=parsed.payload, key=key)
