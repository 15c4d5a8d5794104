"""The audit log's HTTP API (Starlette ASGI).

Endpoints::

    POST /v1/ingest           {"batch_id", "entries": [objects]}
                              -> {"batch_id", "first_index", "count"}
    GET  /v1/checkpoint       latest signed checkpoint with cosignatures (text/plain)
    GET  /v1/entries?start=&end=       {"entries": [{"index", "entry"}]} (stored canonical JSON)
    GET  /v1/proof/inclusion?index=&size=     (or leaf_hash=<base64 or hex> instead of index)
    GET  /v1/proof/consistency?from=&to=

Ingest is idempotent by ``batch_id``: re-sending returns the original indexes
and appends nothing (the shipper relies on exactly this). A batch is durable
before the 200 is sent. Status codes follow what the shipper retries: 4xx for
a batch that will never be accepted as is, 503 for a store failure (retried).

Each entry is masked again at ingest by ``ramparts.masking.Masker`` when that
package is installed, since a buggy or old client must not put PII into an
append-only log that can never be edited.

A background publisher signs a checkpoint every ``checkpoint_every`` entries
or ``checkpoint_interval`` seconds, and asks each configured witness to cosign
it (C2SP tlog-witness), storing the cosignatures beside it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ramparts.audit.log import AuditLog, BatchError
from ramparts.audit.merkle import HASH_SIZE, MerkleError
from ramparts.audit.note import Verifier
from ramparts.audit.store import StoreError
from ramparts.audit.witness import CosignatureError, request_cosignature
from ramparts.events import EventEmitter

__all__ = [
    "MAX_ENTRIES_PER_READ",
    "MAX_INGEST_BYTES",
    "CheckpointPublisher",
    "WitnessEndpoint",
    "create_app",
    "load_masker",
]

log = logging.getLogger("ramparts.audit.server")

MAX_INGEST_BYTES = 16 * 1024 * 1024
MAX_ENTRIES_PER_READ = 1000


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness to ask for cosignatures: its submission URL prefix and its public key."""

    url: str
    key: Verifier


def load_masker() -> Callable[[Any], Any] | None:
    """Return ``Masker().mask_record`` if ``ramparts.masking`` is installed, else None."""
    try:
        # Lazy: masking is another piece and may be absent from a minimal install.
        from ramparts.masking import Masker  # type: ignore[attr-defined]  # noqa: PLC0415
    except ImportError as exc:
        log.warning(
            "ramparts.masking.Masker unavailable (%s): ingest will not re-mask entries", exc
        )
        return None
    return Masker().mask_record


class CheckpointPublisher:
    """Signs checkpoints on a size or time trigger and gathers witness cosignatures."""

    def __init__(
        self,
        audit_log: AuditLog,
        *,
        every: int,
        interval: float,
        witnesses: Sequence[WitnessEndpoint],
        client: httpx.AsyncClient,
        emitter: EventEmitter | None = None,
    ) -> None:
        if every < 1 or interval <= 0:
            raise ValueError("checkpoint_every must be >= 1 and checkpoint_interval > 0")
        self.log = audit_log
        self.every = every
        self.interval = interval
        self.witnesses = list(witnesses)
        self.client = client
        self.emitter = emitter
        latest = audit_log.store.latest_checkpoint()
        self.published = latest.size if latest else -1
        # The size each witness last cosigned, as far as we know; 409 corrects it.
        self._witness_size = {w.url: 0 for w in self.witnesses}
        self._cosigned = {w.url: -1 for w in self.witnesses}
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Called after each append: wake the publisher once enough entries arrived."""
        if self.log.size - max(self.published, 0) >= self.every:
            self._wake.set()

    async def run(self) -> None:
        """Publish forever; every failure is logged and retried on the next tick."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.publish_once()
            except Exception:  # the loop must survive any one failure
                log.exception("checkpoint publication failed; retrying next tick")

    async def publish_once(self) -> None:
        """Sign a checkpoint if the log grew, then collect missing cosignatures."""
        if self.log.size != self.published:
            cp = await anyio.to_thread.run_sync(self.log.publish_checkpoint)
            self.published = cp.size
        cp = await anyio.to_thread.run_sync(self.log.store.latest_checkpoint)
        if cp is None:
            return
        for w in self.witnesses:
            if self._cosigned[w.url] == cp.size:
                continue
            try:
                lines, _ = await request_cosignature(
                    self.client,
                    url=w.url,
                    witness_key=w.key,
                    note=cp.note,
                    size=cp.size,
                    old_size=self._witness_size[w.url],
                    consistency_proof=self.log.consistency_proof,
                )
            except CosignatureError as exc:
                # A refusal (or a witness ahead of us) may mean a fork or a rollback.
                log.error("witness %s refused size %d: %s", w.key.name, cp.size, exc)
                if self.emitter is not None:
                    self.emitter.deny(
                        "audit.checkpoint.witness_refused",
                        reason=str(exc),
                        detail={"witness": w.key.name, "size": cp.size},
                    )
                continue
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("witness %s unreachable for size %d: %s", w.key.name, cp.size, exc)
                continue
            for line in lines.splitlines(keepends=True):
                await anyio.to_thread.run_sync(self.log.store.add_cosignature, cp.size, line)
            self._witness_size[w.url] = cp.size
            self._cosigned[w.url] = cp.size


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _QueryError(ValueError):
    """A query parameter is missing or malformed (answered with 400)."""


def _int_param(request: Request, name: str, *, default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise _QueryError(f"query parameter {name!r} is required")
        return default
    # isascii: str.isdigit also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise _QueryError(f"query parameter {name!r} must be a non-negative integer")
    return int(raw)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_INGEST_BYTES:
        raise OverflowError
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_INGEST_BYTES:
            raise OverflowError
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    audit_log: AuditLog,
    *,
    checkpoint_every: int = 1000,
    checkpoint_interval: float = 0.5,
    witnesses: Sequence[WitnessEndpoint] = (),
    masker: Callable[[Any], Any] | str | None = "auto",
    witness_client: httpx.AsyncClient | None = None,
    emitter: EventEmitter | None = None,
) -> Starlette:
    """Build the log server app.

    Args:
        audit_log: the log to serve.
        checkpoint_every: publish a checkpoint after this many new entries...
        checkpoint_interval: ...or after this many seconds, whichever first.
        witnesses: witnesses asked to cosign each checkpoint.
        masker: "auto" loads ``ramparts.masking``; None disables re-masking; or a callable.
        witness_client: HTTP client for the witnesses (tests pass an ASGI transport).
        emitter: receives one deny event per refused batch (``audit.ingest.rejected``)
            and per witness refusal (``audit.checkpoint.witness_refused``).
    """
    mask = load_masker() if masker == "auto" else masker
    client = witness_client or httpx.AsyncClient(timeout=5.0)
    publisher = CheckpointPublisher(
        audit_log,
        every=checkpoint_every,
        interval=checkpoint_interval,
        witnesses=witnesses,
        client=client,
        emitter=emitter,
    )

    def append(batch_id: Any, entries: Any) -> Any:
        if isinstance(batch_id, str):
            existing = audit_log.store.find_batch(batch_id)
            if existing is not None:
                return existing
        if mask is not None and isinstance(entries, list):
            entries = [mask(e) for e in entries]
        return audit_log.append(batch_id, entries)

    async def ingest(request: Request) -> Response:
        response = await _ingest(request)
        if emitter is not None and 400 <= response.status_code < 500:
            emitter.deny(
                "audit.ingest.rejected",
                reason=json.loads(response.body)["error"],
                detail={"status": response.status_code},
            )
        return response

    async def _ingest(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except OverflowError:
            return _error(413, f"request body over {MAX_INGEST_BYTES} bytes")
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        if not isinstance(payload, dict) or set(payload) != {"batch_id", "entries"}:
            return _error(400, 'body must be {"batch_id": <string>, "entries": [<objects>]}')
        try:
            receipt = await anyio.to_thread.run_sync(
                append, payload["batch_id"], payload["entries"]
            )
        except BatchError as exc:
            return _error(422, str(exc))
        except (StoreError, OSError) as exc:
            log.error("ingest failed, batch not stored: %s", exc)
            return _error(503, "store unavailable; retry")
        publisher.notify()
        return JSONResponse(
            {
                "batch_id": receipt.batch_id,
                "first_index": receipt.first_index,
                "count": receipt.count,
            }
        )

    async def checkpoint(request: Request) -> Response:
        cp = await anyio.to_thread.run_sync(audit_log.store.latest_checkpoint)
        if cp is None:
            return PlainTextResponse("no checkpoint published yet\n", status_code=404)
        return PlainTextResponse(cp.full_note())

    async def entries(request: Request) -> Response:
        try:
            start = _int_param(request, "start")
            end = _int_param(request, "end")
        except _QueryError as exc:
            return _error(400, str(exc))
        if not start < end <= audit_log.size:
            return _error(400, f"want start < end <= {audit_log.size}, got [{start}, {end})")
        end = min(end, start + MAX_ENTRIES_PER_READ)
        rows = await anyio.to_thread.run_sync(audit_log.store.entries, start, end)
        # The stored canonical JSON is embedded as is, so clients can re-hash the exact bytes.
        items = b",".join(b'{"index":%d,"entry":%s}' % (i, data) for i, data in rows)
        return Response(b'{"entries":[' + items + b"]}", media_type="application/json")

    def _leaf_index(request: Request) -> int:
        raw = request.query_params.get("leaf_hash")
        if raw is None:
            return _int_param(request, "index")
        try:
            leaf = (
                bytes.fromhex(raw)
                if len(raw) == 2 * HASH_SIZE
                else base64.b64decode(raw, validate=True)
            )
        except (ValueError, binascii.Error):
            raise _QueryError("leaf_hash must be hex or base64") from None
        if len(leaf) != HASH_SIZE:
            raise _QueryError(f"leaf_hash has {len(leaf)} bytes, want {HASH_SIZE}")
        index = audit_log.store.index_of_leaf(leaf)
        if index is None:
            raise LookupError("no entry with that leaf hash")
        return index

    async def inclusion(request: Request) -> Response:
        latest = await anyio.to_thread.run_sync(audit_log.store.latest_checkpoint)
        try:
            size = _int_param(request, "size", default=latest.size if latest else 0)
            index = await anyio.to_thread.run_sync(_leaf_index, request)
            if size > audit_log.size:
                return _error(404, f"size {size} is beyond the log size {audit_log.size}")
            proof = await anyio.to_thread.run_sync(audit_log.inclusion_proof, index, size)
        except LookupError as exc:
            return _error(404, str(exc))
        except (_QueryError, MerkleError) as exc:
            return _error(400, str(exc))
        return JSONResponse(
            {"index": index, "size": size, "proof": [base64.b64encode(h).decode() for h in proof]}
        )

    async def consistency(request: Request) -> Response:
        try:
            first = _int_param(request, "from")
            second = _int_param(request, "to")
            if second > audit_log.size:
                return _error(404, f"size {second} is beyond the log size {audit_log.size}")
            proof = await anyio.to_thread.run_sync(audit_log.consistency_proof, first, second)
        except (_QueryError, MerkleError) as exc:
            return _error(400, str(exc))
        return JSONResponse(
            {"from": first, "to": second, "proof": [base64.b64encode(h).decode() for h in proof]}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(publisher.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if witness_client is None:
                await client.aclose()

    app = Starlette(
        routes=[
            Route("/v1/ingest", ingest, methods=["POST"]),
            Route("/v1/checkpoint", checkpoint, methods=["GET"]),
            Route("/v1/entries", entries, methods=["GET"]),
            Route("/v1/proof/inclusion", inclusion, methods=["GET"]),
            Route("/v1/proof/consistency", consistency, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.publisher = publisher
    app.state.audit_log = audit_log
    return app
