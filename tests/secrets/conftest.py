"""Fixtures for the secrets broker: a throwaway PKI (generated with ``cryptography`` at
run time), per-test service databases and a per-test role prefix (both dropped after), and
a live broker served over real mTLS on 127.0.0.1.

Most tests serve the broker with the small uvicorn wrapper in ``_mtls.py`` (uvicorn with
``CERT_REQUIRED`` filling the ASGI TLS extension from the verified connection), so the
broker's tests do not depend on the identity piece's internals; ``test_secrets_identity``
and the CLI end-to-end test run it behind ``ramparts.identity``'s production server.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

from ramparts.config import Topology, parse_topology
from ramparts.events import EventEmitter, MemorySink

from ._mtls import MTLSServer, wait_for

__all__ = ["MTLSServer", "wait_for"]

TRUST_DOMAIN = "test.local"
NAMESPACE = "tst"


# -- PKI ----------------------------------------------------------------------------------


@dataclass
class Leaf:
    cert: Path
    key: Path
    spiffe_id: str

    @property
    def pair(self) -> tuple[str, str]:
        return (str(self.cert), str(self.key))


@dataclass
class PKI:
    dir: Path
    ca_cert: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    leaves: dict[str, Leaf] = field(default_factory=dict)

    def issue(self, name: str, spiffe_id: str | None, *, server: bool = False) -> Leaf:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans: list[x509.GeneralName] = []
        if spiffe_id:
            sans.append(x509.UniformResourceIdentifier(spiffe_id))
        if server:
            sans += [x509.DNSName("localhost"), x509.IPAddress(_ip("127.0.0.1"))]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        leaf = Leaf(cert_path, key_path, spiffe_id or "")
        self.leaves[name] = leaf
        return leaf


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _ip(text: str) -> Any:
    import ipaddress

    return ipaddress.ip_address(text)


def sid(name: str, ns: str = NAMESPACE) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{name}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("secrets-pki")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ramparts test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=4))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca_path = d / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    p = PKI(d, ca_path, key, ca)
    p.issue("server", sid("secrets", "ramparts"), server=True)
    p.issue("svc-a", sid("svc-a"))
    p.issue("svc-b", sid("svc-b"))
    p.issue("svc-c", sid("svc-c"))
    p.issue("stranger", sid("stranger", "elsewhere"))
    p.issue("operator", sid("console", "ramparts"))
    return p


# -- per-test PostgreSQL state --------------------------------------------------------------


@dataclass
class PGState:
    admin_dsn: str
    prefix: str
    databases: dict[str, str]  # service -> database
    created: bool = False

    def dsn(self, database: str, user: str, password: str | None = None) -> str:
        base = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        base.update(dbname=database, user=user, connect_timeout=5)
        if password is not None:
            base["password"] = password
        else:
            base.pop("password", None)
        return psycopg.conninfo.make_conninfo(**base)

    def create_databases(self) -> None:
        """Create the service databases; only tests that lease roles need them (each
        CREATE/DROP DATABASE costs a checkpoint, so the others skip it)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as c:
            for db in self.databases.values() if self.created else ():
                c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        self.created = True

    def roles(self, pattern: str = "") -> list[str]:
        with psycopg.connect(self.admin_dsn) as c:
            rows = c.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY 1",
                (self.prefix + pattern,),
            ).fetchall()
        return [r[0] for r in rows]

    def login_roles(self) -> list[str]:
        return self.roles("l_")

    def cleanup(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as c:
            for role in self.login_roles():
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (role,),
                )
            for db in self.databases.values() if self.created else ():
                c.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
            for role in self.roles():
                c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def make_topology(databases: dict[str, str]) -> Topology:
    return parse_topology(topology_text(databases), source="<secrets test topology>")


def topology_text(databases: dict[str, str]) -> str:
    return f"""
version: 1
trust_domain: {TRUST_DOMAIN}
namespace: {NAMESPACE}
services:
  svc-a:
    listen: 127.0.0.1:17101
    database: {databases["svc-a"]}
  svc-b:
    listen: 127.0.0.1:17102
    database: {databases["svc-b"]}
  svc-c:
    listen: 127.0.0.1:17103
    calls: [svc-a]
gateway:
  listen: 127.0.0.1:18443
  plain_http: true
"""


@pytest.fixture
def pg_state(pg_admin_dsn: str) -> Iterator[PGState]:
    tag = secrets.token_hex(4)
    dbs = {"svc-a": f"rps-{tag}-a", "svc-b": f"rps-{tag}-b"}
    state = PGState(pg_admin_dsn, f"rpt{tag}_", dbs)
    try:
        yield state
    finally:
        state.cleanup()


# -- a live broker --------------------------------------------------------------------------


@dataclass
class BrokerEnv:
    url: str
    pki: PKI
    pg: PGState
    root_token: str
    broker: Any
    sink: MemorySink
    key_file: Path
    storage: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str, token: str | None = None) -> httpx.Client:
        c = httpx.Client(
            base_url=self.url,
            verify=_mtls_context(self.pki.ca_cert, self.pki.leaves[who].pair),
            headers={"X-Vault-Token": token} if token else {},
            timeout=30,
        )
        self.clients.append(c)
        return c

    def root(self) -> httpx.Client:
        return self.client("operator", self.root_token)

    def login(self, who: str) -> httpx.Client:
        r = self.client(who).post("/v1/auth/cert/login", json={})
        assert r.status_code == 200, r.text
        return self.client(who, r.json()["auth"]["client_token"])


def configure_database(
    env: BrokerEnv, *, default_ttl: int | str = 3600, max_ttl: int | str = 86400
) -> None:
    env.pg.create_databases()
    root = env.root()
    r = root.post(
        "/v1/database/config/pg",
        json={
            "plugin_name": "postgresql-database-plugin",
            "connection_url": env.pg.admin_dsn,
            "allowed_roles": ["svc-a", "svc-b"],
        },
    )
    assert r.status_code == 204, r.text
    for svc in ("svc-a", "svc-b"):
        r = root.post(
            f"/v1/database/roles/{svc}",
            json={
                "db_name": "pg",
                "creation_statements": [],
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            },
        )
        assert r.status_code == 204, r.text


@pytest.fixture
def broker_env(pki: PKI, pg_state: PGState, tmp_path: Path) -> Iterator[BrokerEnv]:
    from ramparts.secrets import Broker, create_app

    sink = MemorySink()
    storage = tmp_path / "secrets.db"
    key_file = tmp_path / "unseal.key"
    broker = Broker(
        storage,
        make_topology(pg_state.databases),
        emitter=EventEmitter([sink], service="secrets"),
        role_prefix=pg_state.prefix,
        reaper_interval=0.2,
    )
    root_token = broker.initialize_key_file(key_file)
    broker.unseal_key_file(key_file)
    leaf = pki.leaves["server"]
    server = MTLSServer(create_app(broker), str(leaf.cert), str(leaf.key), str(pki.ca_cert))
    server.start()
    env = BrokerEnv(server.url, pki, pg_state, root_token, broker, sink, key_file, storage)
    try:
        yield env
    finally:
        for c in env.clients:
            c.close()
        server.stop()


def _mtls_context(ca_cert: object, pair: tuple[str, str]) -> ssl.SSLContext:
    """Trust the test CA and present ``pair`` (httpx's ``cert=`` argument is deprecated)."""
    ctx = ssl.create_default_context(cafile=str(ca_cert))
    ctx.load_cert_chain(*pair)
    return ctx
