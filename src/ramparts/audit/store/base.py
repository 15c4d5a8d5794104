"""The small interface every audit-log store implements, and its errors.

A store holds four things, all append-only:

* entries: index -> (leaf hash, canonical entry bytes);
* tree nodes: node id -> hash of every *perfect* subtree of at least
  2**STORED_MIN_LEVEL leaves (see :mod:`ramparts.audit.merkle.tree`), written
  with the entries that complete them. Level-0 nodes are the entries' leaf
  hashes (not stored twice); the levels in between are recomputed from an
  aligned block of leaves when a proof needs them (:meth:`LogStore.tree_reader`);
* batches: client batch id -> (first index, count), for idempotent ingest;
* checkpoints: size -> (root, signed note), at most one per size, plus the
  witnesses' cosignature lines for each.

``append`` is one transaction that is durable (fsync'd) before it returns,
so an acknowledged batch survives a crash.

::

    StoreError
     ├── ConflictingCheckpointError  a different checkpoint already exists for that size
     └── StoreStateError             the store does not match what the caller expected
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ramparts.audit.merkle.tree import (
    LEVEL_BITS,
    LEVEL_MASK,
    NodeReader,
    derive_low_levels,
    node_id,
)

__all__ = [
    "STORED_MIN_LEVEL",
    "BatchReceipt",
    "ConflictingCheckpointError",
    "LogStore",
    "StoreError",
    "StoreStateError",
    "StoredCheckpoint",
    "leaf_node_id",
    "split_node_ids",
]


def leaf_node_id(index: int) -> int:
    """Return the node id of leaf ``index`` (level 0)."""
    return node_id(0, index)


def split_node_ids(ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Split node ids into leaf indexes (served from entries) and inner node ids."""
    leaves, inner = [], []
    for i in ids:
        if i & LEVEL_MASK:
            inner.append(i)
        else:
            leaves.append(i >> LEVEL_BITS)
    return leaves, inner


# Inner nodes below this level are not stored. 3 cuts tree rows from about one
# per entry to a quarter, for at most 8 extra leaf reads and 4 hashes per proof.
STORED_MIN_LEVEL = 3


class StoreError(Exception):
    """Base class for store failures."""


class ConflictingCheckpointError(StoreError):
    """A checkpoint for this size with a different root or note is already stored."""


class StoreStateError(StoreError):
    """The store's contents do not match what the writer expected (e.g. a second writer)."""


@dataclass(frozen=True)
class BatchReceipt:
    """Where a batch landed. ``duplicate`` is true when the batch id was seen before."""

    batch_id: str
    first_index: int
    count: int
    duplicate: bool = False


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored, with the cosignature lines gathered for it."""

    size: int
    root: bytes
    note: str
    cosignatures: tuple[str, ...] = ()

    def full_note(self) -> str:
        """The log-signed note followed by every witness cosignature line."""
        return self.note + "".join(self.cosignatures)


class LogStore(abc.ABC):
    """Durable storage for one log; implementations serialise their own calls."""

    @abc.abstractmethod
    def size(self) -> int:
        """Return the number of entries stored."""

    @abc.abstractmethod
    def find_batches(self, batch_ids: Sequence[str]) -> dict[str, BatchReceipt]:
        """Return the receipts (``duplicate=True``) of those batch ids already stored."""

    def find_batch(self, batch_id: str) -> BatchReceipt | None:
        """Return the receipt of an already-stored batch, or None."""
        return self.find_batches([batch_id]).get(batch_id)

    @abc.abstractmethod
    def append(
        self,
        first_index: int,
        entries: Sequence[tuple[bytes, bytes]],
        nodes: Sequence[tuple[int, bytes]],
        batches: Sequence[tuple[str, int, int]],
    ) -> None:
        """Store entries from ``first_index`` on, their new tree nodes, and their batches.

        ``entries`` are ``(leaf hash, data)``; ``batches`` are ``(batch id, first
        index, count)`` and cover ``entries`` exactly (several client batches
        may share one transaction: group commit). One transaction, durable
        (fsync'd) before this returns; on any error nothing is stored.

        Raises:
            StoreStateError: the store's size is not ``first_index``, or a batch
                id is already stored (both mean another writer got in first).
        """

    @abc.abstractmethod
    def read_nodes(self, ids: Sequence[int]) -> dict[int, bytes]:
        """Return the stored hashes (leaves and stored levels) for those ids that exist."""

    def tree_reader(self) -> NodeReader:
        """A reader of any node id, deriving the unstored low levels from leaves."""
        return derive_low_levels(self.read_nodes, STORED_MIN_LEVEL)

    @abc.abstractmethod
    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Return ``(index, data)`` for stored entries with start <= index < end, in order."""

    def iter_entry_chunks(self, chunk: int = 50_000) -> Iterator[list[tuple[int, bytes, bytes]]]:
        """Yield non-empty lists of ``(index, leaf hash, data)`` for every stored row, in order."""
        start = 0
        while True:
            rows = self._entry_rows_from(start, chunk)
            if not rows:
                return
            yield rows
            start = rows[-1][0] + 1

    @abc.abstractmethod
    def _entry_rows_from(self, start: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        """Return up to ``limit`` rows with index >= start (gaps allowed, for auditing)."""

    @abc.abstractmethod
    def index_of_leaf(self, leaf_hash: bytes) -> int | None:
        """Return the first index whose leaf hash is ``leaf_hash``, or None."""

    @abc.abstractmethod
    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        """Store a signed checkpoint; storing the identical one again is a no-op.

        Raises:
            ConflictingCheckpointError: another checkpoint exists for ``size``.
        """

    @abc.abstractmethod
    def add_cosignature(self, size: int, line: str) -> None:
        """Attach one witness cosignature line to the checkpoint of ``size``."""

    @abc.abstractmethod
    def checkpoints(self) -> list[StoredCheckpoint]:
        """Return every stored checkpoint (with cosignatures), by size."""

    @abc.abstractmethod
    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """Return the checkpoint of ``size``, or None."""

    @abc.abstractmethod
    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """Return the checkpoint with the largest size, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
