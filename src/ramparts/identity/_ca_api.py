"""The CA's HTTPS API, served over mTLS: renew an SVID (CSR in, SVID out) and fetch the bundle.

``POST /v1/svid``   body: a PEM CSR (at most 16 KiB). The SPIFFE ID signed is the
                    one the caller proved in the TLS handshake, never one named in
                    the body; a CSR naming another ID is refused (403).
                    Answer: ``{"spiffe_id", "cert_chain" (PEM), "bundle" (SPIFFE JWKS)}``.
``GET /v1/bundle``  the SPIFFE bundle (JWKS) to any verified workload.

:class:`CAService` also gives the CA its own SVID
(``spiffe://<td>/ns/ramparts/sa/ca``), renews it, and runs the CA's rotation
schedule, so one object is enough for ``ramparts ca serve`` and the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ramparts.config import Topology
from ramparts.events import EventEmitter
from ramparts.identity._ca import CertificateAuthority
from ramparts.identity._errors import IssuanceRefused
from ramparts.identity._peer import peer_spiffe_id
from ramparts.identity._source import IdentitySource
from ramparts.identity._svid import utcnow

MAX_CSR_BYTES = 16 * 1024
CA_SERVICE = "ca"


def ca_spiffe_id(trust_domain: str) -> str:
    """The CA's own identity; matches ``Topology.spiffe_id("ca")``."""
    return f"spiffe://{trust_domain}/ns/ramparts/sa/ca"


def build_ca_app(
    ca: CertificateAuthority, *, emitter: EventEmitter, topology: Topology | None = None
) -> Starlette:
    """The CA API as an ASGI app; serve it with :func:`ramparts.identity.serve_mtls`."""

    def refuse(
        status: int, reason: str, caller: str | None, type_: str = "ca.issue_refused"
    ) -> Response:
        emitter.deny(type_, service=CA_SERVICE, reason=reason, peer=caller)
        return JSONResponse(
            {"error": "forbidden" if status == 403 else "bad_request", "reason": reason}, status
        )

    def known(caller: str | None) -> str | None:
        """Why ``caller`` may not use the CA, or None when it may."""
        if caller is None:
            return "no verified caller identity"
        if not caller.startswith(f"spiffe://{ca.trust_domain}/"):
            return f"{caller} is outside trust domain {ca.trust_domain}"
        if topology is not None and topology.name_for(caller) is None:
            return f"unknown identity {caller} (not in the topology)"
        return None

    async def svid(request: Request) -> Response:
        caller = peer_spiffe_id(request.scope)
        why = known(caller)
        if why is not None or caller is None:
            return refuse(403, why or "no verified caller identity", caller, "authz.denied")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CSR_BYTES:
                return refuse(400, f"CSR larger than {MAX_CSR_BYTES} bytes", caller)
        try:
            csr = x509.load_pem_x509_csr(body)
        except ValueError:
            return refuse(400, "body is not a PEM certificate signing request", caller)
        try:
            chain = ca.sign_csr(csr, caller)
        except IssuanceRefused as exc:
            return refuse(403, str(exc), caller)
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
        return JSONResponse(
            {"spiffe_id": caller, "cert_chain": pem, "bundle": ca.bundle().to_jwks()}
        )

    async def bundle(request: Request) -> Response:
        caller = peer_spiffe_id(request.scope)
        why = known(caller)
        if why is not None:
            return refuse(403, why, caller, "authz.denied")
        return Response(json.dumps(ca.bundle().to_jwks()), media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/svid", svid, methods=["POST"]),
            Route("/v1/bundle", bundle, methods=["GET"]),
        ]
    )


class CAService:
    """A CA with its own SVID, its API app and its maintenance loop."""

    def __init__(
        self, ca: CertificateAuthority, *, emitter: EventEmitter, topology: Topology | None = None
    ) -> None:
        self.ca = ca
        self.emitter = emitter
        self.spiffe_id = ca_spiffe_id(ca.trust_domain)
        self.source = IdentitySource(ca.issue_svid(self.spiffe_id), ca.bundle())
        self.app = build_ca_app(ca, emitter=emitter, topology=topology)

    def tick(self, current_time: dt.datetime | None = None) -> None:
        """Run the rotation schedule; renew the CA's own SVID and refresh its bundle when due."""
        now = current_time or utcnow()
        self.ca.maintain(now)
        bundle = self.ca.bundle()
        if (
            now >= self.source.svid.renew_at
            or self.source.svid.cert_chain[-1].issuer != self.ca.active.cert.subject
        ):
            self.source.update(svid=self.ca.issue_svid(self.spiffe_id), bundle=bundle)
        elif bundle.sequence != self.source.bundle.sequence:
            self.source.update(bundle=bundle)

    async def maintain_forever(self, interval: float = 1.0) -> None:
        while True:
            self.tick()
            await asyncio.sleep(interval)

    def server(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Any:
        """A uvicorn server for the API over mTLS; runs :meth:`maintain_forever` alongside."""
        # Imported here: _server imports uvicorn, which the CA object itself does not need.
        from ramparts.identity._server import build_mtls_server  # noqa: PLC0415

        service = self

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            task = asyncio.get_running_loop().create_task(service.maintain_forever())
            try:
                yield
            finally:
                task.cancel()

        self.app.router.lifespan_context = lifespan
        return build_mtls_server(
            self.app,
            source=self.source,
            emitter=self.emitter,
            host=host,
            port=port,
            service=CA_SERVICE,
            **options,
        )
