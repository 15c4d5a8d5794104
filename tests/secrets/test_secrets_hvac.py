"""The unmodified hvac client against the broker: the API is Vault-compatible where we claim."""

from __future__ import annotations

from pathlib import Path

import hvac
import hvac.exceptions
import psycopg
import pytest

from ramparts.events import EventEmitter, MemorySink
from ramparts.secrets import Broker, create_app

from ._mtls import MTLSServer
from .conftest import PKI, BrokerEnv, configure_database, make_topology

pytestmark = pytest.mark.services  # real PostgreSQL behind every broker


def _hvac(env: BrokerEnv, who: str, token: str | None = None) -> hvac.Client:
    leaf = env.pki.leaves[who]
    return hvac.Client(url=env.url, token=token, cert=leaf.pair, verify=str(env.pki.ca_cert))


def test_hvac_cert_login_kv_and_database_leases(broker_env: BrokerEnv) -> None:
    broker_env.pg.create_databases()
    root = _hvac(broker_env, "operator", broker_env.root_token)
    assert root.is_authenticated()
    root.secrets.kv.v2.create_or_update_secret(path="svc-a/api", secret={"key": "one"})
    root.secrets.kv.v2.create_or_update_secret(path="svc-a/api", secret={"key": "two"}, cas=1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.kv.v2.create_or_update_secret(path="svc-a/api", secret={"k": "x"}, cas=1)
    root.secrets.database.configure(
        name="pg",
        plugin_name="postgresql-database-plugin",
        connection_url=broker_env.pg.admin_dsn,
        allowed_roles=["svc-a"],
    )
    root.secrets.database.create_role(
        name="svc-a", db_name="pg", creation_statements=[], default_ttl="30m", max_ttl="2h"
    )

    client = _hvac(broker_env, "svc-a")
    leaf = broker_env.pki.leaves["svc-a"]
    login = client.auth.cert.login(cert_pem=str(leaf.cert), key_pem=str(leaf.key))
    assert login["auth"]["policies"] == ["default", "service-svc-a"]
    assert client.is_authenticated()
    assert client.auth.token.lookup_self()["data"]["meta"]["service"] == "svc-a"

    secret = client.secrets.kv.v2.read_secret_version(
        path="svc-a/api", raise_on_deleted_version=True
    )
    assert secret["data"]["data"] == {"key": "two"}
    assert secret["data"]["metadata"]["version"] == 2
    assert client.secrets.kv.v2.list_secrets(path="svc-a")["data"]["keys"] == ["api"]
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_version(path="svc-b/x", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v2.read_secret_version(path="svc-a/none", raise_on_deleted_version=True)

    creds = client.secrets.database.generate_credentials(name="svc-a")
    assert creds["lease_duration"] == 1800
    user, password = creds["data"]["username"], creds["data"]["password"]
    with psycopg.connect(broker_env.pg.dsn(broker_env.pg.databases["svc-a"], user, password)) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)

    renewed = client.sys.renew_lease(lease_id=creds["lease_id"], increment=3600)
    assert renewed["lease_id"] == creds["lease_id"] and renewed["lease_duration"] == 3600
    assert client.sys.read_lease(lease_id=creds["lease_id"])["data"]["ttl"] > 3500
    client.sys.revoke_lease(lease_id=creds["lease_id"])
    assert broker_env.pg.login_roles() == []

    client.auth.token.renew_self()
    client.auth.token.revoke_self()
    assert not client.is_authenticated()


def test_hvac_sealed_behaviour_and_foreign_token(broker_env: BrokerEnv) -> None:
    a = _hvac(broker_env, "svc-a")
    leaf = broker_env.pki.leaves["svc-a"]
    token = a.auth.cert.login(cert_pem=str(leaf.cert), key_pem=str(leaf.key))["auth"][
        "client_token"
    ]
    # svc-b using svc-a's token: refused (tokens are bound to the SVID that logged in)
    b = _hvac(broker_env, "svc-b", token)
    with pytest.raises(hvac.exceptions.Forbidden):
        b.auth.token.lookup_self()

    root = _hvac(broker_env, "operator", broker_env.root_token)
    root.sys.seal()
    assert root.sys.is_sealed()
    status = root.sys.read_seal_status()
    assert status["sealed"] is True and status["initialized"] is True
    with pytest.raises(hvac.exceptions.VaultDown):
        a.auth.token.lookup_self()
    broker_env.broker.unseal_key_file(broker_env.key_file)
    assert not root.sys.is_sealed()
    assert a.auth.token.lookup_self()["data"]["meta"]["service"] == "svc-a"


def test_hvac_database_configure_rejects_unreachable_server(broker_env: BrokerEnv) -> None:
    root = _hvac(broker_env, "operator", broker_env.root_token)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        root.secrets.database.configure(
            name="pg",
            plugin_name="postgresql-database-plugin",
            connection_url="postgresql://postgres@127.0.0.1:1/postgres",
        )
    configure_database(broker_env)  # the good config still works after a refused one


def test_hvac_initialize_and_unseal_with_shares(pki: PKI, tmp_path: Path) -> None:
    sink = MemorySink()
    broker = Broker(
        tmp_path / "s.db",
        make_topology({"svc-a": "unused-a", "svc-b": "unused-b"}),
        emitter=EventEmitter([sink], service="secrets"),
        role_prefix="rpthvac_",
    )
    leaf = pki.leaves["server"]
    server = MTLSServer(create_app(broker), str(leaf.cert), str(leaf.key), str(pki.ca_cert))
    server.start()
    try:
        op = pki.leaves["operator"]
        client = hvac.Client(url=server.url, cert=op.pair, verify=str(pki.ca_cert))
        assert client.sys.is_initialized() is False
        assert client.sys.read_health_status(method="GET").status_code == 501
        workload = hvac.Client(
            url=server.url, cert=pki.leaves["svc-a"].pair, verify=str(pki.ca_cert)
        )
        with pytest.raises(hvac.exceptions.Forbidden):
            workload.sys.initialize(secret_shares=5, secret_threshold=3)
        workload.adapter.close()
        result = client.sys.initialize(secret_shares=5, secret_threshold=3)
        assert len(result["keys"]) == 5 and result["root_token"].startswith("hvs.")
        with pytest.raises(hvac.exceptions.InvalidRequest):
            client.sys.initialize(secret_shares=5, secret_threshold=3)
        assert client.sys.is_sealed()
        status = client.sys.submit_unseal_keys(result["keys_base64"][1:3])
        assert status["sealed"] is True and status["progress"] == 2
        status = client.sys.submit_unseal_key(result["keys"][4])
        assert status["sealed"] is False
        client.token = result["root_token"]
        client.secrets.kv.v2.create_or_update_secret(path="svc-a/x", secret={"k": "v"})
        assert client.sys.read_health_status(method="GET")["sealed"] is False
        audit = "\n".join(e.to_json() for e in sink.events)
        assert result["root_token"] not in audit
        assert not any(k in audit for k in result["keys"] + result["keys_base64"])
        client.adapter.close()
    finally:
        server.stop()
