"""PostgreSQL store, for deployments that outgrow one SQLite file.

Same tables and contract as :mod:`ramparts.audit.store.sqlite`. A batch is one
transaction under a transaction-scoped advisory lock (so two writers can never
interleave), and PostgreSQL's default ``synchronous_commit=on`` makes the
commit durable before :meth:`PostgresStore.append` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import psycopg

from ramparts.audit.store.base import (
    BatchReceipt,
    ConflictingCheckpointError,
    LogStore,
    StoredCheckpoint,
    StoreStateError,
    leaf_node_id,
    split_node_ids,
)

__all__ = ["PostgresStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
    idx BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_tree_nodes (id BIGINT PRIMARY KEY, hash BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS audit_batches (
    batch_id TEXT PRIMARY KEY,
    first_index BIGINT NOT NULL,
    count BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size BIGINT NOT NULL UNIQUE,
    root BYTEA NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_cosignatures (
    seq BIGSERIAL PRIMARY KEY,
    size BIGINT NOT NULL,
    line TEXT NOT NULL,
    UNIQUE (size, line)
);
"""

# Lookup by leaf hash; optional for the same reason as in the SQLite store.
LEAF_INDEX = "CREATE INDEX IF NOT EXISTS audit_entries_by_leaf_hash ON audit_entries (leaf_hash)"

# Arbitrary constant naming the audit log's writer lock (pg_advisory_xact_lock).
_WRITER_LOCK = 0x52_41_4D_50_41_55_44


class PostgresStore(LogStore):
    """A log in PostgreSQL tables (prefixed ``audit_``). The DSN is never shown in its repr."""

    def __init__(self, dsn: str, *, leaf_index: bool = True, read_only: bool = False) -> None:
        self._lock = threading.Lock()
        self._db = psycopg.connect(dsn, autocommit=True)
        if read_only:
            # For auditors: every transaction of this session refuses writes.
            self._db.execute("SET default_transaction_read_only = on")
            return
        with self._db.transaction():
            self._db.execute(SCHEMA)
            if leaf_index:
                self._db.execute(LEAF_INDEX)

    def __repr__(self) -> str:
        return "PostgresStore(<dsn hidden>)"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _size_locked(self) -> int:
        row = self._db.execute("SELECT max(idx) FROM audit_entries").fetchone()
        return 0 if row is None or row[0] is None else row[0] + 1

    def size(self) -> int:
        with self._lock:
            return self._size_locked()

    def find_batches(self, batch_ids: Sequence[str]) -> dict[str, BatchReceipt]:
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, first_index, count FROM audit_batches WHERE batch_id = ANY(%s)",
                (list(batch_ids),),
            ).fetchall()
        return {b: BatchReceipt(b, f, c, duplicate=True) for b, f, c in rows}

    def append(
        self,
        first_index: int,
        entries: Sequence[tuple[bytes, bytes]],
        nodes: Sequence[tuple[int, bytes]],
        batches: Sequence[tuple[str, int, int]],
    ) -> None:
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))
            size = self._size_locked()
            if size != first_index:
                raise StoreStateError(
                    f"store has {size} entries but the writer expected {first_index}"
                )
            with self._db.cursor() as cur:
                with cur.copy("COPY audit_entries (idx, leaf_hash, data) FROM STDIN") as copy:
                    for i, (h, d) in enumerate(entries):
                        copy.write_row((first_index + i, h, d))
                with cur.copy("COPY audit_tree_nodes (id, hash) FROM STDIN") as copy:
                    for row in nodes:
                        copy.write_row(row)
                try:
                    cur.executemany(
                        "INSERT INTO audit_batches (batch_id, first_index, count) "
                        "VALUES (%s, %s, %s)",
                        batches,
                    )
                except psycopg.errors.UniqueViolation:
                    raise StoreStateError("a batch id in this group is already stored") from None

    def read_nodes(self, ids: Sequence[int]) -> dict[int, bytes]:
        leaves, inner = split_node_ids(ids)
        with self._lock:
            leaf_rows = self._db.execute(
                "SELECT idx, leaf_hash FROM audit_entries WHERE idx = ANY(%s)", (leaves,)
            ).fetchall()
            rows = self._db.execute(
                "SELECT id, hash FROM audit_tree_nodes WHERE id = ANY(%s)", (inner,)
            ).fetchall()
        out = {leaf_node_id(i): bytes(h) for i, h in leaf_rows}
        out.update((i, bytes(h)) for i, h in rows)
        return out

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, data FROM audit_entries WHERE idx >= %s AND idx < %s ORDER BY idx",
                (start, end),
            ).fetchall()
        return [(i, bytes(d)) for i, d in rows]

    def _entry_rows_from(self, start: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT idx, leaf_hash, data FROM audit_entries WHERE idx >= %s "
                "ORDER BY idx LIMIT %s",
                (start, limit),
            ).fetchall()
        return [(i, bytes(h), bytes(d)) for i, h, d in rows]

    def index_of_leaf(self, leaf_hash: bytes) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT min(idx) FROM audit_entries WHERE leaf_hash = %s", (leaf_hash,)
            ).fetchone()
        return row[0] if row else None

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self._lock:
            inserted = self._db.execute(
                "INSERT INTO audit_checkpoints (size, root, note) VALUES (%s, %s, %s) "
                "ON CONFLICT (size) DO NOTHING",
                (size, root, note),
            ).rowcount
            if inserted:
                return
            row = self._db.execute(
                "SELECT root, note FROM audit_checkpoints WHERE size = %s", (size,)
            ).fetchone()
        if row is None or bytes(row[0]) != root or row[1] != note:
            raise ConflictingCheckpointError(
                f"a different checkpoint is already stored for size {size}"
            )

    def add_cosignature(self, size: int, line: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO audit_cosignatures (size, line) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (size, line),
            )

    def _checkpoints_where(self, clause: str, params: tuple[object, ...]) -> list[StoredCheckpoint]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT size, root, note FROM audit_checkpoints {clause}",  # noqa: S608
                params,
            ).fetchall()
            out = []
            for size, root, note in rows:
                lines = self._db.execute(
                    "SELECT line FROM audit_cosignatures WHERE size = %s ORDER BY seq", (size,)
                ).fetchall()
                out.append(StoredCheckpoint(size, bytes(root), note, tuple(ln for (ln,) in lines)))
        return out

    def checkpoints(self) -> list[StoredCheckpoint]:
        return self._checkpoints_where("ORDER BY size", ())

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        found = self._checkpoints_where("WHERE size = %s", (size,))
        return found[0] if found else None

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        found = self._checkpoints_where("ORDER BY size DESC LIMIT 1", ())
        return found[0] if found else None
