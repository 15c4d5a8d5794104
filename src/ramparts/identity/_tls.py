"""Stdlib ``ssl`` contexts for mTLS between workloads, and the SPIFFE check after a handshake.

Both sides: TLS 1.3 only, the peer certificate required and verified against
the trust bundle (OpenSSL checks signature chain, validity period and EKU
purpose). OpenSSL knows nothing of SPIFFE, so after every handshake
:func:`verify_peer` applies the X.509-SVID leaf rules and the trust domain,
and, on the client, that the server is the service we meant to call.
Hostname checking is off: identities are SPIFFE IDs, not DNS names.
"""

from __future__ import annotations

import os
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ramparts.identity._bundle import TrustBundle
from ramparts.identity._errors import PeerIdentityError
from ramparts.identity._spiffe_id import spiffe_id_from_der
from ramparts.identity._svid import X509SVID

# IANA TLS cipher suite values (RFC 8446 §B.4), for the ASGI TLS extension's ``cipher_suite``.
TLS13_CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
}
TLS_VERSIONS = {"TLSv1.3": 0x0304, "TLSv1.2": 0x0303}


def _load_svid(ctx: ssl.SSLContext, svid: X509SVID) -> None:
    """Load an in-memory SVID into ``ctx``.

    ``load_cert_chain`` only takes paths. The key goes to an anonymous memfd
    (never on a filesystem) where Linux has one, otherwise to a 0600 file in a
    0700 temp directory, deleted at once.
    """
    blob = svid.cert_chain_pem() + svid.private_key_pem()
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = memfd("ramparts-svid", os.MFD_CLOEXEC)
        try:
            os.write(fd, blob)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ramparts-svid-") as d:  # pragma: no cover - non-Linux
        path = os.path.join(d, "svid.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, blob)
        finally:
            os.close(fd)
        ctx.load_cert_chain(path)


def _base(ctx: ssl.SSLContext, svid: X509SVID, bundle: TrustBundle) -> ssl.SSLContext:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=bundle.pem())
    _load_svid(ctx, svid)
    return ctx


def server_context(svid: X509SVID, bundle: TrustBundle) -> ssl.SSLContext:
    """A server context that demands and verifies a client SVID."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # No session tickets: a resumed session skips client-certificate verification
    # and would outlive the SVID it was made with (default ticket lifetime 2 h > 1 h TTL).
    ctx.num_tickets = 0
    ctx.options |= ssl.OP_NO_TICKET
    return _base(ctx, svid, bundle)


def client_context(svid: X509SVID, bundle: TrustBundle) -> ssl.SSLContext:
    """A client context that presents our SVID and verifies the server's chain.

    The server's SPIFFE ID is checked by the caller with :func:`verify_peer`.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # identity is the SPIFFE ID, checked after the handshake
    return _base(ctx, svid, bundle)


def verify_peer(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, trust_domain: str, expected: str | None = None
) -> str:
    """The SPIFFE ID of the verified peer of a finished handshake.

    Raises:
        PeerIdentityError: no peer certificate, the leaf breaks the SVID rules,
            another trust domain, or not ``expected``.
    """
    # Positional: httpcore's sync stream hands over the C-level _ssl._SSLSocket, whose
    # getpeercert takes no keywords.
    der = ssl_object.getpeercert(True)
    if not der:
        raise PeerIdentityError("peer presented no certificate")
    try:
        spiffe_id = spiffe_id_from_der(der, trust_domain)
    except PeerIdentityError:
        raise
    except Exception as exc:  # InvalidSVIDError and parse errors: one class for callers
        raise PeerIdentityError(str(exc)) from exc
    if expected is not None and spiffe_id != expected:
        raise PeerIdentityError(f"peer is {spiffe_id}, expected {expected}")
    return spiffe_id


def asgi_tls_extension(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, server_cert_pem: str | None
) -> dict[str, object]:
    """The ASGI TLS extension dict (asgiref spec "TLS Extension" 0.2) for one connection.

    ``client_cert_chain`` holds only the leaf: Python 3.11's ssl exposes the
    peer's leaf, not its chain, and our SVIDs are signed directly by a root.
    """
    der = ssl_object.getpeercert(True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    name = None
    if der:
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    cipher = ssl_object.cipher()
    return {
        "server_cert": server_cert_pem,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": TLS13_CIPHER_SUITES.get(cipher[0]) if cipher else None,
    }


def leaf_pem(svid: X509SVID) -> str:
    return svid.leaf.public_bytes(serialization.Encoding.PEM).decode()
