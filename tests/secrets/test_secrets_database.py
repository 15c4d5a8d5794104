"""Dynamic PostgreSQL roles on real PostgreSQL: isolation, ownership, renew, revoke, expiry."""

from __future__ import annotations

import time

import psycopg
import pytest

from .conftest import BrokerEnv, configure_database, wait_for

pytestmark = pytest.mark.services  # real PostgreSQL behind every broker


def _creds(env: BrokerEnv, svc: str) -> dict:
    r = env.login(svc).get(f"/v1/database/creds/{svc}")
    assert r.status_code == 200, r.text
    return r.json()


def _connect(env: BrokerEnv, svc_db: str, creds: dict) -> psycopg.Connection:
    d = creds["data"]
    return psycopg.connect(env.pg.dsn(svc_db, d["username"], d["password"]), autocommit=True)


def _role_exists(env: BrokerEnv, name: str) -> bool:
    with psycopg.connect(env.pg.admin_dsn) as c:
        return (
            c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None
        )


def test_creds_shape_and_role_attributes(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    body = _creds(broker_env, "svc-a")
    assert body["lease_id"].startswith("database/creds/svc-a/")
    assert body["renewable"] is True and body["lease_duration"] == 3600
    user = body["data"]["username"]
    assert user.startswith(broker_env.pg.prefix + "l_svc-a_")
    with psycopg.connect(broker_env.pg.admin_dsn) as c:
        row = c.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolvaliduntil, rolconfig "
            "FROM pg_roles WHERE rolname = %s",
            (user,),
        ).fetchone()
        members = c.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            (user,),
        ).fetchall()
        acl = c.execute(
            "SELECT datacl::text, pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (broker_env.pg.databases["svc-a"],),
        ).fetchone()
    can_login, is_super, createrole, createdb, valid_until, config = row
    assert can_login and not (is_super or createrole or createdb)
    assert valid_until is not None and 3500 < valid_until.timestamp() - time.time() <= 3600
    owner = broker_env.pg.prefix + "o_svc-a"
    assert config == [f"role={owner}"]
    assert members == [(owner,)]  # membership in the owner role only, no direct grants
    assert acl[1] == owner
    assert not any(e.startswith("=") for e in acl[0].strip("{}").split(","))  # no PUBLIC entry


def test_service_a_cannot_reach_service_b(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    a, b = _creds(broker_env, "svc-a"), _creds(broker_env, "svc-b")
    with _connect(broker_env, broker_env.pg.databases["svc-b"], b) as conn:
        conn.execute("CREATE TABLE ledger (v text)")
        conn.execute("INSERT INTO ledger VALUES ('b-secret')")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        _connect(broker_env, broker_env.pg.databases["svc-b"], a)
    # nor through its own database: nothing of B's is visible or grantable there
    with _connect(broker_env, broker_env.pg.databases["svc-a"], a) as conn:
        assert conn.execute("SELECT to_regclass('ledger')").fetchone() == (None,)
    # and A's token cannot lease B's role
    r = broker_env.login("svc-a").get("/v1/database/creds/svc-b")
    assert r.status_code == 403


def test_objects_belong_to_the_owner_and_survive_the_lease(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    db = broker_env.pg.databases["svc-a"]
    first = _creds(broker_env, "svc-a")
    with _connect(broker_env, db, first) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (broker_env.pg.prefix + "o_svc-a",)
        conn.execute("CREATE TABLE accounts (id int)")
        conn.execute("INSERT INTO accounts VALUES (1)")
        conn.execute("RESET ROLE")
        conn.execute("CREATE TABLE mine (id int)")  # owned by the login role itself
    root = broker_env.root()
    assert (
        root.put("/v1/sys/leases/revoke", json={"lease_id": first["lease_id"]}).status_code == 204
    )
    assert not _role_exists(broker_env, first["data"]["username"])
    second = _creds(broker_env, "svc-a")
    with _connect(broker_env, db, second) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'mine'").fetchone()
        assert owner == (broker_env.pg.prefix + "o_svc-a",)  # reassigned, not dropped


def test_revoke_ends_open_sessions(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    creds = _creds(broker_env, "svc-a")
    conn = _connect(broker_env, broker_env.pg.databases["svc-a"], creds)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    a = broker_env.login("svc-a")
    assert a.put("/v1/sys/leases/revoke", json={"lease_id": creds["lease_id"]}).status_code == 204
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        _connect(broker_env, broker_env.pg.databases["svc-a"], creds)
    assert broker_env.pg.login_roles() == []


def test_lease_lookup_renew_and_policy(broker_env: BrokerEnv) -> None:
    configure_database(broker_env, default_ttl="10m", max_ttl="1h")
    creds = _creds(broker_env, "svc-a")
    a, b = broker_env.login("svc-a"), broker_env.login("svc-b")
    look = a.put("/v1/sys/leases/lookup", json={"lease_id": creds["lease_id"]})
    assert look.status_code == 200 and look.json()["data"]["renewable"] is True
    assert 590 <= look.json()["data"]["ttl"] <= 600
    renewed = a.put("/v1/sys/leases/renew", json={"lease_id": creds["lease_id"], "increment": 1800})
    assert renewed.status_code == 200
    assert renewed.json()["lease_id"] == creds["lease_id"]
    assert 1790 <= renewed.json()["lease_duration"] <= 1800
    capped = a.post("/v1/sys/leases/renew", json={"lease_id": creds["lease_id"], "increment": "5h"})
    assert capped.json()["lease_duration"] <= 3600 and capped.json()["warnings"]
    with psycopg.connect(broker_env.pg.admin_dsn) as c:
        (until,) = c.execute(
            "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (creds["data"]["username"],)
        ).fetchone()
    assert 3500 < until.timestamp() - time.time() <= 3600
    # another service may neither look up, renew nor revoke this lease
    for op in ("lookup", "renew", "revoke"):
        assert (
            b.put(f"/v1/sys/leases/{op}", json={"lease_id": creds["lease_id"]}).status_code == 403
        )
    assert a.put("/v1/sys/leases/revoke-prefix/database/creds/svc-a").status_code == 403
    assert broker_env.pg.login_roles() == [creds["data"]["username"]]
    unknown = a.put("/v1/sys/leases/renew", json={"lease_id": "database/creds/svc-a/nope"})
    assert unknown.status_code == 400


def test_revoke_prefix_by_operator(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    for _ in range(3):
        _creds(broker_env, "svc-a")
    _creds(broker_env, "svc-b")
    root = broker_env.root()
    listed = root.request("LIST", "/v1/sys/leases/lookup/database/creds/svc-a/")
    assert listed.status_code == 200 and len(listed.json()["data"]["keys"]) == 3
    assert root.put("/v1/sys/leases/revoke-prefix/database/creds/svc-a").status_code == 204
    remaining = broker_env.pg.login_roles()
    assert len(remaining) == 1 and "_l_svc-b_" in remaining[0]


def test_expired_lease_is_reaped_and_cannot_log_in(broker_env: BrokerEnv) -> None:
    configure_database(broker_env, default_ttl=3, max_ttl=3)
    creds = _creds(broker_env, "svc-a")
    conn = _connect(broker_env, broker_env.pg.databases["svc-a"], creds)
    wait_for(lambda: not broker_env.pg.login_roles(), "the reaper to revoke the expired lease")
    wait_for(lambda: broker_env.sink.of_type("secrets.lease_revoked"), "the revocation event")
    (event,) = broker_env.sink.of_type("secrets.lease_revoked")
    assert event.reason == "expired" and event.detail["lease_id"] == creds["lease_id"]
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        _connect(broker_env, broker_env.pg.databases["svc-a"], creds)
    renew = broker_env.login("svc-a").put(
        "/v1/sys/leases/renew", json={"lease_id": creds["lease_id"]}
    )
    assert renew.status_code == 400


def test_role_config_is_checked_against_the_topology(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    root = broker_env.root()
    no_db = root.post("/v1/database/roles/svc-c", json={"db_name": "pg"})
    assert no_db.status_code == 400 and "topology" in no_db.json()["errors"][0]
    custom_sql = root.post(
        "/v1/database/roles/svc-a",
        json={"db_name": "pg", "creation_statements": ["CREATE ROLE x SUPERUSER"]},
    )
    assert custom_sql.status_code == 400
    too_long = root.post("/v1/database/roles/svc-a", json={"db_name": "pg", "max_ttl": "48h"})
    assert too_long.status_code == 400
    unknown = broker_env.login("svc-c").get("/v1/database/creds/svc-c")
    assert unknown.status_code == 400 and unknown.json() == {"errors": ["unknown role: svc-c"]}
    config = root.get("/v1/database/config/pg").json()["data"]
    assert "password" not in str(config)


def test_unauditable_issuance_is_withdrawn(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    a = broker_env.login("svc-a")

    class FailsOnResponses:
        def write(self, event: object) -> None:
            if getattr(event, "type", "") == "secrets.response":
                raise OSError("audit disk full")

    broker_env.broker.auditor.emitter.add_sink(FailsOnResponses())
    r = a.get("/v1/database/creds/svc-a")
    assert r.status_code == 500 and "audit" in r.json()["errors"][0]
    login = broker_env.client("svc-b").post("/v1/auth/cert/login")
    assert login.status_code == 500
    broker_env.broker.auditor.emitter.sinks.pop()
    assert broker_env.pg.login_roles() == []
    assert broker_env.broker.barrier.list_prefix("sys/leases/") == []
    assert len(broker_env.broker.barrier.list_prefix("auth/token/id/")) == 2  # root and svc-a
