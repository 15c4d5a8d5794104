"""A C2SP tlog-witness: cosigns a log's checkpoint only if it extends the last one it cosigned.

The witness keeps, per log origin, the latest checkpoint it cosigned, durably
in SQLite. ``add-checkpoint`` carries the size the log believes the witness is
at (``old N``) and a consistency proof from there. The witness refuses, with
the status codes of the spec:

* 400: malformed request, or ``old`` larger than the new size (a rollback);
* 403: no valid signature from a trusted key of that log;
* 404: unknown origin;
* 409: ``old`` is not the size it last cosigned (body: that size);
* 422: the proof does not verify, a proof given from size 0, or the same size
  with a different root (a fork).

The check and the update are one atomic step (tlog-witness: otherwise two
concurrent requests could roll the witness back).

>>> from ramparts.audit.note import Cosigner
>>> w = Witness(Cosigner.generate("w.example/w1"), {}, WitnessState(":memory:"))
>>> w.add_checkpoint(b"old 0\\n\\nx\\n")
Traceback (most recent call last):
...
ramparts.audit.witness.WitnessError: 404: unknown log origin
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ramparts.audit.checkpoint import Checkpoint
from ramparts.audit.merkle import EMPTY_ROOT, HASH_SIZE, MerkleError, verify_consistency
from ramparts.audit.note import Cosigner, NoteError, Verifier, open_note
from ramparts.events import EventEmitter

__all__ = [
    "MAX_PROOF_LINES",
    "CosignatureError",
    "Witness",
    "WitnessError",
    "WitnessState",
    "create_witness_app",
    "request_cosignature",
]

# tlog-witness: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
# A checkpoint with a few signatures is well under this; anything larger is refused.
MAX_BODY_BYTES = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,19})")


class WitnessError(Exception):
    """A request the witness refuses; ``status`` is the HTTP status the spec assigns."""

    def __init__(self, status: int, message: str, *, latest_size: int | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.latest_size = latest_size


@dataclass(frozen=True)
class _Latest:
    size: int
    root: bytes
    note: str


class WitnessState:
    """The latest cosigned checkpoint per origin, in SQLite (fsync'd on every update)."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS witness_logs (origin TEXT PRIMARY KEY,"
            " size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL)"
        )
        self.lock = threading.Lock()

    def latest(self, origin: str) -> _Latest | None:
        """Return the latest cosigned checkpoint of ``origin`` (call with ``lock`` held)."""
        row = self._db.execute(
            "SELECT size, root, note FROM witness_logs WHERE origin = ?", (origin,)
        ).fetchone()
        return _Latest(*row) if row else None

    def store(self, origin: str, size: int, root: bytes, note: str) -> None:
        """Record a newly cosigned checkpoint durably (call with ``lock`` held)."""
        self._db.execute(
            "INSERT INTO witness_logs (origin, size, root, note) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note",
            (origin, size, root, note),
        )

    def close(self) -> None:
        self._db.close()


def _parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Split an add-checkpoint body into old size, proof hashes and the checkpoint note."""
    if len(body) > MAX_BODY_BYTES:
        raise WitnessError(400, f"request body over {MAX_BODY_BYTES} bytes")
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise WitnessError(400, "request has no empty line before the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise WitnessError(400, "old size and proof lines must be ASCII") from None
    match = _OLD_LINE.fullmatch(lines[0])
    if not match:
        raise WitnessError(400, "first line must be 'old <size>' without leading zeros")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, f"{len(lines) - 1} proof lines, limit {MAX_PROOF_LINES}")
    proof = []
    for number, line in enumerate(lines[1:], 1):
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise WitnessError(400, f"proof line {number} is not base64") from None
        if len(h) != HASH_SIZE:
            raise WitnessError(400, f"proof line {number} has {len(h)} bytes, want {HASH_SIZE}")
        proof.append(h)
    return int(match.group(1)), proof, note


class Witness:
    """Verifies and cosigns checkpoints for a fixed set of logs.

    Args:
        cosigner: the witness's own tlog-cosignature/v1 key.
        logs: origin -> the log's trusted verifier keys.
        state: durable per-origin state.
    """

    def __init__(
        self,
        cosigner: Cosigner,
        logs: Mapping[str, Sequence[Verifier]],
        state: WitnessState,
        *,
        emitter: EventEmitter | None = None,
    ) -> None:
        self.cosigner = cosigner
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.state = state
        self.emitter = emitter

    def add_checkpoint(self, body: bytes) -> str:
        """Process one add-checkpoint request body; return the cosignature line(s).

        Each outcome is one security event when an emitter is set:
        ``audit.witness.refused`` (deny; a fork or rollback attempt lands here)
        or ``audit.witness.cosigned`` (allow).

        Raises:
            WitnessError: with the status the tlog-witness spec assigns.
        """
        try:
            line, cp = self._add_checkpoint(body)
        except WitnessError as exc:
            if self.emitter is not None:
                self.emitter.deny(
                    "audit.witness.refused",
                    reason=exc.message,
                    detail={"status": exc.status, "witness": self.cosigner.name},
                )
            raise
        if self.emitter is not None:
            self.emitter.allow(
                "audit.witness.cosigned",
                reason=f"checkpoint of size {cp.size} is consistent with the last cosigned",
                detail={"origin": cp.origin, "size": cp.size, "witness": self.cosigner.name},
            )
        return line

    def _add_checkpoint(self, body: bytes) -> tuple[str, Checkpoint]:
        old, proof, raw_note = _parse_request(body)
        origin = raw_note.split(b"\n", 1)[0].decode("utf-8", "replace")
        keys = self.logs.get(origin)
        if not keys:
            raise WitnessError(404, "unknown log origin")
        try:
            note = open_note(raw_note, keys)
        except NoteError as exc:
            raise WitnessError(403, f"checkpoint not signed by a trusted key: {exc}") from None
        try:
            cp = Checkpoint.parse(note.text)
        except NoteError as exc:
            raise WitnessError(400, str(exc)) from None
        if old > cp.size:
            raise WitnessError(400, f"old size {old} is larger than checkpoint size {cp.size}")
        if cp.size == 0 and cp.root_hash != EMPTY_ROOT:
            raise WitnessError(422, "checkpoint of size 0 must have the empty-tree root")
        with self.state.lock:
            latest = self.state.latest(origin)
            latest_size = latest.size if latest else 0
            if old != latest_size:
                raise WitnessError(
                    409,
                    f"old size {old}, but last cosigned size is {latest_size}",
                    latest_size=latest_size,
                )
            self._check_consistency(old, proof, cp, latest)
            self.state.store(origin, cp.size, cp.root_hash, raw_note.decode())
            return self.cosigner.signature_line(note.text), cp

    @staticmethod
    def _check_consistency(
        old: int, proof: list[bytes], cp: Checkpoint, latest: _Latest | None
    ) -> None:
        if old == 0:
            if proof:
                raise WitnessError(422, "a consistency proof from size 0 must be empty")
            return
        if latest is None:  # unreachable: old == latest size > 0; kept to fail closed
            raise WitnessError(409, "no cosigned checkpoint for this log", latest_size=0)
        if old == cp.size:
            if cp.root_hash != latest.root:
                raise WitnessError(422, f"fork: different root for already cosigned size {old}")
            return
        try:
            verify_consistency(old, cp.size, proof, latest.root, cp.root_hash)
        except MerkleError as exc:
            raise WitnessError(422, f"consistency proof {old} -> {cp.size} failed: {exc}") from None

    def latest_checkpoint(self, origin_hash: str) -> str | None:
        """Return the latest cosigned checkpoint for the origin with this SHA-256 hex hash."""
        for origin in self.logs:
            if hashlib.sha256(origin.encode()).hexdigest() == origin_hash:
                with self.state.lock:
                    latest = self.state.latest(origin)
                if latest is None:
                    return None
                text = latest.note[: latest.note.rindex("\n\n") + 1]
                return latest.note + self.cosigner.signature_line(text)
        return None


def create_witness_app(witness: Witness) -> Starlette:
    """The witness's HTTP API: POST /add-checkpoint, GET /{origin hash}/checkpoint."""

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        try:
            lines = await anyio.to_thread.run_sync(witness.add_checkpoint, body)
        except WitnessError as exc:
            if exc.status == 409:
                return PlainTextResponse(
                    f"{exc.latest_size}\n", status_code=409, media_type=SIZE_CONTENT_TYPE
                )
            return PlainTextResponse(exc.message + "\n", status_code=exc.status)
        return PlainTextResponse(lines)

    async def checkpoint(request: Request) -> Response:
        text = witness.latest_checkpoint(request.path_params["origin_hash"])
        if text is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", status_code=404)
        return PlainTextResponse(text)

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/{origin_hash:str}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )


class CosignatureError(Exception):
    """The witness refused to cosign, or answered with something that does not verify."""


async def request_cosignature(
    client: httpx.AsyncClient,
    *,
    url: str,
    witness_key: Verifier,
    note: str,
    size: int,
    old_size: int,
    consistency_proof: Callable[[int, int], list[bytes]],
) -> tuple[str, int]:
    """Ask a witness to cosign ``note`` (a checkpoint of ``size``); return (lines, old size used).

    ``consistency_proof(old, new)`` produces proofs; on 409 the witness's size
    is adopted and the request retried once. A witness that has cosigned a
    *larger* tree than this log has is evidence of a rollback and is an error.
    """
    for _ in range(2):
        proof = consistency_proof(old_size, size) if 0 < old_size < size else []
        body = f"old {old_size}\n" + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
        response = await client.post(
            url.rstrip("/") + "/add-checkpoint", content=(body + "\n" + note).encode()
        )
        if response.status_code == 409:
            witness_size = int(response.text.strip())
            if witness_size > size:
                raise CosignatureError(
                    f"witness {witness_key.name} has cosigned size {witness_size}, beyond this "
                    f"log's checkpoint size {size}: the log was rolled back"
                )
            old_size = witness_size
            continue
        if response.status_code != 200:
            raise CosignatureError(
                f"witness {witness_key.name} refused with {response.status_code}: "
                f"{response.text.strip()[:200]}"
            )
        lines = response.text
        try:
            cosigned = open_note((note + lines).encode(), [witness_key])
        except NoteError as exc:
            raise CosignatureError(
                f"witness {witness_key.name} cosignature invalid: {exc}"
            ) from None
        if not cosigned.signed_by(witness_key):
            raise CosignatureError(f"witness {witness_key.name} returned no cosignature")
        own = "".join(
            ln + "\n" for ln in lines.splitlines() if ln.startswith(f"\u2014 {witness_key.name} ")
        )
        return own, old_size
    raise CosignatureError(f"witness {witness_key.name} kept answering 409")
