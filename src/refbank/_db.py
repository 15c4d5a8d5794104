"""A service's own database: PostgreSQL, or SQLite in the embedded default.

Services write SQL once, in psycopg's parameter style (``%s`` and
``%(name)s``), in the subset both engines understand (``ON CONFLICT``,
``RETURNING``, ``CAST``); :class:`SQLiteDatabase` rewrites the placeholders.
The few real differences are named, not hidden: ``db.for_update`` is
``FOR UPDATE`` on PostgreSQL and empty on SQLite (whose writers are already
serialised by ``BEGIN IMMEDIATE``), and migrations live per engine in
``migrations/postgres`` and ``migrations/sqlite``.

Constraint violations surface as :class:`UniqueViolation` and
:class:`CheckViolation` carrying the constraint's name, whichever engine
raised them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from fastapi import FastAPI, Request
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Params = Sequence[Any] | Mapping[str, Any] | None
Row = dict[str, Any]
# Any constant works; it only has to be the same for every replica of a service.
_MIGRATION_LOCK = 0x5241_4D50  # "RAMP"


class ConstraintViolation(Exception):
    def __init__(self, constraint: str) -> None:
        super().__init__(f"constraint {constraint} violated")
        self.constraint = constraint


class UniqueViolation(ConstraintViolation):
    """A unique or primary key constraint; ``constraint`` is its name (PostgreSQL) or columns."""


class CheckViolation(ConstraintViolation):
    """A CHECK constraint; ``constraint`` is its name on both engines."""


class Tx(Protocol):
    async def execute(self, sql: str, params: Params = None) -> None: ...
    async def fetchone(self, sql: str, params: Params = None) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = None) -> list[Row]: ...


class Database(Protocol):
    dialect: Literal["postgres", "sqlite"]
    for_update: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def transaction(self) -> Any: ...  # async context manager yielding a Tx
    async def execute(self, sql: str, params: Params = None) -> None: ...
    async def fetchone(self, sql: str, params: Params = None) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = None) -> list[Row]: ...


def open_database(url: str, *, max_size: int = 10) -> Database:
    """``postgresql://...`` or ``sqlite:///path/to/file.db``; nothing is opened yet."""
    if url.startswith(("postgresql://", "postgres://")):
        # UTC sessions, so timestamps compare and print the same as on SQLite.
        kwargs = {"autocommit": True, "options": "-c TimeZone=UTC"}
        pool = AsyncConnectionPool(url, min_size=1, max_size=max_size, open=False, kwargs=kwargs)
        return PostgresDatabase(pool)
    if url.startswith("sqlite:///"):
        return SQLiteDatabase(Path(url.removeprefix("sqlite:///")))
    scheme = url.partition(":")[0]
    raise ValueError(f"database URL must start with postgresql:// or sqlite:///, got {scheme}:")


# -- PostgreSQL -------------------------------------------------------------


def _pg_error(exc: psycopg.errors.IntegrityError) -> ConstraintViolation | None:
    name = exc.diag.constraint_name or "?"
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return UniqueViolation(name)
    if isinstance(exc, psycopg.errors.CheckViolation):
        return CheckViolation(name)
    return None


class _PgTx:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn

    async def _run(self, sql: str, params: Params) -> psycopg.AsyncCursor[Row]:
        cur = self.conn.cursor(row_factory=dict_row)
        try:
            await cur.execute(sql, params)
        except psycopg.errors.IntegrityError as exc:
            mapped = _pg_error(exc)
            if mapped is None:
                raise
            raise mapped from None
        return cur

    async def execute(self, sql: str, params: Params = None) -> None:
        await self._run(sql, params)

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        return await (await self._run(sql, params)).fetchone()

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        return await (await self._run(sql, params)).fetchall()


class PostgresDatabase:
    """Connections are in autocommit mode: a transaction is always an explicit
    ``async with db.transaction()``, so no request holds one open across a call
    to another service."""

    dialect: Literal["postgres", "sqlite"] = "postgres"
    for_update = "FOR UPDATE"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        async with self.pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    async def execute(self, sql: str, params: Params = None) -> None:
        async with self.pool.connection() as conn:
            await _PgTx(conn).execute(sql, params)

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        async with self.pool.connection() as conn:
            return await _PgTx(conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        async with self.pool.connection() as conn:
            return await _PgTx(conn).fetchall(sql, params)

    async def migrate(self, package: str) -> list[str]:
        # Everything on the connection that holds the lock: a pool of one must not deadlock.
        async with self.pool.connection() as conn:

            async def run_script(script: str, name: str) -> None:
                async with conn.transaction():
                    await conn.execute(script)  # type: ignore[arg-type]
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))

            await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                return await _apply(_PgTx(conn), package, "postgres", run_script)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


# -- SQLite -----------------------------------------------------------------

_NAMED = re.compile(r"%\((\w+)\)s")
_CHECK_FAILED = re.compile(r"CHECK constraint failed: (\w+)")
_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: ([\w., ]+)")


def _sqlite_sql(sql: str) -> str:
    return _NAMED.sub(r":\1", sql).replace("%s", "?")


class _SqliteTx:
    def __init__(self, db: SQLiteDatabase) -> None:
        self.db = db

    async def _run(self, sql: str, params: Params, fetch: str) -> Any:
        return await self.db._call(self.db._exec_sync, _sqlite_sql(sql), params, fetch)

    async def execute(self, sql: str, params: Params = None) -> None:
        await self._run(sql, params, "none")

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        return await self._run(sql, params, "one")

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        return await self._run(sql, params, "all")


class SQLiteDatabase:
    """One connection, used from one worker thread; transactions are serialised.

    SQLite allows one writer at a time anyway; serialising in the process keeps
    ``BEGIN IMMEDIATE`` from ever waiting on ourselves, and makes a transaction's
    reads and writes one atomic unit, as ``FOR UPDATE`` would on PostgreSQL.
    """

    dialect: Literal["postgres", "sqlite"] = "sqlite"
    for_update = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.name}")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created private before SQLite opens it: its -wal and -shm files copy this mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self.path.chmod(0o600)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a ledger: durable on commit
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn

    def _exec_sync(self, sql: str, params: Params, fetch: str) -> Any:
        assert self._conn is not None, "database is not open"
        try:
            cur = self._conn.execute(sql, params or ())
            if fetch == "one":
                row = cur.fetchone()
                return dict(row) if row is not None else None
            if fetch == "all":
                return [dict(r) for r in cur.fetchall()]
            return None
        except sqlite3.IntegrityError as exc:
            text = str(exc)
            if m := _CHECK_FAILED.search(text):
                raise CheckViolation(m.group(1)) from None
            if m := _UNIQUE_FAILED.search(text):
                raise UniqueViolation(m.group(1)) from None
            raise

    async def open(self) -> None:
        await self._call(self._open_sync)

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        async with self._lock:
            tx = _SqliteTx(self)
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                await tx.execute("ROLLBACK")
                raise
            await tx.execute("COMMIT")

    async def execute(self, sql: str, params: Params = None) -> None:
        async with self._lock:
            await _SqliteTx(self).execute(sql, params)

    async def fetchone(self, sql: str, params: Params = None) -> Row | None:
        async with self._lock:
            return await _SqliteTx(self).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = None) -> list[Row]:
        async with self._lock:
            return await _SqliteTx(self).fetchall(sql, params)

    async def migrate(self, package: str) -> list[str]:
        async def run_script(script: str, name: str) -> None:
            await self._call(_sqlite_script, self, script, name)

        async with self._lock:
            return await _apply(_SqliteTx(self), package, "sqlite", run_script)


# -- migrations ---------------------------------------------------------------


async def _apply(
    tx: Any, package: str, dialect: str, run_script: Callable[[str, str], Awaitable[None]]
) -> list[str]:
    """Apply ``package``'s pending ``migrations/<dialect>/*.sql`` in name order;
    ``run_script`` runs one file and records it, atomically, the engine's way."""
    folder = resources.files(package).joinpath("migrations", dialect)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
    )
    applied: list[str] = []
    for f in files:
        if await tx.fetchone("SELECT 1 AS x FROM schema_migrations WHERE name = %s", (f.name,)):
            continue
        await run_script(f.read_text(encoding="utf-8"), f.name)
        applied.append(f.name)
    return applied


def _sqlite_script(db: SQLiteDatabase, script: str, name: str) -> None:
    conn = db._conn
    assert conn is not None
    # The file and its record in schema_migrations commit together, or not at all.
    try:
        conn.executescript("BEGIN IMMEDIATE;\n" + script)
        conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", (name,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# -- the app ------------------------------------------------------------------


def db_of(request: Request) -> Database:
    """FastAPI dependency: the service's database (``app.state.db``)."""
    return request.app.state.db


def service_app(
    name: str,
    db: Database,
    *,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """A FastAPI app for ``refbank.<name>`` that owns ``db``: open and migrate at
    start-up, close at shutdown (``on_close`` first, for the service's own clients)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        await db.migrate(f"refbank.{name}")  # type: ignore[attr-defined]
        try:
            yield
        finally:
            if on_close is not None:
                await on_close()
            await db.close()

    app = FastAPI(title=f"refbank {name}", version="1", lifespan=lifespan)
    app.state.db = db
    return app
