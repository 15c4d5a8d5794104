"""The log server's HTTP API, over httpx's ASGI transport (no sockets needed for API shape)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ramparts.audit.checkpoint import Checkpoint
from ramparts.audit.log import AuditLog, canonical_entry
from ramparts.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from ramparts.audit.note import Cosigner, Signer, open_note, verify_note
from ramparts.audit.server import WitnessEndpoint, create_app
from ramparts.audit.store import SQLiteStore
from ramparts.audit.witness import Witness, WitnessState, create_witness_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def audit_log(sqlite_path: Path, log_signer: Signer) -> AuditLog:
    return AuditLog(SQLiteStore(sqlite_path), log_signer)


@pytest.fixture
async def client(audit_log: AuditLog) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(audit_log, masker=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://log") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


def _batch(batch_id: str, n: int) -> dict[str, object]:
    return {
        "batch_id": batch_id,
        "entries": [{"type": "authz.denied", "b": batch_id, "n": i} for i in range(n)],
    }


class TestIngest:
    async def test_ingest_returns_indexes(self, client: httpx.AsyncClient) -> None:
        """Batches are acknowledged with batch_id, first_index and count, in arrival order."""
        r1 = await client.post("/v1/ingest", json=_batch("a", 3))
        r2 = await client.post("/v1/ingest", json=_batch("b", 2))
        assert r1.status_code == r2.status_code == 200
        assert r1.json() == {"batch_id": "a", "first_index": 0, "count": 3}
        assert r2.json() == {"batch_id": "b", "first_index": 3, "count": 2}

    async def test_resend_is_idempotent(
        self, client: httpx.AsyncClient, audit_log: AuditLog
    ) -> None:
        """Re-sending a batch id returns the original answer and appends nothing."""
        first = await client.post("/v1/ingest", json=_batch("a", 3))
        again = await client.post("/v1/ingest", json=_batch("a", 9))
        assert again.status_code == 200
        assert again.json() == first.json()
        assert audit_log.size == 3

    @pytest.mark.parametrize(
        ("body", "status", "why"),
        [
            (b"not json", 400, "not valid JSON"),
            (b'{"batch_id": "a", "entries": [{"x": NaN}]}', 400, "NaN is not valid JSON"),
            (b'{"batch_id": "a"}', 400, "must be"),
            (b'{"batch_id": "a", "entries": [], "extra": 1}', 400, "must be"),
            (b'{"batch_id": 7, "entries": [{}]}', 422, "batch_id"),
            (b'{"batch_id": "a", "entries": [3]}', 422, r"entries[0]"),
            (b'{"batch_id": "a", "entries": []}', 422, "want 1.."),
        ],
    )
    async def test_malformed_ingest_is_refused(
        self, client: httpx.AsyncClient, audit_log: AuditLog, body: bytes, status: int, why: str
    ) -> None:
        """A malformed batch gets a 4xx naming the problem and nothing is stored."""
        r = await client.post("/v1/ingest", content=body)
        assert r.status_code == status
        assert why in r.json()["error"]
        assert audit_log.size == 0

    async def test_rejection_emits_one_deny_event(self, audit_log: AuditLog) -> None:
        """Each refused batch is one deny event naming the reason; accepted ones emit none."""
        from ramparts.events import EventEmitter, MemorySink, Outcome

        sink = MemorySink()
        app = create_app(audit_log, masker=None, emitter=EventEmitter([sink], service="audit"))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://l") as c:
            await c.post("/v1/ingest", json=_batch("ok", 2))
            await c.post("/v1/ingest", json={"batch_id": "bad", "entries": [7]})
        assert [(e.type, e.outcome) for e in sink.events] == [
            ("audit.ingest.rejected", Outcome.DENY)
        ]
        assert "entries[0]" in sink.events[0].reason
        assert sink.events[0].detail["status"] == 422

    async def test_real_masker_is_applied_by_default(self, audit_log: AuditLog) -> None:
        """With ramparts.masking installed, PII in an entry never reaches the append-only store."""
        pytest.importorskip("ramparts.masking", reason="masking piece not in this build")
        app = create_app(audit_log)  # masker="auto"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://l") as c:
            entry = {"type": "payment.denied", "card": "4242 4242 4242 4242", "bvn": "22212345678"}
            r = await c.post("/v1/ingest", json={"batch_id": "pii", "entries": [entry]})
        assert r.status_code == 200
        stored = audit_log.store.entries(0, 1)[0][1]
        assert b"4242 4242" not in stored
        assert b"22212345678" not in stored

    async def test_entries_are_masked_at_ingest(self, audit_log: AuditLog) -> None:
        """With a masker configured, what is stored is the masked entry."""
        app = create_app(audit_log, masker=lambda e: {**e, "card": "[PAN]"})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://l") as c:
            r = await c.post("/v1/ingest", json={"batch_id": "m", "entries": [{"card": "4242"}]})
        assert r.status_code == 200
        assert audit_log.store.entries(0, 1)[0][1] == b'{"card":"[PAN]"}'


class TestReads:
    async def test_checkpoint_entries_and_proofs(
        self, client: httpx.AsyncClient, log_signer: Signer
    ) -> None:
        """A client can fetch the signed checkpoint, entries and proofs, and verify them all."""
        assert (await client.get("/v1/checkpoint")).status_code == 404
        await client.post("/v1/ingest", json=_batch("a", 5))
        await client.app.state.publisher.publish_once()  # type: ignore[attr-defined]
        cp1 = Checkpoint.parse(
            open_note((await client.get("/v1/checkpoint")).content, [log_signer.verifier()]).text
        )
        await client.post("/v1/ingest", json=_batch("b", 6))
        await client.app.state.publisher.publish_once()  # type: ignore[attr-defined]
        r = await client.get("/v1/checkpoint")
        assert r.headers["content-type"].startswith("text/plain")
        cp2 = Checkpoint.parse(open_note(r.content, [log_signer.verifier()]).text)
        assert (cp1.size, cp2.size) == (5, 11)

        rows = (await client.get("/v1/entries", params={"start": 0, "end": 11})).json()["entries"]
        assert [row["index"] for row in rows] == list(range(11))
        leaves = [leaf_hash(canonical_entry(row["entry"])) for row in rows]

        for index in (0, 4, 10):
            proof = (await client.get("/v1/proof/inclusion", params={"index": index})).json()
            assert proof["size"] == 11
            verify_inclusion(
                index,
                11,
                leaves[index],
                [base64.b64decode(h) for h in proof["proof"]],
                cp2.root_hash,
            )
        by_hash = await client.get(
            "/v1/proof/inclusion", params={"leaf_hash": leaves[7].hex(), "size": 11}
        )
        assert by_hash.json()["index"] == 7

        cons = (await client.get("/v1/proof/consistency", params={"from": 5, "to": 11})).json()
        verify_consistency(
            5, 11, [base64.b64decode(h) for h in cons["proof"]], cp1.root_hash, cp2.root_hash
        )

    @pytest.mark.parametrize(
        ("path", "params", "status"),
        [
            ("/v1/entries", {"start": 3, "end": 2}, 400),
            ("/v1/entries", {"start": 0, "end": 99}, 400),
            ("/v1/entries", {"start": "-1", "end": 2}, 400),
            ("/v1/entries", {"start": "\u00b2", "end": 2}, 400),
            ("/v1/entries", {"end": 2}, 400),
            ("/v1/proof/inclusion", {"index": 9, "size": 3}, 400),
            ("/v1/proof/inclusion", {"index": 0, "size": 50}, 404),
            ("/v1/proof/inclusion", {"leaf_hash": "00" * 32, "size": 3}, 404),
            ("/v1/proof/inclusion", {"leaf_hash": "zz", "size": 3}, 400),
            ("/v1/proof/consistency", {"from": 0, "to": 3}, 400),
            ("/v1/proof/consistency", {"from": 1, "to": 50}, 404),
        ],
    )
    async def test_bad_queries(
        self, client: httpx.AsyncClient, path: str, params: dict, status: int
    ) -> None:
        """Out-of-range or malformed queries get a clear 4xx."""
        await client.post("/v1/ingest", json=_batch("a", 3))
        r = await client.get(path, params=params)
        assert r.status_code == status, r.text
        assert r.json()["error"]


class TestPublisher:
    async def test_publishes_after_n_entries(self, audit_log: AuditLog) -> None:
        """With a long interval, reaching checkpoint_every entries publishes promptly."""
        import asyncio

        app = create_app(audit_log, masker=None, checkpoint_every=10, checkpoint_interval=60)
        task = asyncio.create_task(app.state.publisher.run())
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://l"
            ) as c:
                await c.post("/v1/ingest", json=_batch("a", 4))
                await asyncio.sleep(0)
                assert audit_log.store.latest_checkpoint() is None
                await c.post("/v1/ingest", json=_batch("b", 6))
                for _ in range(500):  # bounded wait on the condition, not on time
                    if audit_log.store.latest_checkpoint() is not None:
                        break
                    await asyncio.sleep(0.01)
            latest = audit_log.store.latest_checkpoint()
            assert latest is not None
            assert latest.size == 10
        finally:
            task.cancel()

    async def test_publishes_after_interval(self, audit_log: AuditLog) -> None:
        """Below checkpoint_every, the interval still publishes what arrived."""
        import asyncio

        app = create_app(audit_log, masker=None, checkpoint_every=1000, checkpoint_interval=0.05)
        task = asyncio.create_task(app.state.publisher.run())
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://l"
            ) as c:
                await c.post("/v1/ingest", json=_batch("a", 3))
                for _ in range(500):
                    if audit_log.store.latest_checkpoint() is not None:
                        break
                    await asyncio.sleep(0.01)
            latest = audit_log.store.latest_checkpoint()
            assert latest is not None
            assert latest.size == 3
        finally:
            task.cancel()


class TestWitnessedCheckpoints:
    async def test_publisher_gathers_cosignatures(
        self, audit_log: AuditLog, log_signer: Signer, witness_cosigner: Cosigner, tmp_path: Path
    ) -> None:
        """Each published checkpoint is cosigned by the witness, with a proof from the last."""
        witness = Witness(
            witness_cosigner,
            {audit_log.origin: [log_signer.verifier()]},
            WitnessState(tmp_path / "w.db"),
        )
        witness_http = httpx.AsyncClient(transport=httpx.ASGITransport(create_witness_app(witness)))
        endpoint = WitnessEndpoint("http://witness", witness_cosigner.verifier())
        app = create_app(audit_log, masker=None, witnesses=[endpoint], witness_client=witness_http)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://l") as c:
            for b in range(3):
                await c.post("/v1/ingest", json=_batch(f"b{b}", 4 + b))
                await app.state.publisher.publish_once()
                note = (await c.get("/v1/checkpoint")).content
                verified = verify_note(note, [log_signer.verifier(), witness_cosigner.verifier()])
                assert Checkpoint.parse(verified.text).size == audit_log.size
        await witness_http.aclose()
        assert json.dumps(len(audit_log.store.checkpoints())) == "3"

    async def test_rolled_back_log_is_refused_and_reported(
        self, tmp_path: Path, log_signer: Signer, witness_cosigner: Cosigner
    ) -> None:
        """A log restarted from an older copy learns from the witness it was rolled back."""
        from ramparts.events import EventEmitter, MemorySink

        witness = Witness(
            witness_cosigner,
            {log_signer.name: [log_signer.verifier()]},
            WitnessState(tmp_path / "w.db"),
        )
        witness_http = httpx.AsyncClient(transport=httpx.ASGITransport(create_witness_app(witness)))
        endpoint = WitnessEndpoint("http://witness", witness_cosigner.verifier())
        original = AuditLog(SQLiteStore(tmp_path / "a.db"), log_signer)
        original.append("a", [{"n": i} for i in range(10)])
        await create_app(
            original, masker=None, witnesses=[endpoint], witness_client=witness_http
        ).state.publisher.publish_once()

        sink = MemorySink()
        rolled_back = AuditLog(SQLiteStore(tmp_path / "old-copy.db"), log_signer)
        rolled_back.append("a", [{"n": i} for i in range(3)])
        app = create_app(
            rolled_back,
            masker=None,
            witnesses=[endpoint],
            witness_client=witness_http,
            emitter=EventEmitter([sink], service="audit"),
        )
        await app.state.publisher.publish_once()
        await witness_http.aclose()
        latest = rolled_back.store.latest_checkpoint()
        assert latest is not None
        assert latest.cosignatures == ()
        [event] = sink.of_type("audit.checkpoint.witness_refused")
        assert "rolled back" in event.reason
        assert event.detail == {"witness": witness_cosigner.name, "size": 3}
