"""Reading the caller's identity from an ASGI scope.

The contract with every service built on Ramparts: the verified caller is in
the ASGI TLS extension, ``scope["extensions"]["tls"]["client_cert_chain"]``
(PEM strings, leaf first), which :func:`ramparts.identity.serve_mtls` fills
only after the chain verified against the trust bundle and the leaf passed the
SPIFFE checks. Never from a header, never from an IP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ramparts.identity._errors import InvalidSVIDError
from ramparts.identity._spiffe_id import spiffe_id_from_pem


def peer_spiffe_id(scope: Mapping[str, Any]) -> str | None:
    """The caller's verified SPIFFE ID, or None when the connection carries none.

    Returns None (never raises) for a plain-HTTP scope, an empty chain or a leaf
    that breaks the SVID rules, so callers fail closed by treating None as "unknown".
    """
    ext = scope.get("extensions")
    tls = ext.get("tls") if isinstance(ext, Mapping) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, Mapping) else None
    if not chain or not isinstance(chain[0], str):
        return None
    try:
        return spiffe_id_from_pem(chain[0])
    except InvalidSVIDError:
        return None
