"""The tlog-witness: cosigns only consistent extensions of what it last cosigned, durably."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import httpx
import pytest

from ramparts.audit.checkpoint import Checkpoint
from ramparts.audit.log import AuditLog
from ramparts.audit.merkle import EMPTY_ROOT
from ramparts.audit.note import Cosigner, Signer, verify_note
from ramparts.audit.store import SQLiteStore
from ramparts.audit.witness import Witness, WitnessError, WitnessState, create_witness_app


class Harness:
    """A log plus a witness over it, with helpers to build add-checkpoint bodies."""

    def __init__(self, tmp: Path, signer: Signer, cosigner: Cosigner) -> None:
        self.signer, self.cosigner, self.tmp = signer, cosigner, tmp
        self.log = AuditLog(SQLiteStore(tmp / "log.db"), signer)
        self.witness = self.new_witness()
        self.notes: dict[int, str] = {}

    def new_witness(self) -> Witness:
        return Witness(
            self.cosigner,
            {self.log.origin: [self.signer.verifier()]},
            WitnessState(self.tmp / "w.db"),
        )

    def grow(self, n: int) -> int:
        self.log.append(f"b{self.log.size}", [{"i": self.log.size + i} for i in range(n)])
        self.notes[self.log.size] = self.log.publish_checkpoint().note
        return self.log.size

    def body(
        self, old: int, size: int, note: str | None = None, proof: list[bytes] | None = None
    ) -> bytes:
        if proof is None:
            proof = self.log.consistency_proof(old, size) if 0 < old < size else []
        lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        return f"old {old}\n{lines}\n{note or self.notes[size]}".encode()

    def cosign(self, old: int, size: int) -> str:
        return self.witness.add_checkpoint(self.body(old, size))


@pytest.fixture
def h(tmp_path: Path, log_signer: Signer, witness_cosigner: Cosigner) -> Harness:
    return Harness(tmp_path, log_signer, witness_cosigner)


def _status(excinfo: pytest.ExceptionInfo[WitnessError]) -> int:
    return excinfo.value.status


def test_cosigns_first_and_consistent_checkpoints(h: Harness) -> None:
    """Old size 0 starts the log; each later checkpoint needs a proof from the last one."""
    s1 = h.grow(5)
    line = h.cosign(0, s1)
    verify_note((h.notes[s1] + line).encode(), [h.signer.verifier(), h.cosigner.verifier()])
    s2 = h.grow(9)
    line2 = h.cosign(s1, s2)
    verify_note((h.notes[s2] + line2).encode(), [h.signer.verifier(), h.cosigner.verifier()])


def test_stale_old_size_is_409_with_latest_size(h: Harness) -> None:
    """An old size that is not the last cosigned one gets 409 and the witness's size."""
    s1 = h.grow(5)
    h.cosign(0, s1)
    s2 = h.grow(3)
    with pytest.raises(WitnessError) as exc:
        h.cosign(0, s2)
    assert (_status(exc), exc.value.latest_size) == (409, s1)


def test_rollback_is_refused(h: Harness) -> None:
    """A checkpoint smaller than the one already cosigned is refused (old > size: 400)."""
    s1 = h.grow(4)
    s2 = h.grow(4)
    h.cosign(0, s2)
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(s2, s1, proof=[]))
    assert _status(exc) == 400


def test_fork_at_same_size_is_refused(h: Harness, tmp_path: Path) -> None:
    """A different root for the size already cosigned is a fork: 422."""
    s1 = h.grow(6)
    h.cosign(0, s1)
    other = AuditLog(SQLiteStore(tmp_path / "fork.db"), h.signer)
    other.append("x", [{"forked": i} for i in range(6)])
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(s1, s1, note=other.publish_checkpoint().note, proof=[]))
    assert _status(exc) == 422
    assert "fork" in exc.value.message


def test_fork_at_larger_size_fails_the_proof(h: Harness, tmp_path: Path) -> None:
    """A larger tree that does not extend the cosigned one cannot prove consistency: 422."""
    s1 = h.grow(6)
    h.cosign(0, s1)
    other = AuditLog(SQLiteStore(tmp_path / "fork.db"), h.signer)
    other.append("x", [{"forked": i} for i in range(10)])
    note = other.publish_checkpoint().note
    proof = other.consistency_proof(s1, 10)
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(s1, 10, note=note, proof=proof))
    assert _status(exc) == 422


def test_unknown_origin_and_bad_signatures(h: Harness) -> None:
    """Unknown origin is 404; a checkpoint not signed by the log's key is 403."""
    s1 = h.grow(2)
    stranger = Signer.generate("elsewhere.example/log")
    note = stranger.sign_note(Checkpoint("elsewhere.example/log", 2, h.log.root()).text())
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(0, s1, note=note))
    assert _status(exc) == 404
    impostor = Signer.generate(h.log.origin)
    note = impostor.sign_note(Checkpoint(h.log.origin, 2, h.log.root()).text())
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(0, s1, note=note))
    assert _status(exc) == 403


def test_proof_from_zero_must_be_empty_and_empty_tree_root(h: Harness) -> None:
    """From old size 0 the proof must be empty; a size-0 checkpoint must have the empty root."""
    s1 = h.grow(3)
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(h.body(0, s1, proof=[EMPTY_ROOT]))
    assert _status(exc) == 422
    note = h.signer.sign_note(Checkpoint(h.log.origin, 0, bytes(32)).text())
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(f"old 0\n\n{note}".encode())
    assert _status(exc) == 422


@pytest.mark.parametrize(
    "body", [b"old 01\n\nx", b"new 1\n\nx", b"old 1\n", b"old 1\nnot-base64!\n\nx"]
)
def test_malformed_requests_are_400(h: Harness, body: bytes) -> None:
    """Requests that do not follow the add-checkpoint format are 400."""
    with pytest.raises(WitnessError) as exc:
        h.witness.add_checkpoint(body)
    assert _status(exc) == 400


def test_state_survives_restart(h: Harness) -> None:
    """A restarted witness remembers what it cosigned and still refuses stale sizes."""
    s1 = h.grow(5)
    h.cosign(0, s1)
    h.witness.state.close()
    h.witness = h.new_witness()
    s2 = h.grow(2)
    with pytest.raises(WitnessError) as exc:
        h.cosign(0, s2)
    assert exc.value.latest_size == s1
    h.cosign(s1, s2)


def test_check_and_update_are_atomic(h: Harness) -> None:
    """Of many concurrent requests from the same old size, exactly one is cosigned."""
    sizes = [h.grow(1) for _ in range(6)]
    bodies = [h.body(0, s) for s in sizes]
    results: list[str] = []
    barrier = threading.Barrier(len(bodies))

    def submit(body: bytes) -> None:
        barrier.wait()
        try:
            h.witness.add_checkpoint(body)
            results.append("ok")
        except WitnessError as exc:
            results.append(str(exc.status))

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results) == ["409"] * 5 + ["ok"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_http_api(h: Harness, anyio_backend: str) -> None:
    """Over HTTP: 200 with cosignature lines, 409 as text/x.tlog.size, monitoring checkpoint."""
    s1 = h.grow(3)
    app = create_witness_app(h.witness)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://w") as c:
        origin_hash = hashlib.sha256(h.log.origin.encode()).hexdigest()
        assert (await c.get(f"/{origin_hash}/checkpoint")).status_code == 404
        ok = await c.post("/add-checkpoint", content=h.body(0, s1))
        assert ok.status_code == 200
        assert ok.text.startswith("\u2014 " + h.cosigner.name + " ")
        stale = await c.post("/add-checkpoint", content=h.body(0, s1))
        assert (stale.status_code, stale.text) == (409, f"{s1}\n")
        assert stale.headers["content-type"].startswith("text/x.tlog.size")
        monitored = await c.get(f"/{origin_hash}/checkpoint")
        verify_note(monitored.content, [h.signer.verifier(), h.cosigner.verifier()])


def test_each_decision_emits_one_event(h: Harness) -> None:
    """A refusal emits one deny event (no secrets, the reason named); a cosignature one allow."""
    from ramparts.events import EventEmitter, MemorySink, Outcome

    sink = MemorySink()
    h.witness.emitter = EventEmitter([sink], service="audit-witness")
    s1 = h.grow(3)
    h.cosign(0, s1)
    with pytest.raises(WitnessError):
        h.cosign(0, s1)
    assert [(e.type, e.outcome) for e in sink.events] == [
        ("audit.witness.cosigned", Outcome.ALLOW),
        ("audit.witness.refused", Outcome.DENY),
    ]
    refused = sink.events[1]
    assert "last cosigned size is 3" in refused.reason
    assert refused.detail["status"] == 409
    assert "PRIVATE" not in refused.to_json()
