"""The Vault-compatible HTTP API (a subset), as a Starlette app.

Shapes follow Vault's API docs so that ``hvac`` works unchanged: every JSON
reply is ``{request_id, lease_id, renewable, lease_duration, data, wrap_info,
warnings, auth}``; errors are ``{"errors": [...]}``; a missing or bad token is
403, a sealed store 503; PUT and POST are the same; ``LIST`` and
``GET ?list=true`` are the same.

Request path, in order, each step failing closed:

1. the caller's SPIFFE ID from the verified TLS chain (no chain: 403);
2. route and operation (404 / 405);
3. sealed? (503, except health, seal-status, init and unseal; init is refused
   to workload SVIDs, since it hands out the root token);
4. token (``X-Vault-Token``), bound to the caller's SVID; or cert login;
5. policy derived from the topology (:mod:`._policy`);
6. one audit event for the decision, before anything happens — if it cannot
   be written the request fails; then the handler; then a response event with
   the returned values HMAC'd.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ramparts.events import Outcome
from ramparts.secrets._broker import Broker
from ramparts.secrets._errors import (
    AuditFailure,
    InvalidRequest,
    PermissionDenied,
    SecretsError,
)
from ramparts.secrets._peer import peer_spiffe_id
from ramparts.secrets._policy import check as check_policy
from ramparts.secrets._routes import Call, Endpoint, Handler, Reply, match, operation_of

log = logging.getLogger("ramparts.secrets")
MAX_BODY_BYTES = 1 << 20
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "LIST"]


# -- the ASGI app ------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [message] if message else []}, status_code=status)


async def _read_body(request: Request) -> dict[str, Any]:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidRequest(f"request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("failed to parse JSON input: body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("failed to parse JSON input: body must be a JSON object")
    return body


def _token(request: Request) -> str | None:
    token = request.headers.get("x-vault-token")
    if token:
        return token
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


class SecretsAPI:
    """Holds the broker and serves one request at a time through :meth:`handle`."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def handle(self, request: Request) -> Response:
        path = request.path_params["path"]
        method = request.method.upper()
        query = dict(request.query_params)
        peer = peer_spiffe_id(request.scope)
        base = {"method": method, "path": path}
        try:
            if peer is None:
                self._deny(None, base, "no verified client certificate")
                return _error(403, "permission denied")
            trimmed = path[:-1] if path.endswith("/") else path  # LIST folders end in '/'
            if any(seg in ("", ".", "..") for seg in trimmed.split("/")):
                self._deny(peer, base, "path has an empty or dot segment")
                return _error(400, f"invalid request path {path!r}")
            path = trimmed
            found = match(path)
            if found is None:
                self._deny(peer, base, "no handler for route")
                return _error(404, f'no handler for route "{path}". route entry not found.')
            ep, params = found
            op = operation_of(method, query)
            handler = ep.handlers.get(op)
            if handler is None:
                self._deny(peer, base, f"unsupported operation {op}")
                return _error(405, "unsupported operation")
            if not ep.works_sealed and self.broker.sealed:
                self._deny(peer, base, "sealed")
                return _error(503, "Vault is sealed")
            body = await _read_body(request)
            call = Call(self.broker, peer, path, op, params, query, body)
            call.token = _token(request) if ep.auth == "token" else None
            # Token lookup, policy, audit and the handler all touch storage: one worker
            # thread runs them, so the event loop never waits on SQLite or PostgreSQL.
            reply = await anyio.to_thread.run_sync(self._decide_and_run, call, ep, handler, base)
        except AuditFailure as exc:
            log.error("audit sink failed: %s", exc.__cause__.__class__.__name__)
            return _error(500, str(exc))
        except SecretsError as exc:
            self._record_failure(peer, base, exc)
            return _error(exc.status, str(exc))
        except Exception:
            log.exception("internal error on %s %s", method, path)
            return _error(500, "internal error")
        body_out = reply.body()
        if body_out is None:
            return Response(status_code=reply.status)
        return JSONResponse(body_out, status_code=reply.status)

    def _decide_and_run(
        self, call: Call, ep: Endpoint, handler: Handler, base: dict[str, Any]
    ) -> Reply:
        """Authenticate, authorise, audit the decision, run the handler, audit the result."""
        audit, peer, op = self.broker.auditor, call.peer, call.operation
        detail = {**base, "operation": op}
        if ep.auth == "token":
            try:
                call.entry = self.broker.tokens.lookup(call.token, peer)
                lease_id = _str_or_none(call.body.get("lease_id"))
                check_policy(call.entry, op, call.path, lease_id=lease_id)
            except PermissionDenied as exc:
                self._deny(peer, detail, str(exc))
                return Reply(status=403, raw={"errors": ["permission denied"]})
            detail["accessor"] = audit.hash_value(call.entry.accessor)
            detail["service"] = call.entry.service
        if ep.auth == "login" and not self._is_workload(peer):
            self._deny(peer, detail, "identity is not a workload in the topology")
            return Reply(status=403, raw={"errors": ["permission denied"]})
        if ep.auth == "operator" and self._is_workload(peer):
            self._deny(peer, detail, "workloads may not initialise the secrets store")
            return Reply(status=403, raw={"errors": ["permission denied"]})
        if not ep.works_sealed:
            detail["request"] = audit.hash_tree(call.body)
        # unseal keys (auth "none" bodies) are never recorded, not even hashed
        audit.record("secrets.request", Outcome.ALLOW, reason=op, peer=peer, detail=detail)
        reply = handler(call)
        try:
            self._record_response(peer, detail, reply)
        except AuditFailure:
            self._withdraw(reply)
            raise
        return reply

    def _withdraw(self, reply: Reply) -> None:
        """Take back credentials whose issuance could not be audited: nobody gets them."""
        try:
            if reply.lease_id:
                self.broker.leases.revoke(reply.lease_id)
            token = (reply.auth or {}).get("client_token")
            if token:
                entry = self.broker.tokens.lookup(
                    token, (reply.auth or {})["metadata"]["spiffe_id"]
                )
                self.broker.tokens.revoke(token, entry)
        except Exception:
            log.exception("could not withdraw credentials after an audit failure")

    def _is_workload(self, peer: str) -> bool:
        topo = self.broker.topology
        name = topo.name_for(peer)
        return name is not None and name in topo.services

    def _deny(self, peer: str | None, detail: dict[str, Any], reason: str) -> None:
        self.broker.auditor.record(
            "secrets.request", Outcome.DENY, reason=reason, peer=peer, detail=detail
        )

    def _record_response(self, peer: str, detail: dict[str, Any], reply: Reply) -> None:
        audit = self.broker.auditor
        out = {**detail, "status": reply.status, **reply.audit_extra}
        out.pop("request", None)
        if reply.lease_id:
            out["lease_id"] = reply.lease_id
        if reply.data is not None and reply.raw is None:
            out["response"] = audit.hash_tree(reply.data)
        if reply.auth is not None:
            out["auth"] = audit.hash_tree(
                {k: reply.auth[k] for k in ("client_token", "accessor") if k in reply.auth}
            )
            out["policies"] = reply.auth.get("policies")
        audit.record("secrets.response", Outcome.ALLOW, reason="ok", peer=peer, detail=out)

    def _record_failure(self, peer: str | None, base: dict[str, Any], exc: SecretsError) -> None:
        try:
            self.broker.auditor.record(
                "secrets.response",
                Outcome.ALLOW,
                reason=f"error {exc.status}",
                peer=peer,
                detail={**base, "status": exc.status},
            )
        except AuditFailure:
            log.error("audit sink failed while recording an error response")


def _str_or_none(v: object) -> str | None:
    return v if isinstance(v, str) else None


def create_app(broker: Broker, *, manage_broker: bool = True) -> Starlette:
    """The ASGI app. With ``manage_broker`` the app starts and closes the broker's reaper."""
    api = SecretsAPI(broker)

    async def not_found(request: Request) -> Response:
        return _error(404, "no handler for route")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_broker:
            broker.start()
        yield
        if manage_broker:
            await anyio.to_thread.run_sync(broker.close)

    return Starlette(
        routes=[
            Route("/v1/{path:path}", api.handle, methods=METHODS),
            Route("/{path:path}", not_found, methods=METHODS),
        ],
        lifespan=lifespan,
    )
