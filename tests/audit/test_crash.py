"""kill -9 of the log server under load loses no acknowledged entry and leaves a verifiable tree.

The server is a real subprocess serving on 127.0.0.1; clients append over real
sockets from several threads while it is killed with SIGKILL, then it is
restarted on the same database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tests.audit._servers import CLIServer, free_port, wait_for
from typer.testing import CliRunner

from ramparts.audit.cli import app
from ramparts.audit.keys import write_private_key
from ramparts.audit.log import canonical_entry
from ramparts.audit.note import Signer

pytestmark = pytest.mark.timeout(90)

CLIENTS = 4
BATCH = 50
ACKED_BEFORE_KILL = 3000  # entries acknowledged before the kill; keeps the run to a few seconds


def test_kill_9_under_load_loses_no_acknowledged_entry(
    tmp_path: Path, cli_server: Callable[..., CLIServer]
) -> None:
    """Every batch acknowledged before SIGKILL is stored at its indexes; verify passes after."""
    signer = Signer.generate("crash.ramparts.test/log")
    db, key, port = tmp_path / "audit.db", tmp_path / "log.key", free_port()
    write_private_key(key, signer)
    args = [
        "serve",
        "--db",
        str(db),
        "--key-file",
        str(key),
        "--checkpoint-every",
        "500",
        "--checkpoint-interval-ms",
        "100",
        "--no-masking",
    ]
    server = cli_server(args, port)
    acked: list[tuple[str, int, int, list[dict[str, object]]]] = []
    lock = threading.Lock()
    stop = threading.Event()
    unexpected: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as c:
            seq = 0
            while not stop.is_set():
                batch_id = f"client{n}-{seq}"
                entries = [
                    {"client": n, "seq": seq, "i": i, "type": "authz.denied"} for i in range(BATCH)
                ]
                try:
                    r = c.post("/v1/ingest", json={"batch_id": batch_id, "entries": entries})
                except httpx.HTTPError:
                    return  # the server is gone; unacknowledged batches may or may not be stored
                if r.status_code != 200:
                    unexpected.append(f"{batch_id}: {r.status_code} {r.text}")
                    return
                body = r.json()
                with lock:
                    acked.append((batch_id, body["first_index"], body["count"], entries))
                seq += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) * BATCH >= ACKED_BEFORE_KILL, "entries to be acknowledged")
        server.kill()  # clients are still sending
        for t in threads:
            t.join(timeout=15)
        stop.set()
        assert not any(t.is_alive() for t in threads)
        assert not unexpected, unexpected
    finally:
        stop.set()
        server.stop()

    restarted = cli_server(args, port)
    try:
        with httpx.Client(base_url=restarted.url, timeout=5) as c:
            for batch_id, first, count, entries in acked:
                r = c.get("/v1/entries", params={"start": first, "end": first + count})
                assert r.status_code == 200, (
                    f"batch {batch_id} at [{first}, {first + count}): {r.text}"
                )
                stored = [canonical_entry(row["entry"]) for row in r.json()["entries"]]
                assert stored == [canonical_entry(e) for e in entries], (
                    f"batch {batch_id} lost or changed"
                )
            # Idempotency survives the crash: re-sending an acknowledged batch appends nothing.
            batch_id, first, count, entries = acked[0]
            again = c.post("/v1/ingest", json={"batch_id": batch_id, "entries": entries}).json()
            assert (again["first_index"], again["count"]) == (first, count)

            def checkpoint_covers_log() -> bool:
                note = c.get("/v1/checkpoint")
                return note.status_code == 200 and f"\n{_log_size(db)}\n" in note.text

            wait_for(checkpoint_covers_log, "a checkpoint covering the whole log")
    finally:
        restarted.stop()

    result = CliRunner().invoke(
        app, ["verify", "--db", str(db), "--log-key", signer.verifier().vkey]
    )
    assert result.exit_code == 0, result.stderr
    assert "OK:" in result.stdout


def _log_size(db: Path) -> int:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        (n,) = con.execute("SELECT count(*) FROM entries").fetchone()
    finally:
        con.close()
    return n
