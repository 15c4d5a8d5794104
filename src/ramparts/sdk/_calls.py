"""Calls to other services by name, over mTLS, to the identity the topology names."""

from __future__ import annotations

from typing import Any

import httpx

from ramparts.config import Topology
from ramparts.events import EventEmitter
from ramparts.identity import IdentitySource, service_client
from ramparts.telemetry.tracing import outgoing_headers


class ServiceCalls:
    """One pooled mTLS client per callee, created on first use.

    The client refuses a server whose certificate is not the callee's SPIFFE ID,
    so a compromised neighbour on the callee's port cannot answer in its place.
    Whether the call is *allowed* is the callee's decision (its authorisation
    middleware); a call the topology has no edge for is refused here too, before
    any byte is sent, so a mistake shows up in the caller's own logs.
    """

    def __init__(
        self, me: str, topology: Topology, source: IdentitySource, emitter: EventEmitter
    ) -> None:
        self.me, self.topology, self.source, self.emitter = me, topology, source, emitter
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, service: str) -> httpx.AsyncClient:
        client = self._clients.get(service)
        if client is None:
            target = self.topology.services[service]
            client = service_client(
                self.source,
                target.spiffe_id,
                f"https://{target.listen}",
                emitter=self.emitter,
            )
            self._clients[service] = client
        return client

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        if (self.me, service) not in self.topology.edges:
            self.emitter.deny(
                "authz.denied",
                reason=f"{self.me} may not call {service} (no edge in topology)",
                detail={"callee": service, "method": method, "path": path, "side": "caller"},
            )
            return httpx.Response(403, json={"detail": f"{self.me} may not call {service}"})
        return await self._client(service).request(
            method, path, json=json, params=params, headers=outgoing_headers()
        )

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
