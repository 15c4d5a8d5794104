"""The SDK client: KV reads, database credentials, pool rotation under load, no leaks."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import psycopg
import pytest

from ramparts.secrets import Secret
from ramparts.secrets.client import RotatingPool, SecretsClient, SecretsClientError

from .conftest import BrokerEnv, configure_database, wait_for

pytestmark = pytest.mark.services  # real PostgreSQL behind every broker


def _client(env: BrokerEnv, who: str = "svc-a") -> SecretsClient:
    leaf = env.pki.leaves[who]
    return SecretsClient(env.url, cert=str(leaf.cert), key=str(leaf.key), ca=str(env.pki.ca_cert))


def test_secret_type_masks_itself() -> None:
    s = Secret("hunter2")
    assert repr(s) == "Secret('**********')" and str(s) == "**********"
    assert f"{s}" == "**********" and "hunter2" not in f"{s!r} {s!s} {[s]} { ({'k': s}) }"
    assert s.reveal() == "hunter2" and s == Secret("hunter2") and s != Secret("other")
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_client_reads_kv_and_leases(broker_env: BrokerEnv) -> None:
    configure_database(broker_env)
    broker_env.root().post("/v1/secret/data/svc-a/api", json={"data": {"token": "t0p", "n": 3}})
    client = _client(broker_env)
    try:
        data = client.read_kv("svc-a/api")
        assert isinstance(data["token"], Secret) and data["token"].reveal() == "t0p"
        assert data["n"] == 3
        with pytest.raises(SecretsClientError) as err:
            client.read_kv("svc-b/api")
        assert err.value.status == 403
        creds = client.database_credentials("svc-a")
        assert client.renew_lease(creds.lease_id, 600) == 600
        client.revoke_lease(creds.lease_id)
        assert broker_env.pg.login_roles() == []
    finally:
        client.close()


def test_pool_rotates_before_expiry_with_zero_failed_queries(broker_env: BrokerEnv) -> None:
    # leases of 4 s that cannot be renewed past 5 s: the pool must rotate every couple of
    # seconds, and the reaper revokes any lease the pool failed to replace in time.
    configure_database(broker_env, default_ttl=4, max_ttl=5)
    client = _client(broker_env)
    pool = RotatingPool(client, "svc-a", dbname=broker_env.pg.databases["svc-a"], min_size=2)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE hits (n int)")
    stop = threading.Event()
    stats = {"ok": 0, "failed": 0, "users": set()}
    errors: list[BaseException] = []

    def load() -> None:
        while not stop.is_set():
            try:
                with pool.connection(timeout=10) as conn:
                    user = conn.execute("SELECT session_user").fetchone()[0]
                    conn.execute("INSERT INTO hits VALUES (1)")
                stats["ok"] += 1
                stats["users"].add(user)
            except Exception as exc:
                stats["failed"] += 1
                errors.append(exc)

    workers = [threading.Thread(target=load) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: pool.rotations >= 3, "three credential rotations", timeout=45)
        pool.rotate_now()  # and one forced while queries run
    finally:
        stop.set()
        for w in workers:
            w.join(15)
    assert stats["failed"] == 0, errors[:3]
    assert stats["ok"] > 0 and len(stats["users"]) >= 3
    pool.close()
    client.close()
    wait_for(lambda: broker_env.pg.login_roles() == [], "every leased role to be revoked")


def test_secrets_never_reach_environ_logs_or_exception_text(
    broker_env: BrokerEnv, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    configure_database(broker_env)
    broker_env.root().post("/v1/secret/data/svc-a/api", json={"data": {"api_key": "kv-canary-9f3"}})
    caplog.set_level(logging.DEBUG)
    client = _client(broker_env)
    kv = client.read_kv("svc-a/api")
    pool = RotatingPool(client, "svc-a", dbname=broker_env.pg.databases["svc-a"])
    creds = pool._current.creds
    pool.rotate_now()
    failures: list[str] = []
    for bad in (
        lambda: client.read_kv("svc-b/api"),
        lambda: client.renew_lease("database/creds/svc-a/nope"),
        lambda: psycopg.connect(
            host="127.0.0.1", port=1, user=creds.username, password=creds.password.reveal()
        ),
    ):
        try:
            bad()
        except Exception as exc:
            failures.append(f"{exc!s} {exc!r}")
    token = client._token.reveal()
    values = [kv["api_key"].reveal(), creds.password.reveal(), token]
    environ = Path("/proc/self/environ").read_bytes() + Path("/proc/self/cmdline").read_bytes()
    texts = "\n".join(
        [
            caplog.text,
            *failures,
            repr(kv),
            repr(creds),
            repr(pool),
            repr(client),
            str(creds),
            "\n".join(e.to_json() for e in broker_env.sink.events),
        ]
    )
    pool.close()
    client.close()
    assert len(failures) == 3
    for v in values:
        assert v.encode() not in environ
        assert v not in texts
