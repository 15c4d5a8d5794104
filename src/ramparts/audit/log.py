"""The append path of the audit log: canonical entries, batches, tree, checkpoints.

:class:`AuditLog` owns the right border of the tree in memory and writes each
batch (entries, newly completed tree nodes, batch id) to the store in a durable
transaction before acknowledging it. Batches that arrive while a transaction
is being written are group-committed together in the next one, so concurrent
clients share fsyncs instead of queueing behind one each. On start it rebuilds the border
from the store and refuses to run if the stored tree disagrees with the latest
signed checkpoint (fail closed: a damaged log must be audited, not extended).

>>> import tempfile, pathlib
>>> from ramparts.audit.note import Signer
>>> from ramparts.audit.store import open_store
>>> log = AuditLog(open_store(pathlib.Path(tempfile.mkdtemp()) / "a.db"), Signer.generate("ex/log"))
>>> log.append("batch-1", [{"event": "login"}]).first_index
0
>>> log.publish_checkpoint().size
1
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ramparts.audit.checkpoint import Checkpoint
from ramparts.audit.merkle import CompactRange, leaf_hash, prove_consistency, prove_inclusion
from ramparts.audit.merkle import root_at as _root_at
from ramparts.audit.note import Signer
from ramparts.audit.store import (
    STORED_MIN_LEVEL,
    BatchReceipt,
    LogStore,
    StoredCheckpoint,
    StoreError,
    StoreStateError,
)

__all__ = ["MAX_BATCH_ENTRIES", "MAX_BATCH_ID_LENGTH", "AuditLog", "BatchError", "canonical_entry"]

MAX_BATCH_ENTRIES = 10_000
MAX_BATCH_ID_LENGTH = 128


# Canonical form: compact separators, sorted keys, UTF-8 kept as is, and
# NaN/Infinity refused (they are not JSON, RFC 8259 section 6).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _no_default(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The same encoder, built once from CPython's C accelerator: JSONEncoder.encode
# rebuilds it on every call, which is a third of the cost on the append path.
# Circular-reference markers are off; a cycle ends in RecursionError instead.
_C_CANONICAL = (
    c_make_encoder(None, _no_default, encode_basestring, None, ":", ",", True, False, False)
    if c_make_encoder is not None
    else None
)


class BatchError(ValueError):
    """A batch or one of its entries is malformed."""


def canonical_entry(entry: Mapping[str, Any]) -> bytes:
    """Return the bytes that are hashed for an entry: compact, key-sorted UTF-8 JSON.

    One canonical form means the verifier can re-derive the leaf from the
    stored bytes alone, and the same event always hashes the same way.
    """
    if not isinstance(entry, Mapping):
        raise BatchError(f"entry must be a JSON object, got {type(entry).__name__}")
    try:
        text = "".join(_C_CANONICAL(entry, 0)) if _C_CANONICAL else _CANONICAL.encode(entry)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BatchError(f"entry is not serialisable as strict JSON: {exc}") from exc
    return text.encode()


def _check_batch_id(batch_id: object) -> str:
    if not isinstance(batch_id, str) or not batch_id:
        raise BatchError("batch_id must be a non-empty string")
    if len(batch_id) > MAX_BATCH_ID_LENGTH:
        raise BatchError(f"batch_id has {len(batch_id)} characters, limit {MAX_BATCH_ID_LENGTH}")
    if not batch_id.isprintable():
        raise BatchError("batch_id contains non-printable characters")
    return batch_id


# A group commit takes queued batches until it holds at least this many entries.
_MAX_GROUP_ENTRIES = 100_000


@dataclass
class _Pending:
    """A batch waiting for a group commit, and its outcome."""

    batch_id: str
    encoded: list[bytes]
    receipt: BatchReceipt | None = None
    error: BaseException | None = None
    done: bool = False


class AuditLog:
    """One append-only log. Thread-safe; concurrent appends are group-committed."""

    def __init__(self, store: LogStore, signer: Signer, origin: str | None = None) -> None:
        self.store = store
        self.signer = signer
        # tlog-checkpoint: the log's key name SHOULD match the origin line.
        self.origin = origin or signer.name
        # _lock guards the tree (appends, checkpoints); _queue_cond the group-commit queue.
        self._lock = threading.Lock()
        self._queue_cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._committing = False
        self._read = store.tree_reader()
        size = store.size()
        ids = CompactRange.border_ids(size)
        found = self._read(ids)
        if any(i not in found for i in ids):
            raise StoreStateError(f"store with {size} entries lacks nodes of its right border")
        self._tree = CompactRange(size, [found[i] for i in ids])
        latest = store.latest_checkpoint()
        if latest is not None:
            if latest.size > size:
                raise StoreStateError(
                    f"latest checkpoint is for size {latest.size} but only {size} entries are "
                    "stored: the log was truncated; run `ramparts audit verify`"
                )
            if self.root_at(latest.size) != latest.root:
                raise StoreStateError(
                    f"stored tree does not match the checkpoint at size {latest.size}; "
                    "run `ramparts audit verify`"
                )

    @property
    def size(self) -> int:
        """Number of durable entries."""
        return self._tree.size

    def root(self) -> bytes:
        """Root hash of the tree of all durable entries."""
        with self._lock:
            return self._tree.root()

    def append(self, batch_id: str, entries: Sequence[Mapping[str, Any]]) -> BatchReceipt:
        """Append a batch durably; re-sending a batch id returns the original receipt.

        Blocks until the batch is on disk (possibly in a group with others).

        Raises:
            BatchError: the batch id or an entry is malformed (nothing is written).
            StoreError: the store failed; the batch was not stored and may be re-sent.
        """
        batch_id = _check_batch_id(batch_id)
        if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
            raise BatchError("entries must be a list of JSON objects")
        if not 0 < len(entries) <= MAX_BATCH_ENTRIES:
            raise BatchError(f"batch has {len(entries)} entries, want 1..{MAX_BATCH_ENTRIES}")
        encoded = []
        for i, entry in enumerate(entries):
            try:
                encoded.append(canonical_entry(entry))
            except BatchError as exc:
                raise BatchError(f"entries[{i}]: {exc}") from None
        return self._append_encoded(batch_id, encoded)

    def append_canonical(self, batch_id: str, encoded: Sequence[bytes]) -> BatchReceipt:
        """Append entries that are already canonical JSON bytes (e.g. replayed from a mirror).

        The bytes are hashed and stored as given; callers must produce them with
        :func:`canonical_entry`, or lookups by content will not find them.
        """
        batch_id = _check_batch_id(batch_id)
        if not 0 < len(encoded) <= MAX_BATCH_ENTRIES:
            raise BatchError(f"batch has {len(encoded)} entries, want 1..{MAX_BATCH_ENTRIES}")
        if not all(isinstance(e, bytes) for e in encoded):
            raise BatchError("canonical entries must be bytes")
        return self._append_encoded(batch_id, list(encoded))

    def _append_encoded(self, batch_id: str, encoded: list[bytes]) -> BatchReceipt:
        pending = _Pending(batch_id, encoded)
        with self._queue_cond:
            self._queue.append(pending)
            while not pending.done:
                if self._committing:
                    self._queue_cond.wait()
                    continue
                # Group commit: this thread leads, writing every queued batch
                # (its own included) in one durable transaction.
                self._committing = True
                group, taken = [], 0
                while self._queue and (not group or taken < _MAX_GROUP_ENTRIES):
                    group.append(self._queue.pop(0))
                    taken += len(group[-1].encoded)
                self._queue_cond.release()
                try:
                    self._commit_group(group)
                finally:
                    self._queue_cond.acquire()
                    self._committing = False
                    self._queue_cond.notify_all()
        if pending.error is not None:
            raise StoreError(f"batch {batch_id!r} was not stored: {pending.error}") from (
                pending.error
            )
        if pending.receipt is None:  # unreachable: a done batch has a receipt or an error
            raise StoreError(f"batch {batch_id!r} has no outcome")
        return pending.receipt

    def _commit_group(self, group: list[_Pending]) -> None:
        """Write a group of batches in one transaction; resolve each with a receipt or error."""
        try:
            receipts = self._write_group(group)
        except BaseException as exc:
            for p in group:
                p.error = exc
            if not isinstance(exc, Exception):
                raise
        else:
            for p, receipt in zip(group, receipts, strict=True):
                p.receipt = receipt
        finally:
            for p in group:
                p.done = True

    def _write_group(self, group: list[_Pending]) -> list[BatchReceipt]:
        with self._lock:
            stored = self.store.find_batches(list({p.batch_id for p in group}))
            staged = self._tree.copy()
            rows: list[tuple[bytes, bytes]] = []
            nodes: list[tuple[int, bytes]] = []
            batches: list[tuple[str, int, int]] = []
            new: dict[str, BatchReceipt] = {}
            for p in group:
                if p.batch_id in stored or p.batch_id in new:
                    continue
                leaves = [leaf_hash(data) for data in p.encoded]
                new[p.batch_id] = BatchReceipt(p.batch_id, staged.size, len(leaves))
                batches.append((p.batch_id, staged.size, len(leaves)))
                nodes.extend(staged.extend(leaves, STORED_MIN_LEVEL))
                rows.extend(zip(leaves, p.encoded, strict=True))
            if batches:
                self.store.append(self._tree.size, rows, nodes, batches)
                self._tree = staged
        receipts, claimed = [], set()
        for p in group:
            if p.batch_id in stored:
                receipts.append(stored[p.batch_id])
            elif p.batch_id in claimed:  # the same id twice in one group: first one wins
                receipts.append(replace(new[p.batch_id], duplicate=True))
            else:
                claimed.add(p.batch_id)
                receipts.append(new[p.batch_id])
        return receipts

    def root_at(self, size: int) -> bytes:
        """Root hash of the tree of the first ``size`` entries, from stored nodes."""
        if size > self._tree.size:
            raise StoreStateError(f"size {size} is beyond the log's size {self._tree.size}")
        return _root_at(size, self._read)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Inclusion proof of entry ``index`` in the tree of ``size`` (O(log n) node reads)."""
        if size > self._tree.size:
            raise StoreStateError(f"size {size} is beyond the log's size {self._tree.size}")
        return prove_inclusion(index, size, self._read)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """Consistency proof from ``size1`` to ``size2`` (O(log n) node reads)."""
        if size2 > self._tree.size:
            raise StoreStateError(f"size {size2} is beyond the log's size {self._tree.size}")
        return prove_consistency(size1, size2, self._read)

    def publish_checkpoint(self) -> StoredCheckpoint:
        """Sign and store a checkpoint for the current size (or return the existing one)."""
        with self._lock:
            size, root = self._tree.size, self._tree.root()
            existing = self.store.checkpoint_at(size)
            if existing is not None:
                return existing
            note = self.signer.sign_note(Checkpoint(self.origin, size, root).text())
            self.store.add_checkpoint(size, root, note)
            return StoredCheckpoint(size, root, note)
