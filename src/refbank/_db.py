"""A service's own database: an async connection pool and ordered SQL migrations.

Each service ships ``migrations/NNN_name.sql`` beside its code; :func:`migrate`
applies the ones not yet recorded in ``schema_migrations``, each in its own
transaction, under an advisory lock so two replicas starting together do not
race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources

import psycopg
from fastapi import FastAPI, Request
from psycopg_pool import AsyncConnectionPool

# Any constant works; it only has to be the same for every replica of a service.
_MIGRATION_LOCK = 0x5241_4D50  # "RAMP"


async def migrate(pool: AsyncConnectionPool, package: str) -> list[str]:
    """Apply ``package``'s pending migrations; return the names applied."""
    files = sorted(
        (
            f
            for f in resources.files(package).joinpath("migrations").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            await conn.commit()
            for f in files:
                cur = await conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE name = %s", (f.name,)
                )
                if await cur.fetchone():
                    continue
                async with conn.transaction():
                    await conn.execute(f.read_text(encoding="utf-8"))  # type: ignore[arg-type]
                    await conn.execute(
                        "INSERT INTO schema_migrations (name) VALUES (%s)", (f.name,)
                    )
                applied.append(f.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            await conn.commit()
    return applied


async def connection(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """FastAPI dependency: a connection from the service's pool (``app.state.pool``)."""
    async with request.app.state.pool.connection() as conn:
        yield conn


def service_app(
    name: str,
    pool: AsyncConnectionPool,
    *,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """A FastAPI app for ``refbank.<name>`` that owns ``pool``: open and migrate at
    start-up, close at shutdown (``on_close`` first, for the service's own clients)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        await migrate(pool, f"refbank.{name}")
        try:
            yield
        finally:
            if on_close is not None:
                await on_close()
            await pool.close()

    app = FastAPI(title=f"refbank {name}", version="1", lifespan=lifespan)
    app.state.pool = pool
    return app


def open_pool(conninfo: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """A pool that is not yet open; the service opens it at start-up.

    Connections are in autocommit mode: a transaction is always an explicit
    ``async with conn.transaction()``, so no request holds one open across a
    call to another service.
    """
    return AsyncConnectionPool(
        conninfo, min_size=min_size, max_size=max_size, open=False, kwargs={"autocommit": True}
    )


def is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.errors.UniqueViolation)
