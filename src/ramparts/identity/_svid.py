"""X.509-SVIDs: the workload's certificate chain and key, and how the CA builds one.

Profile (X509-SVID spec §4 and §5, RFC 5280):

* exactly one URI SAN, ``spiffe://<trust-domain>/ns/<namespace>/sa/<service>``;
* keyUsage critical: digitalSignature only (no keyCertSign, no cRLSign);
* basicConstraints critical, cA=false;
* extendedKeyUsage serverAuth + clientAuth (every workload is both);
* notBefore backdated :data:`CLOCK_SKEW` so a peer whose clock runs a little
  behind still accepts a fresh certificate; default lifetime :data:`DEFAULT_SVID_TTL`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ramparts.identity._errors import InvalidSVIDError
from ramparts.identity._files import (
    ensure_private_dir,
    load_private_key,
    private_key_pem,
    write_private_file,
    write_public_file,
)
from ramparts.identity._spiffe_id import parse_spiffe_id, spiffe_id_from_certificate

DEFAULT_SVID_TTL = dt.timedelta(hours=1)
CLOCK_SKEW = dt.timedelta(minutes=2)
SVID_CERT_FILE = "svid.pem"
SVID_KEY_FILE = "svid.key"


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key: small, fast handshakes, universally supported."""
    return ec.generate_private_key(ec.SECP256R1())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class X509SVID:
    """A workload's SVID: the leaf first, then any intermediates, and its private key."""

    spiffe_id: str
    cert_chain: tuple[x509.Certificate, ...]
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def from_parts(
        cls,
        cert_chain: tuple[x509.Certificate, ...] | list[x509.Certificate],
        key: ec.EllipticCurvePrivateKey,
    ) -> X509SVID:
        """Check the leaf rules and that the key matches the leaf, then build."""
        chain = tuple(cert_chain)
        if not chain:
            raise InvalidSVIDError("an SVID needs at least one certificate")
        spiffe_id = spiffe_id_from_certificate(chain[0])
        if chain[0].public_key() != key.public_key():
            raise InvalidSVIDError(f"private key does not match the certificate of {spiffe_id}")
        return cls(spiffe_id, chain, key)

    @property
    def leaf(self) -> x509.Certificate:
        return self.cert_chain[0]

    @property
    def trust_domain(self) -> str:
        return parse_spiffe_id(self.spiffe_id)[0]

    @property
    def not_before(self) -> dt.datetime:
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.leaf.not_valid_after_utc

    @property
    def renew_at(self) -> dt.datetime:
        """Half-way through the lifetime the CA meant to give (the skew backdate excluded)."""
        issued = self.not_before + CLOCK_SKEW
        if issued >= self.not_after:
            issued = self.not_before
        return issued + (self.not_after - issued) / 2

    def cert_chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.cert_chain)

    def private_key_pem(self) -> bytes:
        return private_key_pem(self.private_key)

    def save(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``svid.pem`` (0644) and ``svid.key`` (0600) into a 0700 directory."""
        d = ensure_private_dir(directory)
        write_private_file(d / SVID_KEY_FILE, self.private_key_pem())
        write_public_file(d / SVID_CERT_FILE, self.cert_chain_pem())
        return d / SVID_CERT_FILE, d / SVID_KEY_FILE

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> X509SVID:
        d = Path(directory)
        try:
            chain = x509.load_pem_x509_certificates((d / SVID_CERT_FILE).read_bytes())
        except (OSError, ValueError) as exc:
            raise InvalidSVIDError(
                f"cannot read SVID certificate {d / SVID_CERT_FILE}: {exc}"
            ) from exc
        return cls.from_parts(chain, load_private_key(d / SVID_KEY_FILE))


def build_svid_certificate(
    *,
    spiffe_id: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Sign a leaf SVID with the profile in the module docstring. Times are taken as given."""
    td, path = parse_spiffe_id(spiffe_id)
    service = path.rsplit("/", 1)[-1]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, td),
            x509.NameAttribute(NameOID.COMMON_NAME, service[:64]),
        ]
    )
    issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        # RFC 5280 §4.1.2.2: positive, at most 20 octets; random_serial_number gives 159 bits.
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
