"""Shared fixtures: real PostgreSQL, real Redis, the public conformance suites.

Tests that need PostgreSQL or Redis skip when the service is unreachable on a
developer's machine, and fail when ``RAMPARTS_REQUIRE_SERVICES=1`` (CI sets it),
so a missing service can never turn a red run green.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONFORMANCE = Path(os.environ.get("RAMPARTS_CONFORMANCE", REPO.parent / "shared" / "conformance"))
PG_ADMIN_DSN = os.environ.get("RAMPARTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RAMPARTS_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _services_required() -> bool:
    return os.environ.get("RAMPARTS_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is unreachable ({exc.__class__.__name__}: {exc})"
    if _services_required():
        pytest.fail(f"{message}; RAMPARTS_REQUIRE_SERVICES=1 so this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The folder of public third-party suites (../shared/conformance)."""
    if not CONFORMANCE.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"conformance suites missing at {CONFORMANCE}; CI must have them")
        pytest.skip(f"CONFORMANCE SUITES MISSING at {CONFORMANCE}: conformance tests not run")
    return CONFORMANCE


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of a PostgreSQL superuser; the session fails or skips if unreachable."""
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {PG_ADMIN_DSN}", exc)
    return PG_ADMIN_DSN


@pytest.fixture
def pg_database(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database for this test; returns its superuser DSN; dropped after."""
    import psycopg
    from psycopg import sql

    name = f"rp_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def redis_url() -> str:
    """URL of a reachable Redis; the test fails or skips if there is none."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; every key under it is deleted after."""
    import redis

    prefix = f"rp-test:{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
