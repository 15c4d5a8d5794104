"""Workload identity: an internal CA issuing SPIFFE X.509-SVIDs, and mTLS authorised by identity.

>>> ca = CertificateAuthority.in_memory("refbank.local")
>>> svid = ca.issue_svid("spiffe://refbank.local/ns/refbank/sa/ledger")
>>> source = IdentitySource(svid, ca.bundle())
>>> source.spiffe_id
'spiffe://refbank.local/ns/refbank/sa/ledger'

The pieces:

* :class:`CertificateAuthority` issues SVIDs, publishes the :class:`TrustBundle`
  (SPIFFE JWKS) and rotates itself; :class:`CAService` serves its mTLS API.
* :func:`attest_local` writes each service's first SVID for ``ramparts up``;
  :class:`SVIDRotator` renews it at half-life through the CA API.
* :class:`IdentitySource` holds a workload's live SVID and bundle and hands
  out fresh TLS 1.3 contexts after every rotation.
* :func:`serve_mtls` / :func:`build_mtls_server` serve an ASGI app over mTLS
  and put the verified peer into ``scope["extensions"]["tls"]``;
  :func:`peer_spiffe_id` reads it back; :class:`AuthorizationMiddleware`
  authorises it against the topology.
* :func:`service_client` calls another service and refuses a server that is
  not the SPIFFE ID it meant to call.

Errors: see :mod:`ramparts.identity._errors` for the tree under :class:`IdentityError`.
"""

from ramparts.identity._attest import attest_local
from ramparts.identity._bundle import TrustBundle
from ramparts.identity._ca import CertificateAuthority
from ramparts.identity._ca_api import CAService, build_ca_app, ca_spiffe_id
from ramparts.identity._client import (
    AsyncSPIFFETransport,
    SPIFFETransport,
    service_client,
    service_client_sync,
)
from ramparts.identity._errors import (
    CAStateError,
    IdentityError,
    IdentityExpiredError,
    InsecureFileError,
    InvalidSVIDError,
    IssuanceRefused,
    PeerIdentityError,
)
from ramparts.identity._files import Passphrase
from ramparts.identity._middleware import AuthorizationMiddleware
from ramparts.identity._peer import peer_spiffe_id
from ramparts.identity._rotation import SVIDRotator
from ramparts.identity._server import ServerThread, build_mtls_server, serve_mtls
from ramparts.identity._source import IdentitySource
from ramparts.identity._spiffe_id import parse_spiffe_id, spiffe_id_from_certificate
from ramparts.identity._svid import CLOCK_SKEW, DEFAULT_SVID_TTL, X509SVID
from ramparts.identity._tls import client_context, server_context, verify_peer

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_SVID_TTL",
    "X509SVID",
    "AsyncSPIFFETransport",
    "AuthorizationMiddleware",
    "CAService",
    "CAStateError",
    "CertificateAuthority",
    "IdentityError",
    "IdentityExpiredError",
    "IdentitySource",
    "InsecureFileError",
    "InvalidSVIDError",
    "IssuanceRefused",
    "Passphrase",
    "PeerIdentityError",
    "SPIFFETransport",
    "SVIDRotator",
    "ServerThread",
    "TrustBundle",
    "attest_local",
    "build_ca_app",
    "build_mtls_server",
    "ca_spiffe_id",
    "client_context",
    "parse_spiffe_id",
    "peer_spiffe_id",
    "serve_mtls",
    "server_context",
    "service_client",
    "service_client_sync",
    "spiffe_id_from_certificate",
    "verify_peer",
]
