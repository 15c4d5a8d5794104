"""The trust bundle in the SPIFFE bundle (JWKS) format, and its parser's failing twins."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from spiffe import TrustDomain, X509Bundle

from ramparts.identity import CertificateAuthority, IdentityError, TrustBundle


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    ca = CertificateAuthority.in_memory("refbank.local", refresh_hint=60)
    ca.prepare_rotation()  # two authorities in the bundle
    return ca


def test_jwks_shape_per_spiffe_bundle_spec(ca) -> None:
    doc = ca.bundle().to_jwks()
    assert doc["spiffe_sequence"] == 2
    assert doc["spiffe_refresh_hint"] == 60
    assert len(doc["keys"]) == 2
    for key in doc["keys"]:
        assert key["use"] == "x509-svid"
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert len(key["x5c"]) == 1
        assert "d" not in key  # never a private part


def test_x5c_certificates_parse_with_py_spiffe(ca) -> None:
    doc = ca.bundle().to_jwks()
    ders = b"".join(base64.b64decode(k["x5c"][0]) for k in doc["keys"])
    oracle = X509Bundle.parse_raw(TrustDomain("refbank.local"), ders)
    assert oracle.x509_authorities == set(ca.bundle().authorities)


def test_x_y_are_the_certificate_key(ca) -> None:
    doc = ca.bundle().to_jwks()
    for key in doc["keys"]:
        cert = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
        nums = cert.public_key().public_numbers()
        pad = "=" * (-len(key["x"]) % 4)
        assert int.from_bytes(base64.urlsafe_b64decode(key["x"] + pad), "big") == nums.x


def test_round_trip(ca) -> None:
    b = ca.bundle()
    again = TrustBundle.from_jwks("refbank.local", b.to_json())
    assert again == b


def test_keys_for_other_uses_are_skipped(ca) -> None:
    doc = ca.bundle().to_jwks()
    doc["keys"].append(
        {"kty": "EC", "use": "jwt-svid", "kid": "k1", "crv": "P-256", "x": "AA", "y": "AA"}
    )
    assert len(TrustBundle.from_jwks("refbank.local", doc).authorities) == 2


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d.pop("keys"), "'keys' list"),
        (lambda d: d["keys"][0].update(x5c=[]), "exactly one certificate"),
        (lambda d: d["keys"][0].update(x5c=["bm90IGEgY2VydA=="]), "not a DER certificate"),
        (lambda d: d["keys"][0].update(x=d["keys"][1]["x"]), "do not match"),
        (lambda d: d.update(spiffe_refresh_hint=0), "hint > 0"),
        (lambda d: d.update(keys=[]), "no authorities"),
    ],
)
def test_malformed_bundles_are_refused(ca, mutate, error) -> None:
    doc = json.loads(ca.bundle().to_json())
    mutate(doc)
    with pytest.raises(IdentityError, match=error):
        TrustBundle.from_jwks("refbank.local", doc)


def test_pem_lists_every_authority(ca) -> None:
    certs = x509.load_pem_x509_certificates(ca.bundle().pem().encode())
    assert [c.public_bytes(serialization.Encoding.DER) for c in certs] == [
        c.public_bytes(serialization.Encoding.DER) for c in ca.bundle().authorities
    ]
