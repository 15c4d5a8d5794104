"""Crash safety of the lease journal: kill -9 mid-issuance and mid-revocation, then restart.

After every restart the reconciler has run (it runs at unseal, before serving), so the
invariant checked is exact: every login role with this test's prefix has an ``active``
lease record, and there is no ``pending`` or ``revoking`` record left.
"""

from __future__ import annotations

import os
import random
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from ramparts.secrets._barrier import Barrier
from ramparts.secrets._postgres import PostgresAdmin
from ramparts.secrets._seal import read_key_file
from ramparts.secrets._storage import SQLiteStorage

from .conftest import PKI, PGState, make_topology, topology_text, wait_for

REPO = Path(__file__).resolve().parents[2]
ITERATIONS = 10


class BrokerProcess:
    def __init__(self, tmp: Path, pki: PKI, pg: PGState) -> None:
        self.tmp, self.pki, self.pg = tmp, pki, pg
        self.storage = tmp / "crash.db"
        self.key_file = tmp / "unseal.key"
        self.topology = tmp / "ramparts.yaml"
        self.topology.write_text(topology_text(pg.databases))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        port_file = self.tmp / "port"
        port_file.unlink(missing_ok=True)
        server = self.pki.leaves["server"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.secrets._broker_proc",
                str(self.storage),
                str(self.key_file),
                str(self.topology),
                self.pg.prefix,
                str(server.cert),
                str(server.key),
                str(self.pki.ca_cert),
                str(port_file),
            ],
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: port_file.exists() or self.proc.poll() is not None, "broker process start", 30
        )
        assert self.proc.poll() is None, "broker process exited during start"
        self.port = int(port_file.read_text())

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def client(self, who: str, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}",
            verify=_mtls_context(self.pki.ca_cert, self.pki.leaves[who].pair),
            headers={"X-Vault-Token": token} if token else {},
            timeout=10,
        )


def _journal(proc: BrokerProcess) -> list[dict]:
    storage = SQLiteStorage(proc.storage)
    try:
        barrier = Barrier(storage)
        barrier.unseal(read_key_file(proc.key_file))
        return [barrier.get(p) for p in barrier.list_prefix("sys/leases/")]
    finally:
        storage.close()


def _load(proc: BrokerProcess, token: str, stop: threading.Event, stats: dict) -> None:
    with proc.client("svc-a", token) as c:
        while not stop.is_set():
            try:
                r = c.get("/v1/database/creds/svc-a")
                if r.status_code != 200:
                    continue
                stats["issued"] += 1
                if random.random() < 0.6:
                    c.put("/v1/sys/leases/revoke", json={"lease_id": r.json()["lease_id"]})
                    stats["revoked"] += 1
            except httpx.HTTPError:
                time.sleep(0.01)


@pytest.mark.services
def test_kill_9_during_issuance_and_revocation_leaves_no_orphan_role(
    pki: PKI, pg_state: PGState, tmp_path: Path
) -> None:
    from ramparts.events import EventEmitter, MemorySink
    from ramparts.secrets import Broker

    pg_state.create_databases()
    proc = BrokerProcess(tmp_path, pki, pg_state)
    init = Broker(
        proc.storage,
        make_topology(pg_state.databases),
        emitter=EventEmitter([MemorySink()], service="secrets"),
        role_prefix=pg_state.prefix,
    )
    root_token = init.initialize_key_file(proc.key_file)
    init.close()

    proc.start()
    try:
        with proc.client("operator", root_token) as root:
            r = root.post(
                "/v1/database/config/pg",
                json={"connection_url": pg_state.admin_dsn, "allowed_roles": ["svc-a"]},
            )
            assert r.status_code == 204, r.text
            r = root.post("/v1/database/roles/svc-a", json={"db_name": "pg"})
            assert r.status_code == 204, r.text
        with proc.client("svc-a") as c:
            token = c.post("/v1/auth/cert/login").json()["auth"]["client_token"]

        rng = random.Random(os.getpid())
        stats = {"issued": 0, "revoked": 0, "interrupted": 0}
        for _ in range(ITERATIONS):
            stop = threading.Event()
            workers = [
                threading.Thread(target=_load, args=(proc, token, stop, stats)) for _ in range(3)
            ]
            for w in workers:
                w.start()
            before = stats["issued"]
            wait_for(lambda b=before: stats["issued"] > b, "load to reach the broker", 20, 0.005)
            time.sleep(rng.uniform(0.0, 0.25))
            proc.kill9()
            stop.set()
            for w in workers:
                w.join(15)
            journal = _journal(proc)
            stats["interrupted"] += sum(rec["state"] != "active" for rec in journal)
            proc.start()  # unseal runs the reconciler before the port is published

        proc.kill9()
        journal = _journal(proc)
        assert [r for r in journal if r["state"] != "active"] == []
        assert sorted(r["username"] for r in journal) == pg_state.login_roles()
        assert stats["issued"] >= ITERATIONS
        print(f"crash test: {stats}")
    finally:
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill9()


def test_reconciler_finishes_every_interrupted_state(
    pki: PKI, pg_state: PGState, tmp_path: Path
) -> None:
    """Deterministic companion: each crash point's leftover state, built by hand, is cleaned."""
    from ramparts.events import EventEmitter, MemorySink
    from ramparts.secrets import Broker

    def broker() -> Broker:
        return Broker(
            tmp_path / "r.db",
            make_topology(pg_state.databases),
            emitter=EventEmitter([MemorySink()], service="secrets"),
            role_prefix=pg_state.prefix,
        )

    pg_state.create_databases()
    b = broker()
    key = tmp_path / "k"
    b.initialize_key_file(key)
    b.unseal_key_file(key)
    b.database.write_config("pg", {"connection_url": pg_state.admin_dsn})
    b.database.write_role("svc-a", {"db_name": "pg"})
    kept = b.leases.issue("svc-a")
    admin = PostgresAdmin(pg_state.admin_dsn, role_prefix=pg_state.prefix)
    owner = admin.owner_role("svc-a")
    now = time.time()
    base = {
        "role": "svc-a",
        "db_name": "pg",
        "database": pg_state.databases["svc-a"],
        "owner": owner,
        "issue_time": now,
        "last_renewal": None,
        "expire_time": now + 600,
        "max_expire_time": now + 3600,
    }
    # crash after the journal write, before CREATE ROLE
    b.barrier.put(
        "sys/leases/database/creds/svc-a/p1",
        {
            **base,
            "lease_id": "database/creds/svc-a/p1",
            "username": admin.login_role("svc-a", "p1"),
            "state": "pending",
        },
    )
    # crash after CREATE ROLE, before the lease became active
    admin.create_login(admin.login_role("svc-a", "p2"), owner, "pw", now + 600)
    b.barrier.put(
        "sys/leases/database/creds/svc-a/p2",
        {
            **base,
            "lease_id": "database/creds/svc-a/p2",
            "username": admin.login_role("svc-a", "p2"),
            "state": "pending",
        },
    )
    # crash in the middle of a revocation, role still there with an open session
    admin.create_login(admin.login_role("svc-a", "r1"), owner, "pw", now + 600)
    b.barrier.put(
        "sys/leases/database/creds/svc-a/r1",
        {
            **base,
            "lease_id": "database/creds/svc-a/r1",
            "username": admin.login_role("svc-a", "r1"),
            "state": "revoking",
        },
    )
    session = psycopg.connect(
        pg_state.dsn(pg_state.databases["svc-a"], admin.login_role("svc-a", "r1"))
    )
    # a role with our prefix and no record at all
    admin.create_login(admin.login_role("svc-a", "o1"), owner, "pw", now + 600)
    b.close()
    assert len(pg_state.login_roles()) == 4

    sink = MemorySink()
    b = broker()
    b.auditor.emitter.add_sink(sink)
    b.unseal_key_file(key)
    try:
        reasons = sorted(e.reason for e in sink.of_type("secrets.reconciled"))
        assert reasons == [
            "interrupted while pending",
            "interrupted while pending",
            "interrupted while revoking",
            "orphan role: no lease accounts for it",
        ]
        assert pg_state.login_roles() == [kept.username]
        assert [p.rsplit("/", 1)[1] for p in b.barrier.list_prefix("sys/leases/")] == [
            kept.lease_id.rsplit("/", 1)[1]
        ]
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
    finally:
        session.close()
        admin.close()
        b.close()


def _mtls_context(ca_cert: object, pair: tuple[str, str]) -> ssl.SSLContext:
    """Trust the test CA and present ``pair`` (httpx's ``cert=`` argument is deprecated)."""
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    ctx.load_cert_chain(*pair)
    return ctx
