"""Fixtures for the audit log tests: stores on SQLite and PostgreSQL, keys made at runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.audit._servers import CLIServer, free_port

from ramparts.audit.note import Cosigner, Signer
from ramparts.audit.store import LogStore, SQLiteStore

ORIGIN = "audit.ramparts.test/log"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """A fresh store of each kind (PostgreSQL uses the shared pg_database fixture)."""
    if request.param == "sqlite":
        s: LogStore = SQLiteStore(tmp_path / "audit.db")
    else:
        from ramparts.audit.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_database"))
    yield s
    s.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def log_signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def witness_cosigner() -> Cosigner:
    return Cosigner.generate("witness.ramparts.test/w1")


@pytest.fixture
def cli_server() -> Iterator[Callable[..., CLIServer]]:
    """Start `ramparts audit` servers; every one started is stopped after the test."""
    started: list[CLIServer] = []

    def start(args: list[str], port: int | None = None, probe: str = "/v1/checkpoint") -> CLIServer:
        server = CLIServer(args, port or free_port(), probe)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
