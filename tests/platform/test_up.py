"""``ramparts up`` as a user runs it: a real process tree on 127.0.0.1, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from tests.platform._up import children_of, listening, start_up, stop_up, topology_file, wait_for

from ramparts.config import Topology
from ramparts.identity import IdentitySource, service_client


async def _as_gateway(
    topo: Topology, state: Path, service: str, method: str, path: str, **kw: object
) -> httpx.Response:
    source = IdentitySource.from_dir(state / "identity" / "gateway")
    url = f"https://{topo.services[service].listen}"
    async with service_client(source, topo.spiffe_id(service), url) as client:
        return await client.request(method, path, headers={"X-Ramparts-Subject": "kemi"}, **kw)  # type: ignore[arg-type]


def test_up_runs_survives_a_kill_stops_cleanly_and_reuses_state(tmp_path: Path) -> None:
    topology, topo = topology_file(tmp_path)
    state = tmp_path / "state"
    proc = start_up(topology, state)
    try:
        created = asyncio.run(
            _as_gateway(topo, state, "accounts", "POST", "/v1/customers",
                        json={"name": "Kemi", "bvn": "22233344455", "nin": "55544433322"})
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert oct(state.stat().st_mode & 0o777) == "0o700"

        # Through the gateway, with a token from the development issuer.
        token = subprocess.run(
            [sys.executable, "-m", "ramparts", "token", "--sub", "tobi",
             "--scope", "accounts:write", "--state", str(state)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        gateway = f"http://{topo.gateway.listen}"
        body = {"name": "Tobi", "bvn": "22211100099", "nin": "99900011122"}
        with httpx.Client(base_url=gateway, timeout=10) as client:
            r = client.post(
                "/v1/customers", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 201, r.text
            assert r.json()["id"] == "tobi"
            assert r.headers["x-request-id"]
            assert client.post("/v1/customers", json=body).status_code == 401
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            bad = client.post(
                "/v1/customers", json=body, headers={"Authorization": f"Bearer {forged}"}
            )
            assert bad.status_code == 401
            assert client.get("/internal/admin").status_code == 404

        # Kill the ledger: the supervisor brings it back on the same port.
        (ledger,) = children_of(state, "refbank ledger")
        os.kill(ledger, signal.SIGKILL)
        listen = topo.services["ledger"].listen
        wait_for(lambda: children_of(state, "refbank ledger") not in ([], [ledger]), "a new ledger")
        wait_for(lambda: listening(listen.host, listen.port), "the ledger to listen again")
    finally:
        stop_up(proc)
    assert children_of(state) == [], "stray processes after Ctrl-C"

    # Every service's security events reached the audit log, and the log verifies.
    audit_db = state / "audit" / "audit.db"
    with sqlite3.connect(audit_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        entries_table = next(t for t in ("entries", "leaves", "log_entries") if t in tables)
        count = conn.execute(f"SELECT count(*) FROM {entries_table}").fetchone()[0]
    assert count > 0
    verify = subprocess.run(
        [sys.executable, "-m", "ramparts", "audit", "verify", "--db", str(audit_db),
         "--log-key", str(state / "audit" / "log.vkey"),
         "--witness-key", str(state / "witness" / "witness.vkey")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # A second run reuses the CA, the data and the log.
    proc = start_up(topology, state)
    try:
        r = asyncio.run(_as_gateway(topo, state, "accounts", "GET", "/v1/customers/kemi"))
        assert (r.status_code, r.json()["bvn"]) == (200, "*******4455")
    finally:
        stop_up(proc)
    assert children_of(state) == []
