"""AuthorizationMiddleware and peer_spiffe_id as plain ASGI, without a server.

Together with test_mtls_handshake.py (the same checks over real sockets) this
pins the contract: the caller is read only from the TLS extension.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from ramparts.events import EventEmitter, MemorySink
from ramparts.identity import AuthorizationMiddleware, CertificateAuthority, peer_spiffe_id


@pytest.fixture(scope="module")
def pems(topo) -> dict[str, str]:
    ca = CertificateAuthority.in_memory(topo.trust_domain)
    return {
        n: ca.issue_svid(topo.spiffe_id(n)).leaf.public_bytes(serialization.Encoding.PEM).decode()
        for n in ("payments", "statements", "gateway")
    }


def _scope(
    chain: list[str] | None, method: str = "GET", path: str = "/", **extra: Any
) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": [], **extra}
    if chain is not None:
        scope["extensions"] = {"tls": {"client_cert_chain": chain, "tls_version": 0x0304}}
    return scope


def _call(app: Any, scope: dict[str, Any]) -> tuple[int, dict[str, Any] | None, list[Any]]:
    sent: list[Any] = []
    reached: list[Any] = []

    async def inner(scope, receive, send) -> None:
        reached.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message) -> None:
        sent.append(message)

    asyncio.run(app(inner)(scope, receive, send))
    status = sent[0]["status"]
    body = json.loads(sent[1]["body"]) if status == 403 else None
    return status, body, reached


@pytest.fixture
def make(topo):
    sink = MemorySink()

    def factory(service: str) -> Any:
        def build(inner: Any) -> AuthorizationMiddleware:
            return AuthorizationMiddleware(
                inner, topology=topo, service=service, emitter=EventEmitter([sink], service=service)
            )

        return build

    factory.sink = sink  # type: ignore[attr-defined]
    return factory


class TestDecisions:
    @pytest.mark.parametrize(
        ("callee", "caller", "method", "path", "status"),
        [
            ("ledger", "payments", "POST", "/v1/postings", 200),
            ("ledger", "payments", "GET", "/v1/postings", 403),  # method outside the rule
            ("ledger", "statements", "GET", "/v1/accounts/7/balance", 200),
            ("ledger", "statements", "GET", "/v1/accounts/7/../../admin", 403),  # dot segments
            ("payments", "statements", "GET", "/v1/transfers", 403),  # no edge
            ("payments", "gateway", "POST", "/v1/transfers", 200),  # gateway route
            ("accounts", "payments", "GET", "/v1/accounts/1", 200),
        ],
    )
    def test_table(self, make, pems, callee, caller, method, path, status) -> None:  # noqa: PLR0917
        got, _, reached = _call(make(callee), _scope([pems[caller]], method, path))
        assert got == status
        assert bool(reached) == (status == 200)

    def test_allowed_request_carries_the_caller_name(self, make, pems) -> None:
        _, _, reached = _call(make("ledger"), _scope([pems["payments"]], "POST", "/v1/postings"))
        assert reached[0]["state"]["ramparts_caller"] == "payments"

    def test_no_tls_extension_is_denied(self, make) -> None:
        status, body, _ = _call(make("ledger"), _scope(None))
        assert status == 403
        assert body == {"error": "forbidden", "reason": "no verified caller identity"}
        event = make.sink.of_type("authz.denied")[0]
        assert event.peer is None

    def test_headers_claiming_an_identity_are_ignored(self, make, topo) -> None:
        scope = _scope(None, "POST", "/v1/postings")
        scope["headers"] = [(b"x-spiffe-id", topo.spiffe_id("payments").encode())]
        scope["client"] = ("127.0.0.1", 1234)
        assert _call(make("ledger"), scope)[0] == 403

    def test_one_event_per_decision(self, make, pems) -> None:
        _call(make("payments"), _scope([pems["statements"]], "GET", "/x"))
        _call(make("ledger"), _scope([pems["payments"]], "POST", "/v1/postings"))
        assert [e.type for e in make.sink.events] == ["authz.denied", "authz.allowed"]
        denied = make.sink.events[0]
        assert denied.detail == {"method": "GET", "path": "/x", "caller": "statements"}

    def test_lifespan_passes_through(self, make) -> None:
        seen: list[str] = []

        async def inner(scope, receive, send) -> None:
            seen.append(scope["type"])

        asyncio.run(make("ledger")(inner)({"type": "lifespan"}, None, None))
        assert seen == ["lifespan"]

    def test_websocket_is_closed_before_accept(self, make) -> None:
        sent: list[Any] = []

        async def send(m) -> None:
            sent.append(m)

        async def inner(scope, receive, send) -> None:  # pragma: no cover - must not run
            raise AssertionError("reached the app")

        asyncio.run(make("ledger")(inner)({"type": "websocket", "path": "/"}, None, send))
        assert sent == [{"type": "websocket.close", "code": 1008}]

    def test_unknown_service_is_refused_at_construction(self, topo) -> None:
        with pytest.raises(ValueError, match="not in the topology"):
            AuthorizationMiddleware(
                lambda *a: None, topology=topo, service="nope", emitter=EventEmitter()
            )


class TestPeerSpiffeId:
    def test_reads_the_leaf(self, pems, topo) -> None:
        assert peer_spiffe_id(_scope([pems["payments"]])) == topo.spiffe_id("payments")

    @pytest.mark.parametrize(
        "scope",
        [
            {"type": "http"},
            {"type": "http", "extensions": {}},
            {"type": "http", "extensions": {"tls": {}}},
            {"type": "http", "extensions": {"tls": {"client_cert_chain": []}}},
            {"type": "http", "extensions": {"tls": {"client_cert_chain": ["garbage"]}}},
            {"type": "http", "extensions": {"tls": {"client_cert_chain": [b"bytes"]}}},
            {"type": "http", "extensions": "nonsense"},
        ],
    )
    def test_none_when_there_is_no_usable_certificate(self, scope) -> None:
        assert peer_spiffe_id(scope) is None
