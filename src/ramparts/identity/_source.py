"""The workload's live identity: current SVID and trust bundle, and TLS contexts built from them.

Rotation without restarts: each update builds *fresh* ``SSLContext`` objects
(trust anchors can only be added to a context, never removed, so reusing one
would keep a pruned CA trusted forever). Every new connection asks the source
for the current context; established connections keep the context they were
made with, so in-flight requests never fail because of a rotation.

>>> import tempfile
>>> from ramparts.identity import CertificateAuthority
>>> ca = CertificateAuthority.in_memory("example.org")
>>> src = IdentitySource(ca.issue_svid("spiffe://example.org/ns/a/sa/b"), ca.bundle())
>>> src.server_context().minimum_version.name
'TLSv1_3'
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from ramparts.identity._bundle import TrustBundle
from ramparts.identity._errors import IdentityError
from ramparts.identity._files import ensure_private_dir, write_public_file
from ramparts.identity._svid import X509SVID
from ramparts.identity._tls import client_context, server_context

BUNDLE_FILE = "bundle.json"
BUNDLE_PEM_FILE = "bundle.pem"


class IdentitySource:
    """Holds one workload's SVID and bundle; hands out the TLS contexts for new connections.

    Thread-safe. Listeners registered with :meth:`subscribe` run after each update.
    """

    def __init__(self, svid: X509SVID, bundle: TrustBundle) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[IdentitySource], None]] = []
        self._svid, self._bundle = svid, bundle
        self._server_ctx: ssl.SSLContext | None = None
        self._client_ctx: ssl.SSLContext | None = None
        _check_consistent(svid, bundle)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> IdentitySource:
        """Load what local attestation wrote (``svid.pem``, ``svid.key``, ``bundle.json``)."""
        d = Path(directory)
        svid = X509SVID.load(d)
        try:
            bundle = TrustBundle.from_jwks(svid.trust_domain, (d / BUNDLE_FILE).read_bytes())
        except OSError as exc:
            raise IdentityError(f"cannot read trust bundle {d / BUNDLE_FILE}: {exc}") from exc
        return cls(svid, bundle)

    def refresh_from_dir(self, directory: str | os.PathLike[str]) -> bool:
        """Pick up files an external agent rotated (SPIRE's spiffe-helper, a k8s projected volume).

        Returns True when the SVID or the bundle changed. The same identity is
        required, and an older bundle sequence is ignored, as in :meth:`update`.
        """
        fresh = IdentitySource.from_dir(directory)
        changed = fresh.svid.leaf != self.svid.leaf or fresh.bundle.sequence > self.bundle.sequence
        if changed:
            self.update(svid=fresh.svid, bundle=fresh.bundle)
        return changed

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write the SVID and bundle where :meth:`from_dir` reads them."""
        d = ensure_private_dir(directory)
        self.svid.save(d)
        write_public_file(d / BUNDLE_FILE, self.bundle.to_json().encode())
        write_public_file(d / BUNDLE_PEM_FILE, self.bundle.pem().encode())

    @property
    def svid(self) -> X509SVID:
        return self._svid

    @property
    def bundle(self) -> TrustBundle:
        return self._bundle

    @property
    def spiffe_id(self) -> str:
        return self._svid.spiffe_id

    @property
    def trust_domain(self) -> str:
        return self._bundle.trust_domain

    def update(self, *, svid: X509SVID | None = None, bundle: TrustBundle | None = None) -> None:
        """Swap in a renewed SVID and/or a newer bundle; contexts are rebuilt for new connections.

        A bundle with a lower ``spiffe_sequence`` than the current one is ignored
        (a stale replica must not roll back a CA rotation).
        """
        with self._lock:
            new_svid = svid or self._svid
            new_bundle = (
                bundle
                if bundle is not None and bundle.sequence >= self._bundle.sequence
                else self._bundle
            )
            if new_svid.spiffe_id != self._svid.spiffe_id:
                raise IdentityError(
                    f"refusing to change identity from {self._svid.spiffe_id} "
                    f"to {new_svid.spiffe_id}"
                )
            _check_consistent(new_svid, new_bundle)
            self._svid, self._bundle = new_svid, new_bundle
            self._server_ctx = self._client_ctx = None
            listeners = list(self._listeners)
        for fn in listeners:
            fn(self)

    def subscribe(self, fn: Callable[[IdentitySource], None]) -> None:
        with self._lock:
            self._listeners.append(fn)

    def server_context(self) -> ssl.SSLContext:
        """The server context for the next accepted connection."""
        with self._lock:
            if self._server_ctx is None:
                self._server_ctx = server_context(self._svid, self._bundle)
            return self._server_ctx

    def client_context(self) -> ssl.SSLContext:
        """The client context for the next outgoing connection."""
        with self._lock:
            if self._client_ctx is None:
                self._client_ctx = client_context(self._svid, self._bundle)
            return self._client_ctx


def _check_consistent(svid: X509SVID, bundle: TrustBundle) -> None:
    """Fail early if peers could not verify our SVID with the bundle we hold."""
    if svid.trust_domain != bundle.trust_domain:
        raise IdentityError(
            f"SVID {svid.spiffe_id} is not in the bundle's trust domain {bundle.trust_domain}"
        )
    top = svid.cert_chain[-1]
    for ca in bundle.authorities:
        if ca.subject == top.issuer:
            try:
                top.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return
    raise IdentityError(f"SVID {svid.spiffe_id} is not signed by any CA in the trust bundle")
