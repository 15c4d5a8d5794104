"""The broker behind the production mTLS server (``ramparts.identity``), as ``serve`` runs it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ramparts import identity
from ramparts.events import EventEmitter, MemorySink
from ramparts.secrets import Broker, create_app
from ramparts.secrets.client import SecretsClient, SecretsClientError

from .conftest import PGState, make_topology, sid

pytestmark = pytest.mark.services  # real PostgreSQL behind every broker


def test_broker_served_by_identity_server(pg_state: PGState, tmp_path: Path) -> None:
    ca = identity.CertificateAuthority.in_memory("test.local")
    bundle = ca.bundle()
    server_src = identity.IdentitySource(ca.issue_svid(sid("secrets", "ramparts")), bundle)
    a_src = identity.IdentitySource(ca.issue_svid(sid("svc-a")), bundle)
    b_src = identity.IdentitySource(ca.issue_svid(sid("svc-b")), bundle)
    sink = MemorySink()
    emitter = EventEmitter([sink], service="secrets")
    broker = Broker(
        tmp_path / "s.db",
        make_topology(pg_state.databases),
        emitter=emitter,
        role_prefix=pg_state.prefix,
    )
    key = tmp_path / "k"
    root = broker.initialize_key_file(key)
    broker.unseal_key_file(key)
    server = identity.build_mtls_server(create_app(broker), source=server_src, emitter=emitter)
    with identity.ServerThread(server) as port:
        url = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=url, verify=a_src.client_context()) as op:
            r = op.post(
                "/v1/secret/data/svc-a/cfg",
                json={"data": {"dsn_password": "pw-1"}},
                headers={"X-Vault-Token": root},
            )
            assert r.status_code == 200, r.text
        a = SecretsClient(url, ssl_context=a_src.client_context())
        b = SecretsClient(url, ssl_context=b_src.client_context())
        try:
            assert a.read_kv("svc-a/cfg")["dsn_password"].reveal() == "pw-1"
            with pytest.raises(SecretsClientError) as err:
                b.read_kv("svc-a/cfg")
            assert err.value.status == 403
        finally:
            a.close()
            b.close()
    logins = [
        e for e in sink.of_type("secrets.request") if e.detail.get("path") == "auth/cert/login"
    ]
    assert {e.peer for e in logins} == {sid("svc-a"), sid("svc-b")}
