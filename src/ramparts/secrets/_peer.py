"""The caller's SPIFFE ID, read only from the TLS layer's verified client chain.

The mTLS server (:func:`ramparts.identity.build_mtls_server`) puts the chain it
verified into the ASGI TLS extension (``scope["extensions"]["tls"]
["client_cert_chain"]``, PEM strings, leaf first). Nothing else about a request
(headers, body, address) can name the caller. The rule for reading it (one URI
SAN, a valid SPIFFE ID, a proper leaf) lives in one place, the identity piece;
this module only re-exports it for the broker.
"""

from __future__ import annotations

from ramparts.identity import peer_spiffe_id

__all__ = ["peer_spiffe_id"]
