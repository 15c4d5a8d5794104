"""Trusted keys: strict JWKS import and key selection for a token.

A :class:`KeyRing` is an immutable snapshot of one issuer's JWKS. Keys are
vetted when the document is imported, so the verify path only looks keys up.

Whole-document rejections (:class:`JWKSError`): not a ``{"keys": [...]}``
object, a repeated ``kid``, private key material in a published set, HMAC
secrets next to asymmetric keys (the alg-confusion setup), or HMAC secrets in
a document fetched over the network.

Per-key skips (the key is ignored and noted in :attr:`KeyRing.skipped`): an
unknown ``kty``, ``use`` other than ``sig``, ``key_ops`` without ``verify``, an
``alg`` we do not verify or that does not fit the key, RSA below 2048 bits or
with a ROCA-fingerprinted modulus, an invalid EC point, an empty HMAC secret.
Identity providers routinely publish encryption keys in the same set, so a
foreign key must not take the signing keys down with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OctKey, OKPKey, RSAKey

from ramparts.jwt._codec import loads_object
from ramparts.jwt._errors import JWKSError, KeyResolutionError, quote_untrusted
from ramparts.jwt._policy import ALGORITHMS, MIN_RSA_BITS

#: RFC 7517 section 4: members that only a private (or secret) JWK carries.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})

#: Bound on a JWKS: real sets hold a handful of keys.
MAX_KEYS = 64


@dataclass(frozen=True, slots=True, repr=False)
class TrustedKey:
    """One vetted verification key. Its repr names the kid, never the material."""

    kid: str | None
    kty: str
    crv: str | None
    #: The ``alg`` the JWKS pins this key to, if any (RFC 7517 section 4.4).
    alg: str | None
    #: RFC 7638 thumbprint; identifies the key material for cache invalidation.
    thumbprint: str
    jwk: Key
    secret_bytes: int = 0

    def __repr__(self) -> str:
        return f"TrustedKey(kid={self.kid!r}, kty={self.kty!r}, crv={self.crv!r}, alg={self.alg!r})"

    def unusable_for(self, alg: str) -> str | None:
        """Why this key cannot verify ``alg``, or None if it can."""
        req = ALGORITHMS.get(alg)
        if req is None:
            return f"algorithm {quote_untrusted(alg)} is not supported"
        if self.kty != req.kty:
            return f"key type {self.kty} cannot verify {alg} (needs {req.kty})"
        if req.curves and self.crv not in req.curves:
            return f"curve {self.crv} cannot verify {alg} (needs {sorted(req.curves)})"
        if self.alg is not None and self.alg != alg:
            return f"key is pinned to {self.alg}, token says {alg}"
        if self.secret_bytes < req.min_secret_bytes:
            return f"HMAC secret has {self.secret_bytes} bytes, {alg} needs {req.min_secret_bytes}"
        return None


@dataclass(frozen=True, slots=True)
class KeyRing:
    """An immutable, vetted snapshot of one JWKS document."""

    keys: tuple[TrustedKey, ...]
    #: One line per ignored key, saying which and why (no key material).
    skipped: tuple[str, ...] = ()
    source: str = ""
    #: Thumbprints of ``keys``, computed once: the cache checks it on every hit.
    thumbprints: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thumbprints", frozenset(k.thumbprint for k in self.keys))

    @property
    def identities(self) -> frozenset[tuple[str | None, str]]:
        """(kid, thumbprint) pairs: equal sets mean the same trusted keys."""
        return frozenset((k.kid, k.thumbprint) for k in self.keys)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(k.kid for k in self.keys if k.kid is not None)

    def find(self, kid: str) -> TrustedKey | None:
        for key in self.keys:
            if key.kid == kid:
                return key
        return None

    def select(self, alg: str, kid: str | None) -> TrustedKey:
        """The key that must verify a token with this ``alg`` and ``kid``.

        A token without ``kid`` is accepted only when exactly one key in the
        set can verify its ``alg``; otherwise the choice would be a guess.

        Raises:
            KeyResolutionError: ``unknown_kid`` (no such kid, or no key at all
                for this alg), ``key_mismatch`` (the kid's key cannot verify
                this alg) or ``kid_required`` (several candidates, no kid).
        """
        if kid is not None:
            key = self.find(kid)
            if key is None:
                raise KeyResolutionError(
                    f"no trusted key with kid {quote_untrusted(kid)}", reason="unknown_kid"
                )
            problem = key.unusable_for(alg)
            if problem is not None:
                raise KeyResolutionError(
                    f"key {quote_untrusted(kid)}: {problem}", reason="key_mismatch"
                )
            return key
        candidates = [k for k in self.keys if k.unusable_for(alg) is None]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise KeyResolutionError(
                f"token has no kid and no trusted key can verify {alg}", reason="unknown_kid"
            )
        raise KeyResolutionError(
            f"token has no kid and {len(candidates)} trusted keys can verify {alg}; "
            "a kid is required",
            reason="kid_required",
        )


def parse_jwks(
    document: bytes | str | Mapping[str, Any], *, source: str, allow_symmetric: bool
) -> KeyRing:
    """Vet a JWKS document and return its usable keys.

    Args:
        document: the JSON text (bytes or str) or an already-parsed object.
        source: where it came from, for messages (a URL or a path).
        allow_symmetric: accept ``oct`` (HMAC) keys; only for local files,
            since a shared secret served over the network is already leaked.

    Raises:
        JWKSError: the whole document is unusable (see the module docstring).
    """
    if isinstance(document, Mapping):
        data: Mapping[str, Any] = document
    else:
        raw = document.encode() if isinstance(document, str) else document
        try:
            data = loads_object(raw)
        except ValueError as exc:
            raise JWKSError(f"JWKS from {source} is not a JSON object: {exc}") from exc
    entries = data.get("keys")
    if not isinstance(entries, list):
        raise JWKSError(f"JWKS from {source} has no 'keys' array")
    if len(entries) > MAX_KEYS:
        raise JWKSError(f"JWKS from {source} has {len(entries)} keys, more than {MAX_KEYS}")

    seen_kids: set[str] = set()
    kinds: set[bool] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise JWKSError(f"JWKS from {source}: keys[{index}] is not an object")
        kid = entry.get("kid")
        if kid is not None:
            if not isinstance(kid, str):
                raise JWKSError(f"JWKS from {source}: keys[{index}].kid is not a string")
            if kid in seen_kids:
                # Two keys behind one kid make key selection ambiguous.
                raise JWKSError(f"JWKS from {source}: kid {quote_untrusted(kid)} appears twice")
            seen_kids.add(kid)
        kty = entry.get("kty")
        if kty == "oct":
            if not allow_symmetric:
                raise JWKSError(
                    f"JWKS from {source}: keys[{index}] is an HMAC secret; secrets are only "
                    "accepted from a local file"
                )
        elif _PRIVATE_MEMBERS & entry.keys():
            raise JWKSError(f"JWKS from {source}: keys[{index}] contains private key material")
        if kty in ("oct", "RSA", "EC", "OKP"):
            kinds.add(kty == "oct")
    if len(kinds) > 1:
        raise JWKSError(f"JWKS from {source} mixes HMAC secrets with asymmetric keys")

    keys: list[TrustedKey] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        label = f"keys[{index}]" + (
            f" (kid {quote_untrusted(entry['kid'])})" if "kid" in entry else ""
        )
        try:
            keys.append(_vet_key(entry))
        except _Skip as why:
            skipped.append(f"{label}: {why}")
    return KeyRing(keys=tuple(keys), skipped=tuple(skipped), source=source)


class _Skip(Exception):
    """A key that is ignored, with the reason."""


def _vet_key(entry: Mapping[str, Any]) -> TrustedKey:
    kty = entry.get("kty")
    if kty not in ("RSA", "EC", "OKP", "oct"):
        raise _Skip(f"key type {quote_untrusted(kty)} is not supported")
    use = entry.get("use")
    if use is not None and use != "sig":
        raise _Skip(f"use is {quote_untrusted(use)}, not 'sig'")
    key_ops = entry.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise _Skip("key_ops does not include 'verify'")
    alg = entry.get("alg")
    if alg is not None:
        req = ALGORITHMS.get(alg) if isinstance(alg, str) else None
        if req is None:
            raise _Skip(f"alg {quote_untrusted(alg)} is not a supported signature algorithm")
        if req.kty != kty:
            raise _Skip(f"alg {alg} does not fit key type {kty}")
        crv = entry.get("crv")
        if req.curves and crv not in req.curves:
            raise _Skip(f"alg {alg} does not fit curve {quote_untrusted(crv)}")
    try:
        with warnings.catch_warnings():
            # joserfc warns about weak keys; the checks below refuse them outright.
            warnings.simplefilter("ignore")
            jwk = JWKRegistry.import_key(dict(entry))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise _Skip(f"invalid {kty} key ({type(exc).__name__})") from exc

    crv: str | None = None
    secret_bytes = 0
    if isinstance(jwk, RSAKey):
        numbers = jwk.public_key.public_numbers()
        if numbers.n.bit_length() < MIN_RSA_BITS:
            raise _Skip(
                f"RSA modulus has {numbers.n.bit_length()} bits, at least {MIN_RSA_BITS} required"
            )
        if numbers.e % 2 == 0:
            raise _Skip("RSA public exponent is even")
        if _roca_fingerprint(numbers.n):
            raise _Skip("RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
    elif isinstance(jwk, (ECKey, OKPKey)):
        crv = jwk.curve_name
    elif isinstance(jwk, OctKey):
        secret_bytes = len(jwk.raw_value)
        if secret_bytes == 0:
            raise _Skip("HMAC secret is empty")
    return TrustedKey(
        kid=entry.get("kid"),
        kty=kty,
        crv=crv,
        alg=alg,
        thumbprint=jwk.thumbprint(),
        jwk=jwk,
        secret_bytes=secret_bytes,
    )


# ROCA (CVE-2017-15361, Nemec et al., CCS 2017): moduli from the vulnerable
# Infineon library are 65537^a mod M, so n mod p falls in the subgroup that
# 65537 generates modulo each of these small primes. A random modulus passes
# all of them with negligible probability.
_ROCA_PRIMES = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
                73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149,
                151, 157, 163, 167)  # fmt: skip


@cache
def _subgroup_65537(prime: int) -> frozenset[int]:
    members = {1}
    value = 65537 % prime
    while value not in members:
        members.add(value)
        value = value * 65537 % prime
    return frozenset(members)


def _roca_fingerprint(modulus: int) -> bool:
    return all(modulus % p in _subgroup_65537(p) for p in _ROCA_PRIMES)
