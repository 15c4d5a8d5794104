"""Renewal through the CA's mTLS API, rotation under load, and a stranded workload."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tests.identity._helpers import wait_for_event

from ramparts.events import EventEmitter, MemorySink
from ramparts.identity import (
    CAService,
    CertificateAuthority,
    IdentityExpiredError,
    IdentitySource,
    ServerThread,
    SVIDRotator,
    service_client,
    service_client_sync,
)
from ramparts.identity._svid import new_private_key


@pytest.fixture
def ca_service(topo, sink):
    """A fresh CA (short SVIDs) serving its API over mTLS on 127.0.0.1."""
    ca = CertificateAuthority.in_memory(
        topo.trust_domain, svid_ttl=dt.timedelta(seconds=4), refresh_hint=1
    )
    service = CAService(ca, emitter=EventEmitter([sink], service="ca"), topology=topo)
    thread = ServerThread(service.server())
    port = thread.start()
    yield service, f"https://127.0.0.1:{port}"
    thread.stop()


def _csr_pem(spiffe_id: str | None) -> bytes:
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if spiffe_id:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=False
        )
    return b.sign(new_private_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class TestCAAPI:
    def test_renewal_signs_the_presented_identity(self, ca_service, topo, sink) -> None:
        service, url = ca_service
        ca = service.ca
        src = IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle())
        first = src.svid
        rotator = SVIDRotator(src, url, emitter=EventEmitter([sink], service="ledger"))
        new = asyncio.run(rotator.renew_once())
        assert new.spiffe_id == topo.spiffe_id("ledger")
        assert new.leaf.serial_number != first.leaf.serial_number
        assert src.svid is new
        assert wait_for_event(sink, "svid.renewed").service == "ledger"

    def test_csr_for_another_identity_is_refused(self, ca_service, topo, sink) -> None:
        """The SPIFFE ID comes from the presented certificate; a CSR naming another is a 403."""
        service, url = ca_service
        ca = service.ca
        src = IdentitySource(ca.issue_svid(topo.spiffe_id("statements")), ca.bundle())
        with service_client_sync(src, service.spiffe_id, url) as c:
            r = c.post("/v1/svid", content=_csr_pem(topo.spiffe_id("ledger")))
        assert r.status_code == 403
        event = wait_for_event(sink, "ca.issue_refused")
        assert event.peer == topo.spiffe_id("statements")
        assert "may renew only its own identity" in event.reason

    def test_csr_without_san_gets_the_callers_identity(self, ca_service, topo) -> None:
        service, url = ca_service
        src = IdentitySource(service.ca.issue_svid(topo.spiffe_id("accounts")), service.ca.bundle())
        with service_client_sync(src, service.spiffe_id, url) as c:
            r = c.post("/v1/svid", content=_csr_pem(None))
        assert r.status_code == 200
        leaf = x509.load_pem_x509_certificates(r.json()["cert_chain"].encode())[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            topo.spiffe_id("accounts")
        ]

    def test_garbage_csr_is_a_400(self, ca_service, topo, sink) -> None:
        service, url = ca_service
        src = IdentitySource(service.ca.issue_svid(topo.spiffe_id("accounts")), service.ca.bundle())
        with service_client_sync(src, service.spiffe_id, url) as c:
            assert c.post("/v1/svid", content=b"hello").status_code == 400
        assert (
            "not a PEM certificate signing request"
            in wait_for_event(sink, "ca.issue_refused").reason
        )

    def test_identity_outside_the_topology_is_refused(self, ca_service, sink) -> None:
        service, url = ca_service
        stranger = "spiffe://refbank.local/ns/refbank/sa/mallory"
        src = IdentitySource(service.ca.issue_svid(stranger), service.ca.bundle())
        with service_client_sync(src, service.spiffe_id, url) as c:
            assert c.post("/v1/svid", content=_csr_pem(None)).status_code == 403
            assert c.get("/v1/bundle").status_code == 403
        assert wait_for_event(sink, "authz.denied").peer == stranger

    def test_bundle_endpoint(self, ca_service, topo) -> None:
        service, url = ca_service
        src = IdentitySource(service.ca.issue_svid(topo.spiffe_id("accounts")), service.ca.bundle())
        with service_client_sync(src, service.spiffe_id, url) as c:
            doc = c.get("/v1/bundle").json()
        assert doc["spiffe_sequence"] == service.ca.bundle().sequence
        assert all(k["use"] == "x509-svid" for k in doc["keys"])


def test_rotation_under_load_has_zero_failed_calls(ca_service, topo, serve) -> None:
    """payments calls ledger non-stop for ~8 s while both renew every ~2 s and the CA rotates once.

    Every call must succeed; at the end both SVIDs come from the new CA and the
    old CA has left the bundle after its last leaf expired.
    """
    service, url = ca_service
    ca = service.ca
    events = MemorySink()
    ledger = IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle())
    payments = IdentitySource(ca.issue_svid(topo.spiffe_id("payments")), ca.bundle())
    port = serve(ledger, "ledger")
    old_ca = ca.active
    results = {"ok": 0, "failed": []}
    stop = asyncio.Event()
    phases: list[str] = []

    server_certs: set[bytes] = set()

    def record(r) -> None:
        if r.status_code == 200:
            results["ok"] += 1
        else:
            results["failed"].append(r.status_code)

    async def load_reused() -> None:
        """One pooled connection, kept across every rotation (in-flight must not break)."""
        async with service_client(payments, ledger.spiffe_id, f"https://127.0.0.1:{port}") as c:
            while not stop.is_set():
                try:
                    record(await c.post("/v1/postings"))
                except Exception as exc:
                    results["failed"].append(repr(exc))
                await asyncio.sleep(0.005)

    async def load_fresh() -> None:
        """A new connection each time: every handshake uses whatever certificates are current."""
        while not stop.is_set():
            try:
                async with service_client(
                    payments, ledger.spiffe_id, f"https://127.0.0.1:{port}"
                ) as c:
                    r = await c.post("/v1/postings")
                    ssl_object = r.extensions["network_stream"].get_extra_info("ssl_object")
                    server_certs.add(ssl_object.getpeercert(True))
                    record(r)
            except Exception as exc:
                results["failed"].append(repr(exc))
            await asyncio.sleep(0.05)

    async def load() -> None:
        await asyncio.gather(load_reused(), load_fresh())

    async def wait_until(cond, what: str, timeout: float = 6.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def orchestrate() -> None:
        await asyncio.sleep(2.5)  # at least one leaf rotation on each side first
        ca.prepare_rotation()
        seq = ca.bundle().sequence
        phases.append("prepared")
        await wait_until(
            lambda: ledger.bundle.sequence >= seq and payments.bundle.sequence >= seq,
            "the next CA to reach both workloads",
        )
        ca.activate_next()
        phases.append("activated")
        new_subject = ca.active.cert.subject
        await wait_until(
            lambda: (
                ledger.svid.leaf.issuer == new_subject and payments.svid.leaf.issuer == new_subject
            ),
            "both workloads to hold SVIDs from the new CA",
        )
        phases.append("migrated")
        await wait_until(
            lambda: ca.prune() != [] or len(ca.bundle().authorities) == 1, "old CA pruned"
        )
        phases.append("pruned")
        await wait_until(
            lambda: len(ledger.bundle.authorities) == 1 and len(payments.bundle.authorities) == 1,
            "the pruned bundle to reach both workloads",
        )
        await asyncio.sleep(0.5)
        stop.set()

    async def main() -> None:
        rotators = [
            SVIDRotator(s, url, emitter=EventEmitter([events], service=n))
            for s, n in ((ledger, "ledger"), (payments, "payments"))
        ]
        tasks = [asyncio.create_task(r.run(stop)) for r in rotators]
        try:
            await asyncio.wait_for(asyncio.gather(load(), orchestrate()), timeout=20)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert all(r.renewals >= 2 for r in rotators), [r.renewals for r in rotators]

    asyncio.run(main())
    assert phases == ["prepared", "activated", "migrated", "pruned"]
    assert results["failed"] == []
    assert results["ok"] > 100
    assert len(server_certs) >= 3  # fresh handshakes saw the server's rotated leaves
    assert old_ca.cert not in ca.bundle().authorities
    assert not events.of_type("svid.renewal_failed")


def test_a_stranded_workload_says_what_expired_and_how_to_recover(topo) -> None:
    """CA down past the SVID lifetime: an exception with diagnostics and an svid.expired event."""
    ca = CertificateAuthority.in_memory(topo.trust_domain, svid_ttl=dt.timedelta(seconds=1))
    src = IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle())
    events = MemorySink()
    # A port that refuses connections: bind, never listen.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"
        rotator = SVIDRotator(src, dead, emitter=EventEmitter([events], service="ledger"))
        with pytest.raises(IdentityExpiredError) as info:
            asyncio.run(asyncio.wait_for(rotator.run(), timeout=10))
    err = info.value
    assert topo.spiffe_id("ledger") in str(err)
    assert "expired at" in str(err)
    assert dead in str(err)
    assert "ramparts ca issue" in err.diagnostics()
    assert "How to recover" in err.diagnostics()
    assert events.of_type("svid.renewal_failed")
    assert events.of_type("svid.expired")[0].detail["spiffe_id"] == topo.spiffe_id("ledger")


def test_source_refuses_an_svid_for_another_identity(source_for, topo) -> None:
    ledger = source_for("ledger")
    from ramparts.identity import IdentityError

    with pytest.raises(IdentityError, match="refusing to change identity"):
        ledger.update(svid=source_for("accounts").svid)


def test_source_ignores_an_older_bundle(topo) -> None:
    ca = CertificateAuthority.in_memory(topo.trust_domain)
    src = IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle())
    old = ca.bundle()
    ca.prepare_rotation()
    src.update(bundle=ca.bundle())
    src.update(bundle=old)
    assert src.bundle.sequence == ca.bundle().sequence


def test_new_connections_get_the_new_context_old_ones_keep_theirs(source_for, topo) -> None:
    src = source_for("ledger")
    before = src.server_context()
    assert src.server_context() is before
    threading.Thread(target=lambda: src.update(bundle=src.bundle)).start()
    deadline = time.monotonic() + 5
    while src.server_context() is before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.server_context() is not before
