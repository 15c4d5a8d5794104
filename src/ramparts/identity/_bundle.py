"""The trust bundle: the CA certificates a workload trusts, in the SPIFFE bundle format.

SPIFFE Trust Domain and Bundle spec §4: a JWKS whose X.509 authorities are keys
with ``"use": "x509-svid"`` and an ``x5c`` holding exactly one base64 DER
certificate, plus ``spiffe_sequence`` (grows with every change) and
``spiffe_refresh_hint`` (seconds between polls).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ramparts.identity._errors import IdentityError

DEFAULT_REFRESH_HINT = 300
_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48)}


def _b64url(n: int, size: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def _jwk(cert: x509.Certificate) -> dict[str, object]:
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name not in _CURVES:
        raise IdentityError("bundle authorities must be EC P-256 or P-384 keys")
    crv, size = _CURVES[pub.curve.name]
    nums = pub.public_numbers()
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "kty": "EC",
        "crv": crv,
        "x": _b64url(nums.x, size),
        "y": _b64url(nums.y, size),
        "use": "x509-svid",
        "x5c": [base64.b64encode(der).decode()],
    }


@dataclass(frozen=True)
class TrustBundle:
    """The X.509 authorities of one trust domain, with the SPIFFE bundle metadata."""

    trust_domain: str
    authorities: tuple[x509.Certificate, ...] = field(repr=False)
    sequence: int = 0
    refresh_hint: int = DEFAULT_REFRESH_HINT

    def __post_init__(self) -> None:
        if not self.authorities:
            raise IdentityError(
                f"trust bundle for {self.trust_domain} has no authorities (fail closed)"
            )

    def pem(self) -> str:
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode() for c in self.authorities
        )

    def fingerprints(self) -> frozenset[bytes]:
        return frozenset(c.fingerprint(hashes.SHA256()) for c in self.authorities)

    def to_jwks(self) -> dict[str, object]:
        return {
            "keys": [_jwk(c) for c in self.authorities],
            "spiffe_sequence": self.sequence,
            "spiffe_refresh_hint": self.refresh_hint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_jwks(), indent=2, sort_keys=True)

    @classmethod
    def from_jwks(cls, trust_domain: str, data: dict[str, object] | str | bytes) -> TrustBundle:
        """Parse a SPIFFE bundle; keys for other uses (``jwt-svid``) are skipped.

        Raises IdentityError naming the key index when an x509-svid entry is malformed.
        """
        doc = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise IdentityError("SPIFFE bundle must be a JSON object with a 'keys' list")
        certs: list[x509.Certificate] = []
        for i, key in enumerate(doc["keys"]):
            if not isinstance(key, dict) or key.get("use") != "x509-svid":
                continue
            x5c = key.get("x5c")
            if not isinstance(x5c, list) or len(x5c) != 1:
                raise IdentityError(f"bundle key {i}: x5c must hold exactly one certificate")
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
            except ValueError as exc:
                raise IdentityError(f"bundle key {i}: x5c is not a DER certificate: {exc}") from exc
            if _jwk(cert)["x"] != key.get("x") or _jwk(cert)["y"] != key.get("y"):
                raise IdentityError(f"bundle key {i}: x/y do not match the x5c certificate")
            certs.append(cert)
        seq = doc.get("spiffe_sequence", 0)
        hint = doc.get("spiffe_refresh_hint", DEFAULT_REFRESH_HINT)
        if not isinstance(seq, int) or not isinstance(hint, int) or hint <= 0:
            raise IdentityError(
                "spiffe_sequence and spiffe_refresh_hint must be integers (hint > 0)"
            )
        return cls(trust_domain, tuple(certs), seq, hint)
