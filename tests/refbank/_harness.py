"""Run a refbank service in-process against a real PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class AsCaller:
    """Stands in for the mTLS authorisation middleware: records a verified caller name.

    The real middleware (ramparts.identity) sets the same state after checking the
    peer certificate; these tests exercise the service logic behind it.
    """

    def __init__(self, app: ASGIApp, caller: str) -> None:
        self.app, self.caller = app, caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["ramparts_caller"] = self.caller
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def running(app: FastAPI, caller: str = "payments") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=AsCaller(app, caller))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            yield client


class LocalServices:
    """Routes calls between in-process services, authorised by the topology.

    The SDK does this over mTLS with identities from certificates; here the
    caller's name is fixed per instance, and the same topology decision applies.
    """

    def __init__(self, topology, apps: dict[str, FastAPI], me: str) -> None:  # type: ignore[no-untyped-def]
        self.topology, self.apps, self.me = topology, apps, me
        self.denied: list[tuple[str, str, str]] = []

    def as_(self, me: str) -> LocalServices:
        return LocalServices(self.topology, self.apps, me)

    async def call(self, service, method, path, *, json=None, params=None):  # type: ignore[no-untyped-def]
        decision = self.topology.authorize(service, self.topology.spiffe_id(self.me), method, path)
        if not decision.allowed:
            self.denied.append((self.me, service, path))
            return httpx.Response(403, json={"detail": decision.reason})
        transport = httpx.ASGITransport(app=AsCaller(self.apps[service], self.me))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
            return await client.request(method, path, json=json, params=params)
