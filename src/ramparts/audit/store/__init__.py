"""Durable storage for the audit log: SQLite by default, PostgreSQL as an option.

>>> import tempfile, pathlib
>>> with open_store(pathlib.Path(tempfile.mkdtemp()) / "audit.db") as store:
...     store.size()
0
"""

from __future__ import annotations

from pathlib import Path

from ramparts.audit.store.base import (
    STORED_MIN_LEVEL,
    BatchReceipt,
    ConflictingCheckpointError,
    LogStore,
    StoredCheckpoint,
    StoreError,
    StoreStateError,
)
from ramparts.audit.store.sqlite import SQLiteStore

__all__ = [
    "STORED_MIN_LEVEL",
    "BatchReceipt",
    "ConflictingCheckpointError",
    "LogStore",
    "SQLiteStore",
    "StoreError",
    "StoreStateError",
    "StoredCheckpoint",
    "open_store",
]


def open_store(
    location: str | Path, *, leaf_index: bool = True, read_only: bool = False
) -> LogStore:
    """Open a store: a ``postgresql://`` DSN selects PostgreSQL, anything else is a SQLite path.

    ``leaf_index`` keeps an index for proofs by leaf hash; it costs append
    throughput. ``read_only`` is for auditors: nothing is created or changed.
    """
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        # Lazy: only PostgreSQL deployments need the driver loaded.
        from ramparts.audit.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(text, leaf_index=leaf_index, read_only=read_only)
    return SQLiteStore(location, leaf_index=leaf_index, read_only=read_only)
