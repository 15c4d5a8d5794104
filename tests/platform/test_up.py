"""``ramparts up`` as a user runs it: a real process tree on 127.0.0.1, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ramparts.config import Topology, parse_topology
from ramparts.identity import IdentitySource, service_client

REFBANK = Path(__file__).resolve().parents[2] / "src/ramparts/config/refbank.yaml"
PLATFORM_PORTS = (7000, 7001, 7002, 7003, 7004)
SERVICE_PORTS = (7101, 7102, 7103, 7104, 7105)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _topology_file(tmp: Path) -> tuple[Path, Topology]:
    """The reference bank on free ports, so the test never collides with a running system."""
    text = REFBANK.read_text()
    new = _free_ports(len(SERVICE_PORTS) + len(PLATFORM_PORTS) + 2)
    for old, port in zip(SERVICE_PORTS, new, strict=False):
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{port}")
    text = text.replace("listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{new[-2]}")
    text = text.replace("admin_listen: 127.0.0.1:9443", f"admin_listen: 127.0.0.1:{new[-1]}")
    names = ("ca", "secrets", "audit", "witness", "console")
    text += "platform:\n" + "".join(
        f"  {n}: 127.0.0.1:{p}\n" for n, p in zip(names, new[len(SERVICE_PORTS) :], strict=False)
    )
    path = tmp / "ramparts.yaml"
    path.write_text(text)
    return path, parse_topology(text)


def _start(topology: Path, state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ramparts",
            "up",
            "--topology",
            str(topology),
            "--state",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "ramparts is up" in line:
            return proc
        if time.monotonic() > deadline or proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("ramparts up did not come up:\n" + "".join(seen[-30:]))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0


def _children_of(state: Path, marker: str = "") -> list[int]:
    """Live processes whose command line names this run's state directory (and ``marker``)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            zombie = Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except (OSError, IndexError):
            continue
        if str(state) in cmd and marker in cmd and not zombie:
            out.append(int(pid))
    return out


def _wait_for(cond, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 1):
            return True
    except OSError:
        return False


async def _as_gateway(
    topo: Topology, state: Path, service: str, method: str, path: str, **kw: object
) -> httpx.Response:
    source = IdentitySource.from_dir(state / "identity" / "gateway")
    url = f"https://{topo.services[service].listen}"
    async with service_client(source, topo.spiffe_id(service), url) as client:
        return await client.request(method, path, headers={"X-Ramparts-Subject": "kemi"}, **kw)  # type: ignore[arg-type]


def test_up_runs_survives_a_kill_stops_cleanly_and_reuses_state(tmp_path: Path) -> None:
    topology, topo = _topology_file(tmp_path)
    state = tmp_path / "state"
    proc = _start(topology, state)
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
        (ledger,) = _children_of(state, "refbank ledger")
        os.kill(ledger, signal.SIGKILL)
        listen = topo.services["ledger"].listen
        _wait_for(
            lambda: _children_of(state, "refbank ledger") not in ([], [ledger]), "a new ledger"
        )
        _wait_for(lambda: _listening(listen.host, listen.port), "the ledger to listen again")
    finally:
        _stop(proc)
    assert _children_of(state) == [], "stray processes after Ctrl-C"

    # Every service's security events reached the audit log, and the log verifies.
    audit_db = state / "audit" / "audit.db"
    with sqlite3.connect(audit_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        entries_table = next(t for t in ("entries", "leaves", "log_entries") if t in tables)
        count = conn.execute(f"SELECT count(*) FROM {entries_table}").fetchone()[0]
    assert count > 0
    verify = subprocess.run(
        [sys.executable, "-m", "ramparts", "audit", "verify", "--db", str(audit_db),
         "--log-key", str(state / "audit" / "log.vkey")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # A second run reuses the CA, the data and the log.
    proc = _start(topology, state)
    try:
        r = asyncio.run(_as_gateway(topo, state, "accounts", "GET", "/v1/customers/kemi"))
        assert (r.status_code, r.json()["bvn"]) == (200, "*******4455")
    finally:
        _stop(proc)
    assert _children_of(state) == []
