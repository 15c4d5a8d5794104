"""The log server and a witness as real processes: checkpoints get cosigned over HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx
from tests.audit._servers import CLIServer, wait_for
from typer.testing import CliRunner

from ramparts.audit.cli import app
from ramparts.audit.keys import write_private_key
from ramparts.audit.note import Cosigner, Signer, UnverifiedNoteError, verify_note


def test_witnessed_log_end_to_end(tmp_path: Path, cli_server: Callable[..., CLIServer]) -> None:
    """Entries ingested over HTTP end up under a log-signed, witness-cosigned checkpoint.

    Then `verify` passes with the witness key required and the witness's own
    view of the log (fetched from its monitoring URL) as a trusted checkpoint;
    after a rollback to an older copy, the same command fails.
    """
    signer, cosigner = Signer.generate("e2e.ramparts.test/log"), Cosigner.generate("w.test/w1")
    write_private_key(tmp_path / "log.key", signer)
    write_private_key(tmp_path / "w.key", cosigner)
    log_vkey, w_vkey = signer.verifier().vkey, cosigner.verifier().vkey
    origin_hash = hashlib.sha256(signer.name.encode()).hexdigest()

    witness = cli_server(
        [
            "witness",
            "--state",
            str(tmp_path / "w.db"),
            "--key-file",
            str(tmp_path / "w.key"),
            "--log",
            f"{signer.name}={log_vkey}",
        ],
        probe=f"/{origin_hash}/checkpoint",
    )
    log = cli_server(
        [
            "serve",
            "--db",
            str(tmp_path / "audit.db"),
            "--key-file",
            str(tmp_path / "log.key"),
            "--checkpoint-every",
            "10",
            "--checkpoint-interval-ms",
            "100",
            "--no-masking",
            "--witness",
            f"{witness.url}={w_vkey}",
        ],
    )
    with httpx.Client(base_url=log.url, timeout=5) as c:
        for b in range(3):
            entries = [{"type": "login.failed", "b": b, "i": i} for i in range(7)]
            r = c.post("/v1/ingest", json={"batch_id": f"b{b}", "entries": entries})
            assert r.json() == {"batch_id": f"b{b}", "first_index": 7 * b, "count": 7}

        def cosigned_at_21() -> bool:
            note = c.get("/v1/checkpoint")
            if note.status_code != 200 or "\n21\n" not in note.text:
                return False
            try:  # published first, cosigned a moment later
                verify_note(note.content, [signer.verifier(), cosigner.verifier()])
            except UnverifiedNoteError:
                return False
            return True

        wait_for(cosigned_at_21, "a witness-cosigned checkpoint of size 21")

    log.stop()
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--db",
            str(tmp_path / "audit.db"),
            "--log-key",
            log_vkey,
            "--witness-key",
            w_vkey,
            "--witness-url",
            witness.url,
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "OK: 21 entries" in result.stdout

    # Roll the log back to its first 7 entries (a self-consistent older copy).
    import sqlite3

    con = sqlite3.connect(tmp_path / "audit.db")
    con.execute("DELETE FROM entries WHERE idx >= 7")
    con.execute("DELETE FROM checkpoints WHERE size > 7")
    con.execute("DELETE FROM cosignatures WHERE size > 7")
    con.commit()
    con.close()
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--db",
            str(tmp_path / "audit.db"),
            "--log-key",
            log_vkey,
            "--witness-url",
            witness.url,
        ],
    )
    assert result.exit_code == 1
    assert "is beyond the 7 stored entries: log rolled back" in result.stderr


def test_serve_from_a_data_folder(tmp_path: Path, cli_server: Callable[..., CLIServer]) -> None:
    """`serve --data DIR` makes its key on first run (0600), publishes its vkey, and verifies."""
    data = tmp_path / "audit-data"
    server = cli_server(["serve", "--data", str(data), "--checkpoint-interval-ms", "50"])
    with httpx.Client(base_url=server.url, timeout=5) as c:
        r = c.post("/v1/ingest", json={"batch_id": "x", "entries": [{"a": 1}, {"b": 2}]})
        assert r.status_code == 200
        wait_for(lambda: "\n2\n" in c.get("/v1/checkpoint").text, "a checkpoint of size 2")
    server.stop()
    assert (data / "log.key").stat().st_mode & 0o777 == 0o600
    vkey = (data / "log.vkey").read_text().strip()
    assert vkey.startswith("ramparts.local/audit+")
    result = CliRunner().invoke(
        app, ["verify", "--db", str(data / "audit.db"), "--log-key", str(data / "log.vkey")]
    )
    assert result.exit_code == 0, result.stderr
    assert "OK: 2 entries" in result.stdout


def test_serve_without_a_store_is_a_usage_error() -> None:
    """Neither --data nor --db/--key-file: exit code 2 and a hint."""
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: give --data, or both --db and --key-file")
