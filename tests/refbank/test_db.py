"""The service database layer: migrations on both engines, and private SQLite files."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from refbank._db import SQLiteDatabase, open_database


def test_postgres_migrates_with_a_pool_of_one(pg_database: str) -> None:
    """The migration lock and the migrations share one connection (no second one needed)."""

    async def run() -> list[str]:
        db = open_database(pg_database, max_size=1)
        await db.open()
        try:
            first = await db.migrate("refbank.ledger")  # type: ignore[attr-defined]
            again = await db.migrate("refbank.ledger")  # type: ignore[attr-defined]
            assert again == []
            return first
        finally:
            await db.close()

    assert asyncio.run(asyncio.wait_for(run(), 30)) == ["001_journal.sql"]


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    """The database and SQLite's -wal/-shm companions are readable by their owner only."""

    async def run(path: Path) -> dict[str, int]:
        db = SQLiteDatabase(path)
        await db.open()
        try:
            await db.migrate("refbank.ledger")
            # While open, in WAL mode: the database, -wal and -shm files all exist.
            return {f.name: stat.S_IMODE(f.stat().st_mode) for f in path.parent.iterdir()}
        finally:
            await db.close()

    old = os.umask(0o022)
    try:
        modes = asyncio.run(run(tmp_path / "data" / "ledger.db"))
    finally:
        os.umask(old)
    assert {"ledger.db", "ledger.db-wal"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
