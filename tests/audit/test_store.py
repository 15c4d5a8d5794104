"""Durable stores (SQLite and PostgreSQL) and the append path on top of them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ramparts.audit.log import AuditLog, BatchError, canonical_entry
from ramparts.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from ramparts.audit.note import Signer
from ramparts.audit.store import ConflictingCheckpointError, LogStore, SQLiteStore, StoreStateError


def _events(n: int, tag: str = "e") -> list[dict[str, object]]:
    return [{"type": "authz.denied", "seq": i, "tag": tag} for i in range(n)]


class TestAppend:
    def test_batches_get_consecutive_indexes(self, store: LogStore, log_signer: Signer) -> None:
        """Each batch is acknowledged with its first index; entries read back in order."""
        log = AuditLog(store, log_signer)
        a = log.append("b1", _events(3))
        b = log.append("b2", _events(2, "x"))
        assert (a.first_index, a.count, b.first_index, b.count) == (0, 3, 3, 2)
        rows = store.entries(0, 5)
        assert [i for i, _ in rows] == [0, 1, 2, 3, 4]
        assert rows[3][1] == canonical_entry({"type": "authz.denied", "seq": 0, "tag": "x"})

    def test_resent_batch_is_idempotent(self, store: LogStore, log_signer: Signer) -> None:
        """Re-sending a batch id returns the original indexes and appends nothing."""
        log = AuditLog(store, log_signer)
        log.append("b1", _events(3))
        first = log.append("b2", _events(2))
        again = log.append("b2", _events(7, "different"))
        assert (again.first_index, again.count, again.duplicate) == (3, 2, True)
        assert first.duplicate is False
        assert store.size() == 5 == log.size

    def test_store_refuses_a_stored_batch_id(self, store: LogStore) -> None:
        """The store itself refuses a batch id it already holds, and writes nothing."""
        store.append(0, [(leaf_hash(b"x"), b"x")], [], [("b", 0, 1)])
        with pytest.raises(StoreStateError, match="already stored"):
            store.append(1, [(leaf_hash(b"y"), b"y")], [], [("b", 1, 1)])
        assert store.size() == 1

    def test_concurrent_appends_share_commits(self, store: LogStore, log_signer: Signer) -> None:
        """Concurrent batches (some re-sent) get disjoint, contiguous indexes; each id once."""
        import threading

        log = AuditLog(store, log_signer)
        receipts: list = []
        barrier = threading.Barrier(8)

        def send(n: int) -> None:
            barrier.wait()
            for k in range(5):
                receipts.append(log.append(f"c{n % 4}-{k}", _events(3, f"{n % 4}-{k}")))

        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        originals = {r.batch_id: r for r in receipts if not r.duplicate}
        assert len(originals) == 20
        assert len(receipts) == 40
        for r in receipts:  # a re-sent batch is told exactly where the original landed
            assert (r.first_index, r.count) == (
                originals[r.batch_id].first_index,
                originals[r.batch_id].count,
            )
        spans = sorted((r.first_index, r.count) for r in originals.values())
        assert spans == [(3 * i, 3) for i in range(20)]
        assert store.size() == 60 == log.size

    def test_store_refuses_unexpected_first_index(self, store: LogStore) -> None:
        """A writer that is out of step with the store (e.g. a second writer) is refused."""
        with pytest.raises(StoreStateError, match="store has 0 entries but the writer expected 4"):
            store.append(4, [(leaf_hash(b"x"), b"x")], [], [("b", 4, 1)])
        assert store.size() == 0

    @pytest.mark.parametrize(
        ("batch_id", "entries", "why"),
        [
            ("", [{}], "non-empty"),
            ("b", [], "want 1..10000"),
            ("b", [1], r"entries\[0\]: entry must be a JSON object"),
            ("b", [{"x": float("nan")}], "strict JSON"),
            ("b\n", [{}], "non-printable"),
        ],
    )
    def test_malformed_batches_write_nothing(
        self, sqlite_path: Path, log_signer: Signer, batch_id: str, entries: list, why: str
    ) -> None:
        """Bad batches are rejected with a reason naming the field, and nothing is stored."""
        log = AuditLog(SQLiteStore(sqlite_path), log_signer)
        with pytest.raises(BatchError, match=why):
            log.append(batch_id, entries)
        assert log.store.size() == 0

    def test_canonical_bytes_path_matches_dicts(self, tmp_path: Path, log_signer: Signer) -> None:
        """Appending pre-encoded canonical bytes builds the same tree as appending the dicts."""
        by_dict = AuditLog(SQLiteStore(tmp_path / "d.db"), log_signer)
        by_bytes = AuditLog(SQLiteStore(tmp_path / "b.db"), log_signer)
        by_dict.append("x", _events(5))
        by_bytes.append_canonical("x", [canonical_entry(e) for e in _events(5)])
        assert by_dict.root() == by_bytes.root()
        with pytest.raises(BatchError, match="must be bytes"):
            by_bytes.append_canonical("y", ["not bytes"])  # type: ignore[list-item]

    def test_state_survives_reopen(self, sqlite_path: Path, log_signer: Signer) -> None:
        """A reopened log rebuilds the same root from stored nodes and keeps appending correctly."""
        log = AuditLog(SQLiteStore(sqlite_path), log_signer)
        for b in range(5):
            log.append(f"b{b}", _events(7, str(b)))
        root = log.root()
        log.store.close()
        reopened = AuditLog(SQLiteStore(sqlite_path), log_signer)
        assert (reopened.size, reopened.root()) == (35, root)
        reopened.append("b5", _events(1))
        assert reopened.root_at(35) == root


class TestProofsFromStore:
    def test_inclusion_and_consistency(self, store: LogStore, log_signer: Signer) -> None:
        """Proofs read from the durable store verify for many (index, size) pairs."""
        log = AuditLog(store, log_signer)
        roots = {}
        for b in range(9):
            log.append(f"b{b}", _events(b + 1, str(b)))
            roots[log.size] = log.root()
        entries = store.entries(0, log.size)
        for size, root in roots.items():
            for index in range(0, size, 3):
                proof = log.inclusion_proof(index, size)
                verify_inclusion(index, size, leaf_hash(entries[index][1]), proof, root)
            for old, old_root in roots.items():
                if old <= size:
                    verify_consistency(old, size, log.consistency_proof(old, size), old_root, root)

    def test_leaf_lookup(self, store: LogStore, log_signer: Signer) -> None:
        """An entry can be found by its leaf hash."""
        log = AuditLog(store, log_signer)
        log.append("b", _events(4))
        data = store.entries(2, 3)[0][1]
        assert store.index_of_leaf(leaf_hash(data)) == 2
        assert store.index_of_leaf(leaf_hash(b"absent")) is None

    def test_index_added_later_covers_old_entries(
        self, sqlite_path: Path, log_signer: Signer
    ) -> None:
        """Turning the leaf index on for an existing log indexes the entries already there."""
        log = AuditLog(SQLiteStore(sqlite_path, leaf_index=False), log_signer)
        log.append("a", [{"old": 1}])
        log.store.close()
        reopened = SQLiteStore(sqlite_path, leaf_index=True)
        assert reopened.index_of_leaf(leaf_hash(canonical_entry({"old": 1}))) == 0
        reopened.close()

    def test_read_only_open_changes_nothing(self, sqlite_path: Path, log_signer: Signer) -> None:
        """An auditor's read-only open creates no table and refuses writes."""
        log = AuditLog(SQLiteStore(sqlite_path, leaf_index=False), log_signer)
        log.append("a", [{"n": 1}])
        log.store.close()
        ro = SQLiteStore(sqlite_path, read_only=True)
        assert ro.size() == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ro.append(1, [(leaf_hash(b"x"), b"x")], [], [("b", 1, 1)])
        ro.close()
        raw = sqlite3.connect(sqlite_path)
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        raw.close()
        assert "leaf_index" not in tables

    @pytest.mark.parametrize("indexed", [True, False])
    def test_repeated_entry_resolves_to_first_index(
        self, sqlite_path: Path, log_signer: Signer, indexed: bool
    ) -> None:
        """With or without the leaf index, a repeated entry is found at its first index."""
        log = AuditLog(SQLiteStore(sqlite_path, leaf_index=indexed), log_signer)
        log.append("a", [{"same": 1}, {"other": 2}])
        log.append("b", [{"same": 1}])
        assert log.store.index_of_leaf(leaf_hash(canonical_entry({"same": 1}))) == 0
        assert log.store.index_of_leaf(leaf_hash(canonical_entry({"other": 2}))) == 1


class TestCheckpoints:
    def test_one_checkpoint_per_size(self, store: LogStore, log_signer: Signer) -> None:
        """Storing the same checkpoint twice is a no-op; another one for that size is refused."""
        log = AuditLog(store, log_signer)
        log.append("b", _events(3))
        cp = log.publish_checkpoint()
        store.add_checkpoint(cp.size, cp.root, cp.note)
        with pytest.raises(ConflictingCheckpointError, match="size 3"):
            store.add_checkpoint(cp.size, bytes(32), cp.note)
        assert [c.size for c in store.checkpoints()] == [3]

    def test_unique_constraint_in_schema(self, sqlite_path: Path, log_signer: Signer) -> None:
        """The database itself refuses a second checkpoint row for one size."""
        log = AuditLog(SQLiteStore(sqlite_path), log_signer)
        log.append("b", _events(1))
        log.publish_checkpoint()
        raw = sqlite3.connect(sqlite_path)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            raw.execute("INSERT INTO checkpoints (size, root, note) VALUES (1, x'00', 'n')")
        raw.close()

    def test_cosignatures_attach_to_their_checkpoint(
        self, store: LogStore, log_signer: Signer
    ) -> None:
        """Cosignature lines are kept per checkpoint, once each, in arrival order."""
        log = AuditLog(store, log_signer)
        log.append("b", _events(2))
        cp = log.publish_checkpoint()
        store.add_cosignature(cp.size, "\u2014 w1 AAAA\n")
        store.add_cosignature(cp.size, "\u2014 w1 AAAA\n")
        store.add_cosignature(cp.size, "\u2014 w2 BBBB\n")
        latest = store.latest_checkpoint()
        assert latest is not None
        assert latest.cosignatures == ("\u2014 w1 AAAA\n", "\u2014 w2 BBBB\n")
        assert latest.full_note() == cp.note + "\u2014 w1 AAAA\n\u2014 w2 BBBB\n"

    def test_log_refuses_to_start_on_truncated_store(
        self, sqlite_path: Path, log_signer: Signer
    ) -> None:
        """A store whose entries fall short of its latest checkpoint is not extended."""
        log = AuditLog(SQLiteStore(sqlite_path), log_signer)
        log.append("b", _events(4))
        log.publish_checkpoint()
        log.store.close()
        raw = sqlite3.connect(sqlite_path)
        raw.execute("DELETE FROM entries WHERE idx = 3")
        raw.commit()
        raw.close()
        with pytest.raises(StoreStateError, match="truncated"):
            AuditLog(SQLiteStore(sqlite_path), log_signer)


def test_verify_passes_on_each_store(store: LogStore, log_signer: Signer) -> None:
    """The offline verifier works the same over SQLite and PostgreSQL."""
    from ramparts.audit.verify import verify_log

    log = AuditLog(store, log_signer)
    for b in range(4):
        log.append(f"b{b}", _events(9, str(b)))
        log.publish_checkpoint()
    report = verify_log(store, [log_signer.verifier()])
    assert report.ok, report.findings
    assert (report.entries, report.checkpoints) == (36, 4)


def test_postgres_read_only_audit(pg_database: str, log_signer: Signer) -> None:
    """An auditor's read-only PostgreSQL session verifies the log and cannot write to it."""
    import psycopg

    from ramparts.audit.store.postgres import PostgresStore
    from ramparts.audit.verify import verify_log

    log = AuditLog(PostgresStore(pg_database), log_signer)
    log.append("a", _events(5))
    log.publish_checkpoint()
    log.store.close()
    ro = PostgresStore(pg_database, read_only=True)
    try:
        assert verify_log(ro, [log_signer.verifier()]).ok
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            ro.add_cosignature(5, "\u2014 w AAAA\n")
    finally:
        ro.close()
