"""The X.509-SVID profile, field by field, checked by us and by two independent oracles.

Oracles: the ``spiffe`` package (py-spiffe's X509Svid/X509Bundle parsers apply
the X.509-SVID rules) and ``cryptography``'s RFC 5280 path validation.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from spiffe import SpiffeId, TrustDomain, X509Bundle, X509Svid

from ramparts.identity import (
    CLOCK_SKEW,
    X509SVID,
    CertificateAuthority,
    InvalidSVIDError,
    IssuanceRefused,
    spiffe_id_from_certificate,
)
from ramparts.identity._svid import build_svid_certificate, new_private_key, utcnow

ID = "spiffe://refbank.local/ns/refbank/sa/ledger"


@pytest.fixture(scope="module")
def issued() -> tuple[CertificateAuthority, X509SVID, dt.datetime]:
    ca = CertificateAuthority.in_memory("refbank.local")
    before = utcnow().replace(microsecond=0)
    svid = ca.issue_svid(ID)
    return ca, svid, before


class TestProfile:
    def test_exactly_one_uri_san_with_the_spiffe_id(self, issued) -> None:
        _, svid, _ = issued
        san = svid.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [ID]
        assert len(list(san.value)) == 1

    def test_key_usage_is_critical_digital_signature_only(self, issued) -> None:
        _, svid, _ = issued
        ku = svid.leaf.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
        assert ku.critical
        assert ku.value.digital_signature
        assert not ku.value.key_cert_sign
        assert not ku.value.crl_sign

    def test_basic_constraints_present_with_ca_false(self, issued) -> None:
        _, svid, _ = issued
        bc = svid.leaf.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
        assert bc.value.ca is False

    def test_eku_server_and_client_auth(self, issued) -> None:
        _, svid, _ = issued
        eku = svid.leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}

    def test_default_ttl_one_hour_and_not_before_backdated_two_minutes(self, issued) -> None:
        _, svid, before = issued
        assert svid.not_after - svid.not_before == dt.timedelta(hours=1) + CLOCK_SKEW
        assert dt.timedelta(minutes=2) == CLOCK_SKEW
        assert (
            before - CLOCK_SKEW - dt.timedelta(seconds=1)
            <= svid.not_before
            <= utcnow() - CLOCK_SKEW
        )

    def test_renewal_is_due_at_half_the_lifetime(self, issued) -> None:
        _, svid, _ = issued
        assert svid.renew_at == svid.not_before + CLOCK_SKEW + dt.timedelta(minutes=30)

    def test_p256_key_and_ecdsa_sha256_signature(self, issued) -> None:
        ca, svid, _ = issued
        assert isinstance(svid.leaf.public_key(), ec.EllipticCurvePublicKey)
        assert svid.leaf.public_key().curve.name == "secp256r1"
        assert svid.leaf.signature_hash_algorithm.name == "sha256"
        assert svid.leaf.issuer == ca.active.cert.subject

    def test_ca_certificate_is_a_ca(self, issued) -> None:
        ca, _, _ = issued
        bc = ca.active.cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
        assert bc.critical and bc.value.ca and bc.value.path_length == 0
        ku = ca.active.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign


class TestOracles:
    def test_py_spiffe_parses_our_svid(self, issued) -> None:
        _, svid, _ = issued
        parsed = X509Svid.parse(svid.cert_chain_pem(), svid.private_key_pem())
        assert parsed.spiffe_id == SpiffeId(ID)
        assert parsed.leaf == svid.leaf

    def test_py_spiffe_bundle_holds_the_issuer(self, issued) -> None:
        ca, svid, _ = issued
        bundle = X509Bundle.parse(TrustDomain("refbank.local"), ca.bundle().pem().encode())
        issuers = [c for c in bundle.x509_authorities if c.subject == svid.leaf.issuer]
        assert len(issuers) == 1
        svid.leaf.verify_directly_issued_by(issuers[0])

    def test_rfc5280_path_validation_as_a_client_certificate(self, issued) -> None:
        ca, svid, _ = issued
        store = verification.Store(list(ca.bundle().authorities))
        verifier = verification.PolicyBuilder().store(store).build_client_verifier()
        result = verifier.verify(svid.leaf, [])
        assert x509.UniformResourceIdentifier(ID) in result.subjects

    def test_py_spiffe_rejects_what_we_reject(self, issued) -> None:
        """A leaf with cA=true is refused by both us and the oracle (a failing twin)."""
        ca, _, _ = issued
        key = new_private_key()
        now = utcnow()
        bad = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca.active.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ID)]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca.active.key, hashes.SHA256())
        )
        with pytest.raises(InvalidSVIDError, match="is a CA"):
            spiffe_id_from_certificate(bad)
        pem = bad.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(Exception, match="CA flag"):
            X509Svid.parse(pem, key_pem)


class TestLeafRules:
    """spiffe_id_from_certificate: the one place the leaf rules live, as a table."""

    @staticmethod
    def _leaf(ca: CertificateAuthority, uris: list[str]) -> x509.Certificate:
        key = new_private_key()
        now = utcnow()
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca.active.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
        )
        if uris:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
                critical=False,
            )
        return b.sign(ca.active.key, hashes.SHA256())

    @pytest.mark.parametrize(
        ("uris", "error"),
        [
            ([], "no subjectAltName"),
            ([ID, "spiffe://refbank.local/ns/refbank/sa/accounts"], "2 URI SANs"),
            (["https://refbank.local/ledger"], "must start with 'spiffe://'"),
            (["spiffe://refbank.local"], "has no path"),
            (["spiffe://refbank.local/ns/../sa/x"], "invalid path segment"),
            (["spiffe://Refbank.local/ns/a/sa/b"], "invalid trust domain"),
            (["spiffe://other.local/ns/refbank/sa/ledger"], "outside trust domain"),
        ],
    )
    def test_bad_leaves(self, issued, uris: list[str], error: str) -> None:
        ca, _, _ = issued
        with pytest.raises(InvalidSVIDError, match=error):
            spiffe_id_from_certificate(self._leaf(ca, uris), "refbank.local")

    def test_good_leaf(self, issued) -> None:
        ca, _, _ = issued
        assert spiffe_id_from_certificate(self._leaf(ca, [ID]), "refbank.local") == ID

    def test_ca_refuses_other_trust_domains_and_keys(self, issued) -> None:
        ca, _, _ = issued
        with pytest.raises(IssuanceRefused, match="outside"):
            ca.issue("spiffe://other.local/ns/a/sa/b", new_private_key().public_key())
        with pytest.raises(IssuanceRefused, match="P-256"):
            ca.issue(ID, ec.generate_private_key(ec.SECP384R1()).public_key())

    def test_key_must_match_certificate(self, issued) -> None:
        _, svid, _ = issued
        with pytest.raises(InvalidSVIDError, match="does not match"):
            X509SVID.from_parts(svid.cert_chain, new_private_key())

    def test_build_refuses_bad_id(self, issued) -> None:
        ca, _, _ = issued
        with pytest.raises(InvalidSVIDError):
            build_svid_certificate(
                spiffe_id="spiffe://refbank.local/",
                public_key=new_private_key().public_key(),
                issuer_cert=ca.active.cert,
                issuer_key=ca.active.key,
                not_before=utcnow(),
                not_after=utcnow(),
            )
