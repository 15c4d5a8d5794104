"""SQLite store: the embedded default.

WAL journal with ``synchronous=FULL``: every commit fsyncs the WAL, so a batch
is durable when :meth:`SQLiteStore.append` returns. A batch is one
``BEGIN IMMEDIATE`` transaction, so a crash leaves either all of it or none.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ramparts.audit.merkle.tree import LEVEL_BITS
from ramparts.audit.store.base import (
    BatchReceipt,
    ConflictingCheckpointError,
    LogStore,
    StoredCheckpoint,
    StoreError,
    StoreStateError,
    split_node_ids,
)

__all__ = ["SQLiteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tree_nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    first_index INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER NOT NULL UNIQUE,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cosignatures (
    size INTEGER NOT NULL,
    line TEXT NOT NULL,
    UNIQUE (size, line)
);
"""

# Lookup by leaf hash. It roughly halves durable append throughput (a random
# B-tree insert per entry), so a log that never serves proofs by hash can omit it.
# It is a separate table filled in hash order once per transaction: sorted
# inserts touch each B-tree page once, where an index on entries(leaf_hash)
# takes one random insert per entry (about twice the cost, measured).
LEAF_INDEX = (
    "CREATE TABLE IF NOT EXISTS leaf_index "
    "(leaf_hash BLOB PRIMARY KEY, idx INTEGER NOT NULL) WITHOUT ROWID"
)

# SQLite limits host parameters per statement (32766 since 3.32); stay well below.
_MAX_PARAMS = 900


class SQLiteStore(LogStore):
    """A log in one SQLite file. Thread-safe through one lock around one connection."""

    def __init__(
        self, path: str | Path, *, leaf_index: bool = True, read_only: bool = False
    ) -> None:
        """Open (or create) the log at ``path``.

        Args:
            leaf_index: keep the leaf-hash lookup table (built from the entries
                if it is added to an existing log).
            read_only: open for auditing: nothing is created or changed, and
                the file must exist.
        """
        self.path = Path(path)
        self._lock = threading.Lock()
        if read_only:
            if not self.path.is_file():
                raise StoreError(f"no log store at {self.path}")
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: fsync the WAL on every commit, so an acknowledged batch is on disk.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        # Once created, the index is kept up to date even if later opened without it.
        self._leaf_index = self._has_leaf_index()
        if leaf_index and not self._leaf_index and not read_only:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(LEAF_INDEX)
                self._db.execute(
                    "INSERT OR IGNORE INTO leaf_index (leaf_hash, idx) "
                    "SELECT leaf_hash, idx FROM entries ORDER BY idx"
                )
            self._leaf_index = True

    def _has_leaf_index(self) -> bool:
        return bool(
            self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leaf_index'"
            ).fetchone()
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _size_locked(self) -> int:
        (last,) = self._db.execute("SELECT max(idx) FROM entries").fetchone()
        return 0 if last is None else last + 1

    def size(self) -> int:
        with self._lock:
            return self._size_locked()

    def find_batches(self, batch_ids: Sequence[str]) -> dict[str, BatchReceipt]:
        out: dict[str, BatchReceipt] = {}
        with self._lock:
            for i in range(0, len(batch_ids), _MAX_PARAMS):
                chunk = tuple(batch_ids[i : i + _MAX_PARAMS])
                rows = self._db.execute(
                    "SELECT batch_id, first_index, count FROM batches "  # noqa: S608
                    f"WHERE batch_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                out.update((b, BatchReceipt(b, f, c, duplicate=True)) for b, f, c in rows)
        return out

    def append(
        self,
        first_index: int,
        entries: Sequence[tuple[bytes, bytes]],
        nodes: Sequence[tuple[int, bytes]],
        batches: Sequence[tuple[str, int, int]],
    ) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                size = self._size_locked()
                if size != first_index:
                    raise StoreStateError(
                        f"store has {size} entries but the writer expected {first_index}"
                    )
                db.executemany(
                    "INSERT INTO entries (idx, leaf_hash, data) VALUES (?, ?, ?)",
                    [(first_index + i, h, d) for i, (h, d) in enumerate(entries)],
                )
                db.executemany("INSERT INTO tree_nodes (id, hash) VALUES (?, ?)", nodes)
                if self._leaf_index:
                    # OR IGNORE: for a repeated entry the earliest index stays.
                    db.executemany(
                        "INSERT OR IGNORE INTO leaf_index (leaf_hash, idx) VALUES (?, ?)",
                        sorted((h, first_index + i) for i, (h, _) in enumerate(entries)),
                    )
                try:
                    db.executemany(
                        "INSERT INTO batches (batch_id, first_index, count) VALUES (?, ?, ?)",
                        batches,
                    )
                except sqlite3.IntegrityError:
                    raise StoreStateError("a batch id in this group is already stored") from None
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def read_nodes(self, ids: Sequence[int]) -> dict[int, bytes]:
        # One statement for both tables: a proof is a single round trip.
        leaves, inner = split_node_ids(ids)
        out: dict[int, bytes] = {}
        with self._lock:
            while leaves or inner:
                lchunk, leaves = leaves[:_MAX_PARAMS], leaves[_MAX_PARAMS:]
                ichunk, inner = inner[:_MAX_PARAMS], inner[_MAX_PARAMS:]
                # Only "?" placeholders are interpolated; the ids are bound parameters.
                sql = (
                    f"SELECT idx << {LEVEL_BITS}, leaf_hash FROM entries "  # noqa: S608
                    f"WHERE idx IN ({','.join('?' * len(lchunk))}) "
                    "UNION ALL SELECT id, hash FROM tree_nodes "
                    f"WHERE id IN ({','.join('?' * len(ichunk))})"
                )
                out.update(self._db.execute(sql, (*lchunk, *ichunk)).fetchall())
        return out

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT idx, data FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, end),
            ).fetchall()

    def _entry_rows_from(self, start: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        with self._lock:
            return self._db.execute(
                "SELECT idx, leaf_hash, data FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?",
                (start, limit),
            ).fetchall()

    def index_of_leaf(self, leaf_hash: bytes) -> int | None:
        query = (
            "SELECT idx FROM leaf_index WHERE leaf_hash = ?"
            if self._leaf_index
            else "SELECT min(idx) FROM entries WHERE leaf_hash = ?"  # a full scan
        )
        with self._lock:
            row = self._db.execute(query, (leaf_hash,)).fetchone()
        return row[0] if row else None

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)",
                    (size, root, note),
                )
            except sqlite3.IntegrityError:
                row = self._db.execute(
                    "SELECT root, note FROM checkpoints WHERE size = ?", (size,)
                ).fetchone()
                if row is None or row[0] != root or row[1] != note:
                    raise ConflictingCheckpointError(
                        f"a different checkpoint is already stored for size {size}"
                    ) from None

    def add_cosignature(self, size: int, line: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO cosignatures (size, line) VALUES (?, ?)", (size, line)
            )

    def _checkpoints_where(self, clause: str, params: tuple[object, ...]) -> list[StoredCheckpoint]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT size, root, note FROM checkpoints {clause}",  # noqa: S608
                params,
            ).fetchall()
            out = []
            for size, root, note in rows:
                lines = self._db.execute(
                    "SELECT line FROM cosignatures WHERE size = ? ORDER BY rowid", (size,)
                ).fetchall()
                out.append(StoredCheckpoint(size, root, note, tuple(ln for (ln,) in lines)))
        return out

    def checkpoints(self) -> list[StoredCheckpoint]:
        return self._checkpoints_where("ORDER BY size, rowid", ())

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        found = self._checkpoints_where("WHERE size = ?", (size,))
        return found[0] if found else None

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        found = self._checkpoints_where("ORDER BY size DESC LIMIT 1", ())
        return found[0] if found else None
