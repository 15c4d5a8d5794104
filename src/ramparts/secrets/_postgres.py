"""Every SQL statement the broker runs against PostgreSQL, in one reviewable place.

Per service, the broker keeps a NOLOGIN *owner* role that owns the service's
database and its ``public`` schema; ``PUBLIC`` has no right on that database.
Each lease is a LOGIN role that is a member of the owner role and nothing else
(never a direct grant), created ``VALID UNTIL`` the lease's expiry and with
``SET role = <owner>`` on login, so whatever it creates belongs to the owner
and survives the lease.

Revocation order matters, because ``VALID UNTIL`` (and a dropped password)
only stop *new* logins: ``NOLOGIN``; terminate the role's sessions (by oid,
and again after the drop for a session that was mid-login); ``REASSIGN OWNED``
to the owner and ``DROP OWNED`` in each database that holds something of the
role's; ``DROP ROLE``. Each step is idempotent, so the reconciler can rerun it.

Passwords never appear in SQL text: the SCRAM verifier is computed client-side
(libpq ``PQencryptPasswordConn``) and only the verifier is sent.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from ramparts.secrets._errors import InvalidRequest, SecretsError

PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,15}_$")
MAX_IDENTIFIER = 63
TERMINATE_WAIT_MS = 5000
CONNECT_TIMEOUT = 10  # seconds; a down PostgreSQL fails requests, it does not hang them


def check_prefix(prefix: str) -> str:
    if not PREFIX_PATTERN.match(prefix):
        raise InvalidRequest(
            f"role prefix {prefix!r} must be lowercase letters and digits followed by one '_'"
        )
    return prefix


class PostgresAdmin:
    """The broker's admin connection to one PostgreSQL server (a small pool)."""

    def __init__(self, dsn: str, *, role_prefix: str, max_connections: int = 4) -> None:
        self.dsn = dsn
        self.prefix = check_prefix(role_prefix)
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            timeout=CONNECT_TIMEOUT,
            open=True,
            name="ramparts-secrets-admin",
        )

    def close(self) -> None:
        self._pool.close()

    def _dsn_for(self, database: str) -> str:
        return make_conninfo(self.dsn, dbname=database, connect_timeout=CONNECT_TIMEOUT)

    # -- names --------------------------------------------------------------------------

    def owner_role(self, service: str) -> str:
        name = f"{self.prefix}o_{service}"
        if len(name) > MAX_IDENTIFIER:
            raise InvalidRequest(f"owner role for service {service!r} is longer than 63 bytes")
        return name

    @property
    def login_prefix(self) -> str:
        return f"{self.prefix}l_"

    def login_role(self, service: str, suffix: str) -> str:
        return f"{self.login_prefix}{service}_{suffix}"[:MAX_IDENTIFIER]

    def service_of(self, login_role: str) -> str | None:
        """The service a login role was issued for (service names have no '_')."""
        if not login_role.startswith(self.login_prefix):
            return None
        return login_role[len(self.login_prefix) :].rsplit("_", 1)[0] or None

    # -- per-service setup --------------------------------------------------------------

    def ensure_service(self, service: str, database: str) -> str:
        """Create or fix the owner role and the database's ownership; returns the owner."""
        owner = self.owner_role(service)
        o, db = sql.Identifier(owner), sql.Identifier(database)
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('ramparts-secrets-ensure'))")
            try:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone():
                    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(o))
                else:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(o))
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, o))
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, o))
                conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('ramparts-secrets-ensure'))")
        with psycopg.connect(self._dsn_for(database), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(o))
            conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        return owner

    # -- login roles --------------------------------------------------------------------

    def create_login(self, name: str, owner: str, password: str, valid_until: float) -> None:
        r = sql.Identifier(name)
        with self._pool.connection() as conn, conn.transaction():
            verifier = conn.pgconn.encrypt_password(
                password.encode(), name.encode(), b"scram-sha-256"
            ).decode()
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} VALID UNTIL {} IN ROLE {}").format(
                    r, sql.Literal(verifier), sql.Literal(_ts(valid_until)), sql.Identifier(owner)
                )
            )
            conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(r, sql.Literal(owner)))

    def extend_login(self, name: str, valid_until: float) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                    sql.Identifier(name), sql.Literal(_ts(valid_until))
                )
            )

    def revoke_login(self, name: str, owner: str | None, database: str | None) -> None:
        """Make ``name`` gone: no login, no session, nothing owned, no role. Idempotent."""
        r = sql.Identifier(name)
        with self._pool.connection() as conn:
            row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if row is None:
                return
            oid = row[0]
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(r))
            self._terminate(conn, oid)
            dbs = [
                d
                for (d,) in conn.execute(
                    "SELECT DISTINCT d.datname FROM pg_shdepend s "
                    "JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = %s",
                    (oid,),
                ).fetchall()
            ]
            for db in dbs:
                with psycopg.connect(self._dsn_for(db), autocommit=True) as c:
                    if db == database and owner is not None:
                        c.execute(
                            sql.SQL("REASSIGN OWNED BY {} TO {}").format(r, sql.Identifier(owner))
                        )
                    c.execute(sql.SQL("DROP OWNED BY {}").format(r))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(r))
            self._terminate(conn, oid)

    @staticmethod
    def _terminate(conn: psycopg.Connection, oid: int) -> None:
        """Terminate every session of role ``oid`` and wait (bounded) until they are gone.

        ``pg_terminate_backend(pid, timeout)`` polls every 100 ms; signalling and then
        polling ``pg_stat_activity`` ourselves returns as soon as the backends exit.
        """
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE usesysid = %s AND pid <> pg_backend_pid()",
                (oid,),
            ).fetchall()
        ]
        if not pids:
            return
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        deadline = time.monotonic() + TERMINATE_WAIT_MS / 1000
        while conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone():
            if time.monotonic() > deadline:
                raise SecretsError(
                    f"sessions of a revoked role did not end within {TERMINATE_WAIT_MS} ms"
                )
            time.sleep(0.002)

    def list_login_roles(self) -> list[str]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY rolname",
                (self.login_prefix,),
            ).fetchall()
        return [r[0] for r in rows]

    def check(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("SELECT 1")


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
