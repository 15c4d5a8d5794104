"""Every way a caller or a server can fail mTLS, on real sockets, each with its event.

Handshake failures become ``mtls.rejected`` (emitted by the server's handshake
hook); a verified caller without an edge gets 403 and ``authz.denied``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl

import httpx
import pytest
import uvloop
from cryptography.hazmat.primitives import serialization
from tests.identity._helpers import client_ctx, raw_get, wait_for_event, whoami_app

from ramparts.events import EventEmitter, MemorySink, Outcome
from ramparts.identity import (
    X509SVID,
    AuthorizationMiddleware,
    CertificateAuthority,
    IdentitySource,
    PeerIdentityError,
    attest_local,
    build_mtls_server,
    serve_mtls,
    service_client,
    service_client_sync,
)
from ramparts.identity._svid import build_svid_certificate, new_private_key, utcnow

LEDGER = "ledger"


def _pems(svid: X509SVID) -> tuple[bytes, bytes]:
    return svid.cert_chain_pem(), svid.private_key_pem()


def _assert_rejected(port: int, ctx: ssl.SSLContext) -> None:
    """The server must not answer: the handshake fails or the connection closes unread."""
    try:
        response = raw_get(port, ctx)
    except (ssl.SSLError, ConnectionError, OSError):
        return
    assert response == b"", f"server answered a rejected client: {response[:80]!r}"


class TestAccepted:
    def test_allowed_caller_gets_200_with_verified_identity_and_tls_extension(
        self, serve, source_for, topo, sink
    ) -> None:
        """payments may POST /v1/postings on ledger: 200, and the app sees payments' SPIFFE ID."""
        ledger, payments = source_for(LEDGER), source_for("payments")
        port = serve(ledger, LEDGER)
        with service_client_sync(payments, ledger.spiffe_id, f"https://127.0.0.1:{port}") as c:
            r = c.post("/v1/postings")
        assert r.status_code == 200
        body = r.json()
        assert body["peer"] == topo.spiffe_id("payments")
        assert body["caller"] == "payments"
        assert body["tls_version"] == 0x0304
        assert body["cipher_suite"] in (0x1301, 0x1302, 0x1303)
        assert body["chain_len"] == 1
        assert sink.of_type("authz.allowed")[0].peer == topo.spiffe_id("payments")
        assert not sink.of_type("mtls.rejected")

    def test_connection_is_reused_across_calls(self, serve, source_for) -> None:
        """Keep-alive: many calls, one handshake (one peer check)."""
        ledger, payments = source_for(LEDGER), source_for("payments")
        port = serve(ledger, LEDGER, authorize=False)
        sock_ids = set()

        async def calls() -> None:
            async with service_client(payments, ledger.spiffe_id, f"https://127.0.0.1:{port}") as c:
                for _ in range(5):
                    r = await c.get("/x", extensions={})
                    assert r.status_code == 200
                    sock_ids.add(id(r.extensions["network_stream"]))

        asyncio.run(calls())
        assert len(sock_ids) == 1


class TestRejectedAtHandshake:
    def test_no_client_certificate(self, serve, source_for, ca, sink) -> None:
        port = serve(source_for(LEDGER), LEDGER)
        _assert_rejected(port, client_ctx(None, None, ca.bundle().pem()))
        event = wait_for_event(sink, "mtls.rejected")
        assert event.outcome is Outcome.DENY
        assert event.reason == "no client certificate"
        assert event.service == LEDGER

    def test_certificate_from_a_foreign_ca(self, serve, source_for, ca, topo, sink) -> None:
        """Same trust domain, same SPIFFE ID, but signed by a CA we do not trust."""
        foreign = CertificateAuthority.in_memory(topo.trust_domain)
        impostor = foreign.issue_svid(topo.spiffe_id("payments"))
        port = serve(source_for(LEDGER), LEDGER)
        _assert_rejected(port, client_ctx(*_pems(impostor), ca.bundle().pem()))
        event = wait_for_event(sink, "mtls.rejected")
        assert "unable to get local issuer certificate" in event.reason
        assert not sink.of_type("authz.allowed")

    def test_expired_certificate(self, serve, source_for, ca, topo, sink) -> None:
        key = new_private_key()
        chain = ca.issue_at_time(
            topo.spiffe_id("payments"), key.public_key(), utcnow() - dt.timedelta(hours=2)
        )
        expired = X509SVID.from_parts(chain, key)
        assert expired.not_after < utcnow()
        port = serve(source_for(LEDGER), LEDGER)
        _assert_rejected(port, client_ctx(*_pems(expired), ca.bundle().pem()))
        assert "certificate has expired" in wait_for_event(sink, "mtls.rejected").reason

    def test_not_yet_valid_beyond_the_skew(self, serve, source_for, ca, topo, sink) -> None:
        """Issued 10 minutes in the future: notBefore = now + 8 min, past the 2-minute backdate."""
        key = new_private_key()
        chain = ca.issue_at_time(
            topo.spiffe_id("payments"), key.public_key(), utcnow() + dt.timedelta(minutes=10)
        )
        early = X509SVID.from_parts(chain, key)
        port = serve(source_for(LEDGER), LEDGER)
        _assert_rejected(port, client_ctx(*_pems(early), ca.bundle().pem()))
        assert "certificate is not yet valid" in wait_for_event(sink, "mtls.rejected").reason

    def test_tls12_client(self, serve, source_for, ca, sink) -> None:
        payments = source_for("payments")
        port = serve(source_for(LEDGER), LEDGER)
        ctx = client_ctx(*_pems(payments.svid), ca.bundle().pem(), tls12=True)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            raw_get(port, ctx)
        assert "TLS 1.3 only" in wait_for_event(sink, "mtls.rejected").reason

    def test_silent_client_times_out(self, serve, source_for, sink) -> None:
        """A TCP connection that never says hello is dropped after the handshake timeout."""
        port = serve(source_for(LEDGER), LEDGER, handshake_timeout=0.3)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as s,
            contextlib.suppress(ConnectionResetError),  # a reset is a close too
        ):
            assert s.recv(1) == b""  # the server closed it
        assert wait_for_event(sink, "mtls.rejected").reason == "TLS handshake timed out"

    def test_chain_valid_but_leaf_is_not_an_svid(self, serve, source_for, ca, sink) -> None:
        """Our CA signed a leaf in another trust domain: TLS accepts, the SPIFFE check refuses."""
        key = new_private_key()
        now = utcnow()
        active = ca.active
        cert = build_svid_certificate(
            spiffe_id="spiffe://evil.example/ns/refbank/sa/payments",
            public_key=key.public_key(),
            issuer_cert=active.cert,
            issuer_key=active.key,
            not_before=now - dt.timedelta(minutes=1),
            not_after=now + dt.timedelta(minutes=5),
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        port = serve(source_for(LEDGER), LEDGER)
        _assert_rejected(port, client_ctx(pem, key_pem, ca.bundle().pem()))
        event = wait_for_event(sink, "mtls.rejected")
        assert "outside trust domain" in event.reason


class TestRejectedByAuthorization:
    def test_valid_svid_of_a_service_not_allowed_to_call(
        self, serve, source_for, topo, sink
    ) -> None:
        """statements holds a valid SVID but has no edge to payments: 403 + authz.denied."""
        payments, statements = source_for("payments"), source_for("statements")
        port = serve(payments, "payments")
        with service_client_sync(statements, payments.spiffe_id, f"https://127.0.0.1:{port}") as c:
            r = c.get("/v1/transfers")
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "forbidden"
        event = wait_for_event(sink, "authz.denied")
        assert event.peer == topo.spiffe_id("statements")
        assert "no edge" in event.reason
        assert not sink.of_type("mtls.rejected")

    def test_allowed_caller_outside_its_path_rules(self, serve, source_for, sink) -> None:
        """payments may only POST /v1/postings on ledger; a GET elsewhere is denied."""
        ledger, payments = source_for(LEDGER), source_for("payments")
        port = serve(ledger, LEDGER)
        with service_client_sync(payments, ledger.spiffe_id, f"https://127.0.0.1:{port}") as c:
            assert c.get("/v1/accounts/1/balance").status_code == 403
            assert c.post("/v1/postings").status_code == 200
        assert "may not GET /v1/accounts/1/balance" in wait_for_event(sink, "authz.denied").reason

    def test_identity_header_is_ignored(self, serve, source_for, topo, sink) -> None:
        """A caller claiming another identity in a header is judged by its certificate."""
        payments, statements = source_for("payments"), source_for("statements")
        port = serve(payments, "payments")
        with service_client_sync(statements, payments.spiffe_id, f"https://127.0.0.1:{port}") as c:
            r = c.get(
                "/v1/transfers",
                headers={"x-spiffe-id": topo.spiffe_id("gateway"), "x-forwarded-for": "127.0.0.1"},
            )
        assert r.status_code == 403
        assert wait_for_event(sink, "authz.denied").peer == topo.spiffe_id("statements")


class TestServerImpersonation:
    def test_client_refuses_a_server_with_another_services_valid_svid(
        self, serve, source_for, topo
    ) -> None:
        """accounts answers where payments expects ledger: refused before any request byte."""
        impostor = source_for("accounts")
        received: list[bytes] = []

        async def recording_app(scope, receive, send) -> None:
            received.append((await receive()).get("body", b""))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        port = serve(impostor, "accounts", authorize=False, app=recording_app)
        payments = source_for("payments")
        client_events = MemorySink()
        emitter = EventEmitter([client_events], service="payments")

        async def call() -> None:
            async with service_client(
                payments, topo.spiffe_id(LEDGER), f"https://127.0.0.1:{port}", emitter=emitter
            ) as c:
                await c.post("/v1/postings", content=b"secret posting")

        with pytest.raises(
            PeerIdentityError, match=r"expected spiffe://refbank\.local/ns/refbank/sa/ledger"
        ):
            asyncio.run(call())
        event = client_events.of_type("mtls.rejected")[0]
        assert event.service == "payments"
        assert "peer is spiffe://refbank.local/ns/refbank/sa/accounts" in event.reason
        assert received == []  # not a byte of the request reached the impostor

    def test_sync_client_refuses_too(self, serve, source_for, topo) -> None:
        port = serve(source_for("accounts"), "accounts", authorize=False)
        with (
            service_client_sync(
                source_for("payments"), topo.spiffe_id(LEDGER), f"https://127.0.0.1:{port}"
            ) as c,
            pytest.raises(PeerIdentityError),
        ):
            c.get("/")

    def test_client_refuses_a_server_from_a_foreign_ca(self, serve, topo, source_for) -> None:
        foreign = CertificateAuthority.in_memory(topo.trust_domain)
        fake_ledger = IdentitySource(foreign.issue_svid(topo.spiffe_id(LEDGER)), foreign.bundle())
        port = serve(fake_ledger, LEDGER, authorize=False)
        with (
            service_client_sync(
                source_for("payments"), topo.spiffe_id(LEDGER), f"https://127.0.0.1:{port}"
            ) as c,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            c.get("/")

    def test_plain_http_base_url_is_refused(self, source_for, topo) -> None:
        with pytest.raises(ValueError, match="https"):
            service_client_sync(
                source_for("payments"), topo.spiffe_id(LEDGER), "http://127.0.0.1:1"
            )


class TestServeMTLS:
    def test_one_call_serving_from_an_attested_directory(
        self, tmp_path, ca, topo, source_for
    ) -> None:
        """attest_local, IdentitySource.from_dir, serve_mtls: how `ramparts up` runs a service."""
        paths = attest_local(ca, topo, tmp_path, services=[LEDGER])
        ledger = IdentitySource.from_dir(paths[LEDGER])
        sink = MemorySink()
        emitter = EventEmitter([sink], service=LEDGER)
        app = AuthorizationMiddleware(whoami_app(), topology=topo, service=LEDGER, emitter=emitter)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

        async def main() -> dict:
            server = asyncio.create_task(
                serve_mtls(
                    app, "127.0.0.1", port, ledger, emitter=emitter, sockets=[sock], lifespan="off"
                )
            )
            try:
                async with service_client(
                    source_for("payments"), ledger.spiffe_id, f"https://127.0.0.1:{port}"
                ) as c:
                    for _ in range(100):  # bounded wait for the listener
                        try:
                            r = await c.post("/v1/postings")
                            break
                        except httpx.ConnectError:
                            await asyncio.sleep(0.05)
                    return r.json()
            finally:
                server.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await server

        body = asyncio.run(main())
        sock.close()
        assert body["peer"] == topo.spiffe_id("payments")
        assert sink.of_type("authz.allowed")

    def test_uvloop_is_refused(self, source_for) -> None:
        src = source_for(LEDGER)
        with pytest.raises(ValueError, match="loop='asyncio'"):
            build_mtls_server(lambda *a: None, source=src, emitter=EventEmitter(), loop="uvloop")
        with pytest.raises(RuntimeError, match="uvloop"):
            uvloop.run(serve_mtls(lambda *a: None, "127.0.0.1", 0, src, emitter=EventEmitter()))
