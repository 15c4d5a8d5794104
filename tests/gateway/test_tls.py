"""Client-facing TLS, and mTLS to services with the service's SPIFFE ID checked."""

from __future__ import annotations

import socket
import ssl

import pytest
import trustme
from cryptography import x509
from tests.gateway.conftest import Client, RecordingUpstream, topology_text

from ramparts.config import parse_topology
from ramparts.gateway import GatewayOptions
from ramparts.identity import CertificateAuthority, IdentitySource

TD = "test.local"


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.in_memory(TD)


def _mtls_upstream(ca: CertificateAuthority, name: str) -> RecordingUpstream:
    source = IdentitySource(ca.issue_svid(f"spiffe://{TD}/ns/test/sa/{name}"), ca.bundle())
    return RecordingUpstream(ssl_context=source.server_context())


def test_upstream_is_called_over_mtls_with_the_gateway_svid(ca, make_gateway):
    """The service sees the gateway's SVID; identity headers travel only over this channel."""
    up = _mtls_upstream(ca, "accounts")
    try:
        gateway_id = IdentitySource(
            ca.issue_svid(f"spiffe://{TD}/ns/ramparts/sa/gateway"), ca.bundle()
        )
        gw = make_gateway(topology_text(up.port), identity=gateway_id, options=GatewayOptions())
        c = Client(gw.port)
        status, _, body = c.request("GET", "/v1/accounts")
        assert status == 200, body
        cert = x509.load_der_x509_certificate(up.peer_certs[0])
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [u.value for u in uris] == [f"spiffe://{TD}/ns/ramparts/sa/gateway"]
    finally:
        up.close()


def test_upstream_with_the_wrong_spiffe_id_is_refused(ca, make_gateway):
    """A service presenting another workload's SVID gets no request: 502 and an event."""
    up = _mtls_upstream(ca, "ledger")  # listening where the topology puts accounts
    try:
        gateway_id = IdentitySource(
            ca.issue_svid(f"spiffe://{TD}/ns/ramparts/sa/gateway"), ca.bundle()
        )
        gw = make_gateway(topology_text(up.port), identity=gateway_id, options=GatewayOptions())
        c = Client(gw.port)
        status, _, _ = c.request("GET", "/v1/accounts")
        assert status == 502
        assert up.requests == []
        events = gw.sink.of_type("upstream.identity_mismatch")
        assert len(events) == 1
        assert "ledger" in events[0].detail["problem"]
    finally:
        up.close()


def test_plain_upstream_is_refused_unless_configured(upstream, upstream2):
    """Without an identity or plain_upstreams, the gateway will not start: fail closed."""
    from ramparts.gateway import Gateway

    gw = Gateway(
        parse_topology(topology_text(upstream.port, upstream2.port)), options=GatewayOptions()
    )
    with pytest.raises(ValueError, match="no mTLS context for service"):
        gw.build_state(gw._initial)


def test_identity_headers_not_sent_over_plain_by_default(upstream, upstream2, make_gateway):
    """The X-Ramparts-* identity headers go only over mTLS (or with identity_over_plain in dev)."""
    from tests.gateway.test_jwt_ratelimit import jwt_setup

    setup = jwt_setup()
    gw = make_gateway(
        setup.topology(upstream.port, upstream2.port),
        options=GatewayOptions(plain_upstreams=True, identity_over_plain=False),
    )
    c = Client(gw.port)
    status, _, _ = c.request("GET", "/v1/accounts", [("Authorization", f"Bearer {setup.token()}")])
    assert status == 200
    assert not any(n.startswith("x-ramparts-") for n in upstream.last().names())


def test_client_facing_tls(upstream, upstream2, make_gateway, tmp_path):
    """tls_cert/tls_key from the topology serve HTTPS; X-Forwarded-Proto says https."""
    authority = trustme.CA()
    cert = authority.issue_cert("gw.test")
    cert_path, key_path = tmp_path / "gw.pem", tmp_path / "gw.key"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    text = topology_text(upstream.port, upstream2.port).replace(
        "  plain_http: true", f"  tls_cert: {cert_path}\n  tls_key: {key_path}"
    )
    gw = make_gateway(text)
    ctx = ssl.create_default_context()
    authority.configure_trust(ctx)
    with (
        socket.create_connection(("127.0.0.1", gw.port)) as raw,
        ctx.wrap_socket(raw, server_hostname="gw.test") as s,
    ):
        s.sendall(b"GET /v1/accounts HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert upstream.last().header("x-forwarded-proto") == "https"


def test_tls_required_unless_plain_http(upstream, upstream2, make_gateway):
    text = topology_text(upstream.port, upstream2.port).replace("  plain_http: true\n", "")
    with pytest.raises(ValueError, match="tls_cert and tls_key"):
        make_gateway(text)
