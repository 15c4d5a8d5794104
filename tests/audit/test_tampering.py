"""`ramparts audit verify` detects each kind of tampering and says what and where.

The fixture log has 24 entries in three batches, a checkpoint after each
batch (sizes 8, 16, 24), and each checkpoint cosigned by a witness. Each test
tampers with the SQLite file directly, as an attacker with disk access would.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ramparts.audit.cli import app
from ramparts.audit.log import AuditLog, canonical_entry
from ramparts.audit.merkle import leaf_hash
from ramparts.audit.note import Cosigner, Signer
from ramparts.audit.store import SQLiteStore
from ramparts.audit.witness import Witness, WitnessState


@dataclass
class Fixture:
    db: Path
    signer: Signer
    cosigner: Cosigner
    witness: Witness
    snapshot_16: Path

    def verify(self, *extra: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(
            app,
            [
                "verify",
                "--db",
                str(self.db),
                "--log-key",
                self.signer.verifier().vkey,
                "--witness-key",
                self.cosigner.verifier().vkey,
                *extra,
            ],
        )
        return result.exit_code, result.stdout, result.stderr

    def sql(self, *statements: str, params: tuple = ()) -> None:
        db = sqlite3.connect(self.db)
        for s in statements:
            db.execute(s, params)
        db.commit()
        db.close()


def _cosign(log: AuditLog, witness: Witness, old: int) -> int:
    cp = log.publish_checkpoint()
    proof = log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
    import base64

    body = f"old {old}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    line = witness.add_checkpoint((body + "\n" + cp.note).encode())
    log.store.add_cosignature(cp.size, line)
    return cp.size


@pytest.fixture
def fx(tmp_path: Path, log_signer: Signer, witness_cosigner: Cosigner) -> Fixture:
    db = tmp_path / "audit.db"
    log = AuditLog(SQLiteStore(db), log_signer)
    witness = Witness(
        witness_cosigner, {log.origin: [log_signer.verifier()]}, WitnessState(tmp_path / "w.db")
    )
    snapshot = tmp_path / "snapshot-16.db"
    old = 0
    for b in range(3):
        log.append(f"batch-{b}", [{"type": "payment.denied", "batch": b, "n": i} for i in range(8)])
        old = _cosign(log, witness, old)
        if old == 16:
            # A consistent copy, as a backup taken at size 16 would be.
            src = sqlite3.connect(db)
            src.execute("VACUUM INTO ?", (str(snapshot),))
            src.close()
    log.store.close()
    return Fixture(db, log_signer, witness_cosigner, witness, snapshot)


def test_untampered_log_verifies(fx: Fixture) -> None:
    """The baseline passes: every entry, checkpoint and cosignature checks out."""
    code, out, err = fx.verify()
    assert code == 0, err
    assert "OK: 24 entries, 3 checkpoints verified" in out


def test_modified_entry(fx: Fixture) -> None:
    """Changing an entry's bytes is caught at that entry, and the checkpoint over it fails."""
    fx.sql("UPDATE entries SET data = ? WHERE idx = 5", params=(b'{"type":"payment.allowed"}',))
    code, _, err = fx.verify()
    assert code == 1
    assert "entry 5: data does not match its stored leaf hash" in err
    assert "checkpoint size 8: recomputed root" in err


def test_modified_entry_with_recomputed_leaf_hash(fx: Fixture) -> None:
    """Rewriting the leaf hash too is caught by the signed root, bounded to [0, 8)."""
    data = canonical_entry({"type": "payment.allowed"})
    fx.sql(
        "UPDATE entries SET data = ?, leaf_hash = ? WHERE idx = 5", params=(data, leaf_hash(data))
    )
    code, _, err = fx.verify()
    assert code == 1
    assert "entries diverge within [0, 8)" in err


def test_deleted_entry(fx: Fixture) -> None:
    """Deleting a row leaves a gap that is named by index."""
    fx.sql("DELETE FROM entries WHERE idx = 12")
    code, _, err = fx.verify()
    assert code == 1
    assert "entry 12 is missing (next stored entry is 13)" in err
    assert err.count("is missing") == 1


def test_reordered_entries(fx: Fixture) -> None:
    """Swapping two entries (with their hashes) changes the tree from that checkpoint on."""
    fx.sql(
        "UPDATE entries SET idx = -1 WHERE idx = 9",
        "UPDATE entries SET idx = 9 WHERE idx = 10",
        "UPDATE entries SET idx = 10 WHERE idx = -1",
    )
    code, _, err = fx.verify()
    assert code == 1
    assert "checkpoint size 16: recomputed root" in err
    assert "entries diverge within [8, 16)" in err
    assert "checkpoint size 8" not in err


def test_inserted_entry(fx: Fixture) -> None:
    """Inserting a well-formed entry in the middle shifts every later leaf: caught at size 8."""
    data = canonical_entry({"type": "payment.allowed", "forged": True})
    fx.sql(
        "UPDATE entries SET idx = idx + 1000 WHERE idx >= 3",
        "UPDATE entries SET idx = idx - 999 WHERE idx >= 1000",
    )
    fx.sql(
        "INSERT INTO entries (idx, leaf_hash, data) VALUES (3, ?, ?)",
        params=(leaf_hash(data), data),
    )
    code, _, err = fx.verify()
    assert code == 1
    assert "checkpoint size 8: recomputed root" in err
    assert "entries diverge within [0, 8)" in err


def test_truncated_log(fx: Fixture) -> None:
    """Dropping the tail is caught: the last checkpoint is beyond the stored entries."""
    fx.sql("DELETE FROM entries WHERE idx >= 20")
    code, _, err = fx.verify()
    assert code == 1
    assert "checkpoint size 24 is beyond the 20 stored entries: log truncated" in err


def test_rolled_back_log(fx: Fixture, tmp_path: Path) -> None:
    """Restoring an old, self-consistent copy is caught by the witness's own checkpoint."""
    shutil.copy(fx.snapshot_16, fx.db)
    code, _, _ = fx.verify()
    assert code == 0, "the old copy is internally consistent; only an outside view can tell"
    origin_hash = __import__("hashlib").sha256(fx.signer.name.encode()).hexdigest()
    held = tmp_path / "witness-checkpoint.txt"
    held.write_text(fx.witness.latest_checkpoint(origin_hash) or "")
    code, _, err = fx.verify("--trusted-checkpoint", str(held))
    assert code == 1
    assert "trusted checkpoint #1 (size 24) is beyond the 16 stored entries: log rolled back" in err


def test_forked_checkpoints(fx: Fixture, tmp_path: Path) -> None:
    """Two signed checkpoints for one size with different roots are reported as a fork."""
    other = AuditLog(SQLiteStore(tmp_path / "other.db"), fx.signer)
    other.append("x", [{"forked": i} for i in range(16)])
    forged = other.publish_checkpoint()
    # The attacker must first defeat the UNIQUE constraint by rebuilding the table.
    fx.sql(
        "CREATE TABLE cp2 (size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL)",
        "INSERT INTO cp2 SELECT size, root, note FROM checkpoints",
        "DROP TABLE checkpoints",
        "ALTER TABLE cp2 RENAME TO checkpoints",
    )
    fx.sql("INSERT INTO checkpoints VALUES (16, ?, ?)", params=(forged.root, forged.note))
    code, _, err = fx.verify()
    assert code == 1
    assert "fork: 2 signed checkpoints for size 16 with different roots" in err


def test_forked_view_from_outside(fx: Fixture, tmp_path: Path) -> None:
    """A checkpoint shown to a client for a size the log has, with another root, is a fork."""
    other = AuditLog(SQLiteStore(tmp_path / "other.db"), fx.signer)
    other.append("x", [{"forked": i} for i in range(16)])
    held = tmp_path / "client-view.txt"
    held.write_text(other.publish_checkpoint().note)
    code, _, err = fx.verify("--trusted-checkpoint", str(held))
    assert code == 1
    assert "fork: trusted checkpoint #1 and the stored checkpoint for size 16" in err


def test_forged_checkpoint_signature(fx: Fixture) -> None:
    """A checkpoint rewritten without the log key fails its signature."""
    fx.sql("UPDATE checkpoints SET note = replace(note, '\n16\n', '\n17\n') WHERE size = 16")
    code, _, err = fx.verify()
    assert code == 1
    assert "checkpoint size 16: invalid signature by" in err


def test_deleted_checkpoints(fx: Fixture) -> None:
    """Removing every checkpoint leaves entries nothing vouches for: an error, not a pass."""
    fx.sql("DELETE FROM checkpoints", "DELETE FROM cosignatures")
    code, _, err = fx.verify()
    assert code == 1
    assert "no signed checkpoint covers the 24 stored entries" in err


def test_appended_without_checkpoint_is_a_warning(fx: Fixture, log_signer: Signer) -> None:
    """Entries beyond the latest checkpoint are normal for a live log: a warning only."""
    log = AuditLog(SQLiteStore(fx.db), log_signer)
    log.append("late", [{"late": True}])
    log.store.close()
    code, out, err = fx.verify()
    assert code == 0, err
    assert "Warning: [uncovered] entries [24, 25) are not yet under a checkpoint" in err
    assert "OK: 25 entries" in out


def test_missing_witness_cosignature(fx: Fixture) -> None:
    """The latest checkpoint must carry the witness's cosignature."""
    fx.sql("DELETE FROM cosignatures WHERE size = 24")
    code, _, err = fx.verify()
    assert code == 1
    assert "checkpoint size 24: no valid cosignature by witness" in err


def test_tampered_tree_nodes(fx: Fixture) -> None:
    """Corrupting the stored proof nodes is caught even when the entries are intact."""
    fx.sql("UPDATE tree_nodes SET hash = zeroblob(32) WHERE id = ?", params=((2 << 6) | 3,))
    code, _, err = fx.verify()
    assert code == 1
    assert "stored tree node at level 3 index 2 (entries [16, 24)) does not match" in err


def test_usage_errors(fx: Fixture, tmp_path: Path) -> None:
    """A missing store or a malformed key is an error on stderr with exit code 1."""
    result = CliRunner().invoke(
        app, ["verify", "--db", str(tmp_path / "none.db"), "--log-key", "x+1+2"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no log store at")
    result = CliRunner().invoke(
        app, ["verify", "--db", str(fx.db), "--log-key", "bad+00000000+AAAA"]
    )
    assert result.exit_code == 1
    assert "Error: vkey" in result.stderr
