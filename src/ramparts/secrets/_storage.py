"""The physical store: one SQLite file of (path, opaque bytes) rows.

It knows nothing of encryption; the barrier above it encrypts every value
(paths stay readable, as in Vault, so that prefix listing works). Every write
is its own transaction with ``synchronous=FULL``, so when ``put`` returns the
row is on disk: the lease journal relies on that ordering.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


class SQLiteStorage:
    """A thread-safe key-value table in a 0600 SQLite file (WAL, fsync on commit)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY, value BLOB NOT NULL)"
        )

    def get(self, path: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM entries WHERE path = ?", (path,)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, path: str, value: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO entries (path, value) VALUES (?, ?) "
                "ON CONFLICT(path) DO UPDATE SET value = excluded.value",
                (path, value),
            )

    def delete(self, path: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries WHERE path = ?", (path,))

    def list_prefix(self, prefix: str) -> list[str]:
        """Every stored path that starts with ``prefix``, sorted."""
        # Range scan instead of LIKE, so '%' and '_' in paths are not wildcards.
        with self._lock:
            rows = self._db.execute(
                "SELECT path FROM entries WHERE path >= ? AND path < ? ORDER BY path",
                (prefix, prefix + "\U0010ffff"),
            ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
