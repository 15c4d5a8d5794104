"""SPIFFE IDs: parsing by the SPIFFE-ID spec and reading them from certificates.

This module is the one place where the X.509-SVID leaf rules are checked
(X509-SVID spec §4: exactly one URI SAN; §4.1 basic constraints cA=false;
§4.3 key usage with digitalSignature, without keyCertSign or cRLSign). The
server after a handshake, the client before sending a request, the CA API
and :func:`peer_spiffe_id` all call :func:`spiffe_id_from_certificate`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ramparts.identity._errors import InvalidSVIDError

SCHEME = "spiffe://"
# SPIFFE-ID §2.1: trust domain is lowercase letters, digits, '.', '-', '_'.
_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]{1,255}$")
# SPIFFE-ID §2.2: path segments of letters, digits, '.', '-', '_'; no '.' or '..'.
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
# SPIFFE-ID §2.3: at most 2048 bytes.
MAX_SPIFFE_ID_LENGTH = 2048


def parse_spiffe_id(value: str) -> tuple[str, str]:
    """Split a SPIFFE ID into ``(trust_domain, path)``; raise InvalidSVIDError naming the flaw."""
    if not isinstance(value, str) or len(value) > MAX_SPIFFE_ID_LENGTH:
        raise InvalidSVIDError(
            f"SPIFFE ID must be a string of at most {MAX_SPIFFE_ID_LENGTH} bytes"
        )
    if not value.startswith(SCHEME):
        raise InvalidSVIDError(f"SPIFFE ID must start with {SCHEME!r}, got {value!r}")
    rest = value[len(SCHEME) :]
    td, slash, path = rest.partition("/")
    if not _TRUST_DOMAIN.match(td):
        raise InvalidSVIDError(f"SPIFFE ID {value!r} has an invalid trust domain {td!r}")
    if not slash or not path:
        raise InvalidSVIDError(f"SPIFFE ID {value!r} has no path; a workload ID needs one")
    for seg in path.split("/"):
        if seg in ("", ".", "..") or not _SEGMENT.match(seg):
            raise InvalidSVIDError(f"SPIFFE ID {value!r} has an invalid path segment {seg!r}")
    return td, "/" + path


def trust_domain_of(spiffe_id: str) -> str:
    return parse_spiffe_id(spiffe_id)[0]


def spiffe_id_from_certificate(cert: x509.Certificate, trust_domain: str | None = None) -> str:
    """The SPIFFE ID of a leaf X.509-SVID, after checking every leaf rule.

    Raises:
        InvalidSVIDError: the certificate is a CA, lacks or misuses key usage,
            has no or several URI SANs, or names another trust domain.
    """
    try:
        bc = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        raise InvalidSVIDError("leaf certificate has no basicConstraints extension") from None
    if bc.ca:  # type: ignore[attr-defined]
        raise InvalidSVIDError("leaf certificate is a CA (basicConstraints cA=true)")
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    except x509.ExtensionNotFound:
        raise InvalidSVIDError("leaf certificate has no keyUsage extension") from None
    usage: x509.KeyUsage = ku.value  # type: ignore[assignment]
    if not usage.digital_signature or usage.key_cert_sign or usage.crl_sign:
        raise InvalidSVIDError(
            "leaf keyUsage must include digitalSignature and exclude keyCertSign and cRLSign"
        )
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        raise InvalidSVIDError(
            "leaf certificate has no subjectAltName (want one SPIFFE ID)"
        ) from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)  # type: ignore[attr-defined]
    if len(uris) != 1:
        raise InvalidSVIDError(f"leaf certificate has {len(uris)} URI SANs, want exactly one")
    td, _ = parse_spiffe_id(uris[0])
    if trust_domain is not None and td != trust_domain:
        raise InvalidSVIDError(f"SPIFFE ID {uris[0]} is outside trust domain {trust_domain!r}")
    return uris[0]


@lru_cache(maxsize=512)
def spiffe_id_from_der(der: bytes, trust_domain: str | None = None) -> str:
    """:func:`spiffe_id_from_certificate` on DER bytes, cached (bounded) per certificate."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise InvalidSVIDError(f"peer certificate is not valid DER: {exc}") from exc
    return spiffe_id_from_certificate(cert, trust_domain)


@lru_cache(maxsize=512)
def spiffe_id_from_pem(pem: str, trust_domain: str | None = None) -> str:
    """:func:`spiffe_id_from_certificate` on one PEM certificate, cached (bounded)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        raise InvalidSVIDError(f"certificate is not valid PEM: {exc}") from exc
    return spiffe_id_from_certificate(cert, trust_domain)
