"""ASGI middleware that authorises every request by the caller's verified SPIFFE ID.

>>> # app = AuthorizationMiddleware(app, topology=topo, service="ledger", emitter=emitter)

The caller comes from :func:`peer_spiffe_id` (the verified certificate of the
connection), the decision from ``Topology.authorize`` (edges plus per-path
rules). A denied request gets ``403`` with a JSON body and one
``authz.denied`` event; an allowed one an ``authz.allowed`` event, and the
caller's name in ``scope["state"]["ramparts_caller"]``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ramparts.config import Topology
from ramparts.events import EventEmitter
from ramparts.identity._peer import peer_spiffe_id

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class AuthorizationMiddleware:
    """Deny-by-default authorisation of ``http`` and ``websocket`` scopes; others pass through."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        topology: Topology,
        service: str,
        emitter: EventEmitter,
        emit_allowed: bool = True,
    ) -> None:
        try:
            topology.spiffe_id(service)
        except KeyError:
            raise ValueError(
                f"service {service!r} is not in the topology {topology.source}"
            ) from None
        self.app = app
        self.topology = topology
        self.service = service
        self.emitter = emitter
        self.emit_allowed = emit_allowed

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        caller = peer_spiffe_id(scope)
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        decision = self.topology.authorize(self.service, caller, method, path)
        detail = {"method": method, "path": path, "caller": decision.caller}
        if not decision.allowed:
            self.emitter.deny(
                "authz.denied",
                service=self.service,
                reason=decision.reason,
                peer=caller,
                detail=detail,
            )
            await _forbid(scope, send, decision.reason)
            return
        if self.emit_allowed:
            self.emitter.allow(
                "authz.allowed",
                service=self.service,
                reason=decision.reason,
                peer=caller,
                detail=detail,
            )
        state = scope.setdefault("state", {})
        state["ramparts_caller"] = decision.caller
        await self.app(scope, receive, send)


async def _forbid(scope: MutableMapping[str, Any], send: Any, reason: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the upgrade with 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": "forbidden", "reason": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
