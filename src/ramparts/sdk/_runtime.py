"""The service runtime: identity, authorisation, correlation, events, calls and egress."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from ramparts.audit.shipper import Shipper, ShipperSink
from ramparts.config import Topology
from ramparts.egress import EgressClient, EgressPolicy
from ramparts.events import EventEmitter, EventSink
from ramparts.identity import (
    AuthorizationMiddleware,
    IdentitySource,
    SVIDRotator,
    build_mtls_server,
    service_client,
)
from ramparts.sdk._calls import ServiceCalls
from ramparts.sdk._correlation import CorrelationMiddleware

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        topology: Topology,
        identity: IdentitySource,
        *,
        sinks: list[EventSink] | None = None,
        ca_url: str | None = None,
        identity_dir: Path | None = None,
        audit_url: str | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        if name not in topology.services:
            raise KeyError(f"no service {name!r} in {topology.source}")
        if identity.spiffe_id != topology.spiffe_id(name):
            raise ValueError(
                f"identity {identity.spiffe_id} is not service {name!r}, "
                f"which is {topology.spiffe_id(name)}"
            )
        self.name = name
        self.topology = topology
        self.identity = identity
        self.emitter = EventEmitter(sinks or [], service=name)
        self.shipper: Shipper | None = None
        if audit_url is not None and spool_dir is not None:
            # Every security event goes to the audit log through a disk buffer, over mTLS
            # to the log's own identity; the log being down loses nothing.
            audit_id = topology.spiffe_id("audit")
            self.shipper = Shipper(
                spool_dir,
                audit_url,
                service=name,
                client_factory=lambda: service_client(identity, audit_id, audit_url),
            )
            self.emitter.add_sink(ShipperSink(self.shipper))
        self.calls = ServiceCalls(name, topology, identity, self.emitter)
        self.ca_url = ca_url
        if identity_dir is not None:
            # Renewed SVIDs go back to disk, so a restart starts from the newest one.
            identity.subscribe(lambda src: src.save(identity_dir))

    @classmethod
    def from_state(
        cls, name: str, topology: Topology, state_dir: str | os.PathLike[str], **kw: Any
    ) -> ServiceRuntime:
        """Load the identity local attestation wrote under ``state_dir/identity/<name>``,
        renew it at the topology's CA, and ship events to its audit log."""
        directory = Path(state_dir) / "identity" / name
        kw.setdefault("ca_url", f"https://{topology.platform.ca}")
        kw.setdefault("audit_url", f"https://{topology.platform.audit}")
        kw.setdefault("spool_dir", Path(state_dir) / "spool" / name)
        source = IdentitySource.from_dir(directory)
        return cls(name, topology, source, identity_dir=directory, **kw)

    def egress(self, **kw: Any) -> EgressClient:
        """The SSRF-safe client for this service's egress allow-list."""
        return EgressClient(
            EgressPolicy.from_topology(self.topology, self.name), self.emitter, **kw
        )

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Correlation first, so even a denied call's event carries its correlation ID;
        then authorisation, which denies before any of the service's code runs."""
        return CorrelationMiddleware(
            AuthorizationMiddleware(
                app, topology=self.topology, service=self.name, emitter=self.emitter
            )
        )

    def server(self, app: ASGIApp, *, port: int | None = None, **options: Any) -> Any:
        """A uvicorn server for ``app`` on the service's listen address, mTLS only."""
        listen = self.topology.services[self.name].listen
        return build_mtls_server(
            self.wrap(app),
            source=self.identity,
            emitter=self.emitter,
            host=listen.host,
            port=listen.port if port is None else port,
            service=self.name,
            **options,
        )

    async def serve(self, app: ASGIApp, **options: Any) -> None:
        """Serve until stopped, renewing the SVID at half-life when a CA is configured."""
        server = self.server(app, **options)
        stop = asyncio.Event()
        tasks = []
        if self.ca_url is not None:
            rotator = SVIDRotator(self.identity, self.ca_url, emitter=self.emitter)
            tasks.append(asyncio.create_task(rotator.run(stop)))
        if self.shipper is not None:
            tasks.append(self.shipper.start())
        try:
            await server.serve()
        finally:
            stop.set()
            if self.shipper is not None:
                with contextlib.suppress(Exception):
                    await self.shipper.flush(timeout=2.0)
                await self.shipper.aclose()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def aclose(self) -> None:
        await self.calls.aclose()
