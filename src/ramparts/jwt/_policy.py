"""What an issuer is trusted for: the algorithm allowlist and :class:`IssuerPolicy`.

The allowlist is data: every supported JWS ``alg`` is listed with the key type,
curve and minimum strength it needs. An ``alg`` that is not in the table is
never accepted, whatever a policy says; ``none`` is not in the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: RFC 8725 section 3.5 / NIST SP 800-131A: RSA keys below 2048 bits are refused.
MIN_RSA_BITS = 2048

#: Upper bound on a compact token, in bytes. Real access tokens are 0.8-2 KiB;
#: 8 KiB leaves room for many claims while keeping parsing and hashing cheap.
DEFAULT_MAX_TOKEN_BYTES = 8192

#: Default clock-skew allowance for exp/nbf/iat (RFC 7519 section 4.1.4 "some small leeway").
DEFAULT_LEEWAY_SECONDS = 60

#: Longest leeway a policy may ask for; more would make exp meaningless.
MAX_LEEWAY_SECONDS = 600


@dataclass(frozen=True, slots=True)
class KeyRequirement:
    """The key an algorithm needs: ``kty``, allowed curves, minimum secret length."""

    kty: str
    curves: frozenset[str] = frozenset()
    #: For HMAC: RFC 7518 section 3.2, a key of at least the hash output size.
    min_secret_bytes: int = 0

    @property
    def symmetric(self) -> bool:
        return self.kty == "oct"


#: Every JWS algorithm Ramparts verifies. ``none`` is deliberately absent.
ALGORITHMS: dict[str, KeyRequirement] = {
    "RS256": KeyRequirement("RSA"),
    "RS384": KeyRequirement("RSA"),
    "RS512": KeyRequirement("RSA"),
    "PS256": KeyRequirement("RSA"),
    "PS384": KeyRequirement("RSA"),
    "PS512": KeyRequirement("RSA"),
    "ES256": KeyRequirement("EC", frozenset({"P-256"})),
    "ES384": KeyRequirement("EC", frozenset({"P-384"})),
    "ES512": KeyRequirement("EC", frozenset({"P-521"})),
    "EdDSA": KeyRequirement("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": KeyRequirement("OKP", frozenset({"Ed25519"})),  # RFC 9864
    "HS256": KeyRequirement("oct", min_secret_bytes=32),
    "HS384": KeyRequirement("oct", min_secret_bytes=48),
    "HS512": KeyRequirement("oct", min_secret_bytes=64),
}


def is_symmetric_alg(alg: str) -> bool:
    """True for the HMAC algorithms (HS*)."""
    req = ALGORITHMS.get(alg)
    return req is not None and req.symmetric


@dataclass(frozen=True, slots=True)
class IssuerPolicy:
    """What tokens from one issuer must satisfy. Checked when built.

    Args:
        issuer: the exact ``iss`` value.
        audiences: accepted ``aud`` values; a token must name at least one.
        algorithms: accepted ``alg`` values, all from :data:`ALGORITHMS`.
        jwks: where the keys come from: an ``http(s)://`` URL or a file path.
        leeway_seconds: clock-skew allowance for ``exp``, ``nbf`` and ``iat``.
        required_claims: claims that must be present (``exp`` always is).
        max_token_bytes: tokens longer than this are rejected before parsing.

    Raises:
        ValueError: naming the field, for an empty issuer or audience list, an
            unknown or ``none`` algorithm, HS* mixed with asymmetric algorithms,
            or a leeway outside 0..600 seconds.
    """

    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    jwks: str
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    required_claims: tuple[str, ...] = ()
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES
    _algorithm_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("IssuerPolicy.issuer must be a non-empty string")
        audiences = _str_tuple("audiences", self.audiences)
        if not audiences:
            # Without an audience check a token minted for any other service of
            # the same issuer would be accepted here: fail closed.
            raise ValueError(f"IssuerPolicy.audiences for {self.issuer!r} must not be empty")
        algorithms = _str_tuple("algorithms", self.algorithms)
        if not algorithms:
            raise ValueError(f"IssuerPolicy.algorithms for {self.issuer!r} must not be empty")
        for alg in algorithms:
            if alg.lower() == "none":
                raise ValueError(f"IssuerPolicy.algorithms for {self.issuer!r}: 'none' is refused")
            if alg not in ALGORITHMS:
                raise ValueError(
                    f"IssuerPolicy.algorithms for {self.issuer!r}: unknown algorithm {alg!r}, "
                    f"expected one of {sorted(ALGORITHMS)}"
                )
        kinds = {is_symmetric_alg(a) for a in algorithms}
        if len(kinds) > 1:
            # HS* next to asymmetric algorithms is the classic confusion setup:
            # a public key ends up used as an HMAC secret (CVE-2015-9235 family).
            raise ValueError(
                f"IssuerPolicy.algorithms for {self.issuer!r} mixes HMAC and asymmetric "
                f"algorithms {list(algorithms)}; an issuer must use one kind"
            )
        if not isinstance(self.jwks, str) or not self.jwks:
            raise ValueError(f"IssuerPolicy.jwks for {self.issuer!r} must be a URL or a file path")
        if kinds == {True} and "://" in self.jwks:
            # HMAC keys are shared secrets; one fetched over the network is leaked.
            raise ValueError(
                f"IssuerPolicy.jwks for {self.issuer!r}: HMAC secrets must come from a local "
                "file, not a URL"
            )
        if (
            isinstance(self.leeway_seconds, bool)
            or not isinstance(self.leeway_seconds, int)
            or not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS
        ):
            raise ValueError(
                f"IssuerPolicy.leeway_seconds for {self.issuer!r} must be an int in "
                f"0..{MAX_LEEWAY_SECONDS}, got {self.leeway_seconds!r}"
            )
        required = _str_tuple("required_claims", self.required_claims)
        if not isinstance(self.max_token_bytes, int) or self.max_token_bytes < 256:
            raise ValueError(
                f"IssuerPolicy.max_token_bytes must be an int >= 256, got {self.max_token_bytes!r}"
            )
        object.__setattr__(self, "audiences", audiences)
        object.__setattr__(self, "algorithms", algorithms)
        object.__setattr__(self, "required_claims", required)
        object.__setattr__(self, "_algorithm_set", frozenset(algorithms))

    @property
    def symmetric(self) -> bool:
        """True when this issuer signs with HMAC (its keys are shared secrets)."""
        return is_symmetric_alg(self.algorithms[0])

    def allows(self, alg: str) -> bool:
        return alg in self._algorithm_set


def _str_tuple(name: str, value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        # A bare string would be iterated per character; say so instead.
        raise ValueError(f"IssuerPolicy.{name} must be a sequence of strings, not one string")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"IssuerPolicy.{name} must hold non-empty strings, got {item!r}")
    return items


class IssuerConfig(Protocol):
    """The shape of ``Topology.gateway.issuers[i]`` from ``ramparts.config``."""

    issuer: str
    jwks: str
    algorithms: tuple[str, ...]
    audiences: tuple[str, ...]
    leeway_seconds: int
    required_claims: tuple[str, ...]


def policy_from_config(
    issuer_cfg: IssuerConfig | Any, *, base_dir: str | Path | None = None
) -> IssuerPolicy:
    """Build an :class:`IssuerPolicy` from one issuer entry of ``ramparts.yaml``.

    Args:
        issuer_cfg: an object with the :class:`IssuerConfig` attributes.
        base_dir: a relative JWKS file path is taken relative to this folder
            (the topology file's); URLs and absolute paths are kept as they are.

    Raises:
        ValueError: naming the issuer and the field that is missing or invalid.
    """
    missing = [
        name
        for name in (
            "issuer",
            "jwks",
            "algorithms",
            "audiences",
            "leeway_seconds",
            "required_claims",
        )
        if not hasattr(issuer_cfg, name)
    ]
    if missing:
        raise ValueError(f"gateway issuer entry is missing field(s) {missing}")
    jwks = issuer_cfg.jwks
    if (
        base_dir is not None
        and isinstance(jwks, str)
        and "://" not in jwks
        and not Path(jwks).is_absolute()
    ):
        jwks = str(Path(base_dir) / jwks)
    return IssuerPolicy(
        issuer=issuer_cfg.issuer,
        audiences=tuple(issuer_cfg.audiences),
        algorithms=tuple(issuer_cfg.algorithms),
        jwks=jwks,
        leeway_seconds=issuer_cfg.leeway_seconds,
        required_claims=tuple(issuer_cfg.required_claims),
    )
