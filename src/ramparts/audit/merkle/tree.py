"""Incremental tree building and proof generation over stored subtree hashes.

The log stores the hash of every *perfect* subtree (a subtree of 2**level
leaves starting at a multiple of 2**level) as soon as it is complete. Those
nodes never change, so they can be written once, in the same transaction as the
entries. A proof for any tree size then needs only O(log n) of them:

* an RFC 9162 proof is a list of subtree hashes over ranges ``[start, end)``;
* a range is either perfect (one stored node) or lies on the right border of an
  older tree (a few perfect nodes, folded right to left).

:class:`CompactRange` keeps the right border of the current tree in memory, so
appending is O(log n) hashes and root computation is O(log n).

>>> from ramparts.audit.merkle.hashing import leaf_hash
>>> cr = CompactRange()
>>> new_nodes = cr.append(leaf_hash(b"a"))
>>> cr.size, len(new_nodes)
(1, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ramparts.audit.merkle.errors import MerkleError, ProofError
from ramparts.audit.merkle.hashing import EMPTY_ROOT, node_hash

__all__ = [
    "LEVEL_BITS",
    "LEVEL_MASK",
    "CompactRange",
    "NodeReader",
    "consistency_ranges",
    "derive_low_levels",
    "inclusion_ranges",
    "node_id",
    "node_ids_for_range",
    "prove_consistency",
    "prove_inclusion",
    "root_at",
]

# Levels fit in 6 bits: a tree of 2**63 leaves has 64 levels (0..63).
LEVEL_BITS = 6
LEVEL_MASK = (1 << LEVEL_BITS) - 1

NodeReader = Callable[[Sequence[int]], Mapping[int, bytes]]
"""Reads stored perfect-subtree hashes by node id; returns those it has."""


def node_id(level: int, index: int) -> int:
    """Return the integer key of the perfect subtree at ``level`` with ``index``.

    Packing both into one integer lets SQLite use its rowid B-tree directly.
    """
    return (index << LEVEL_BITS) | level


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def node_ids_for_range(start: int, end: int) -> list[int]:
    """Return the perfect subtrees that make up ``[start, end)``, left to right.

    Only ranges that RFC 9162 proofs use are accepted: ``start`` is aligned to
    a power of two at least as large as the range, so the range splits into
    perfect subtrees by the set bits of its length, largest first.
    """
    length = end - start
    if length <= 0:
        raise ProofError(f"empty range [{start}, {end})")
    ids = []
    offset = start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            if offset % (1 << level):
                raise ProofError(f"range [{start}, {end}) is not a right-border range")
            ids.append(node_id(level, offset >> level))
            offset += 1 << level
    return ids


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash right-border subtrees (left to right, decreasing size) into one root."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the subtree ranges of PATH(index, D[0:size]) (RFC 9162 2.1.3.1), leaf upwards."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} out of range for tree size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Return the subtree ranges of PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1)."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            m -= k
            start += k
            complete = False
    if not complete:
        out.append((start, end))
    out.reverse()
    return out


def _hashes_for(ranges: Iterable[tuple[int, int]], read: NodeReader) -> list[bytes]:
    plans = [node_ids_for_range(s, e) for s, e in ranges]
    wanted = list({i for plan in plans for i in plan})
    found = read(wanted)
    missing = sorted(i for i in wanted if i not in found)
    if missing:
        level, index = missing[0] & LEVEL_MASK, missing[0] >> LEVEL_BITS
        raise MerkleError(
            f"store lacks {len(missing)} tree node(s), first at level {level} index {index}"
        )
    return [_fold_right([found[i] for i in plan]) for plan in plans]


def _inclusion_plan(index: int, size: int) -> list[list[int]]:
    """Node ids for each proof element of PATH(index, D[0:size]), leaf upwards.

    Same result as decomposing :func:`inclusion_ranges`, computed level by
    level because this is the hot path of the proof API: below the level where
    the paths to ``index`` and ``size - 1`` meet, each sibling is a perfect
    subtree except possibly one that reaches the right edge; above it, each
    set bit of ``index`` contributes its left sibling.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} out of range for tree size {size}")
    inner = (index ^ (size - 1)).bit_length()
    plan = []
    for level in range(inner):
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start + (1 << level) <= size:
            plan.append([(sibling << LEVEL_BITS) | level])
        else:
            plan.append(node_ids_for_range(start, size))
    for level in range(inner, size.bit_length()):
        if (index >> level) & 1:
            plan.append([(((index >> level) - 1) << LEVEL_BITS) | level])
    return plan


def prove_inclusion(index: int, size: int, read: NodeReader) -> list[bytes]:
    """Return the inclusion proof for leaf ``index`` in the tree of ``size``."""
    plan = _inclusion_plan(index, size)
    found = read([i for ids in plan for i in ids])
    try:
        return [
            found[ids[0]] if len(ids) == 1 else _fold_right([found[i] for i in ids]) for ids in plan
        ]
    except KeyError as exc:
        missing = exc.args[0]
        raise MerkleError(
            f"store lacks a tree node at level {missing & LEVEL_MASK} index {missing >> LEVEL_BITS}"
        ) from None


def prove_consistency(size1: int, size2: int, read: NodeReader) -> list[bytes]:
    """Return the consistency proof from ``size1`` to ``size2`` (empty when equal)."""
    if size1 == size2 and size1 > 0:
        return []
    return _hashes_for(consistency_ranges(size1, size2), read)


def root_at(size: int, read: NodeReader) -> bytes:
    """Return the root hash of the tree of ``size`` from stored perfect subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return _hashes_for([(0, size)], read)[0]


def derive_low_levels(read: NodeReader, min_level: int) -> NodeReader:
    """Wrap ``read`` so nodes below ``min_level`` (above the leaves) are computed from leaves.

    A store that keeps only leaves and nodes at ``min_level`` and above writes
    far fewer rows per entry (1/2**(min_level-1) instead of ~1); a proof then
    reads at most 2**min_level extra leaf hashes, all from one aligned block.
    """

    def reader(ids: Sequence[int]) -> Mapping[int, bytes]:
        derived = [i for i in ids if 0 < (i & LEVEL_MASK) < min_level]
        if not derived:
            return read(ids)
        wanted = {i for i in ids if not 0 < (i & LEVEL_MASK) < min_level}
        for i in derived:
            level, first = i & LEVEL_MASK, (i >> LEVEL_BITS) << (i & LEVEL_MASK)
            wanted.update(j << LEVEL_BITS for j in range(first, first + (1 << level)))
        found = dict(read(sorted(wanted)))
        for i in derived:
            level, first = i & LEVEL_MASK, (i >> LEVEL_BITS) << (i & LEVEL_MASK)
            row = [found.get(j << LEVEL_BITS) for j in range(first, first + (1 << level))]
            if None in row:
                continue  # reported as missing by the caller
            while len(row) > 1:
                row = [node_hash(row[k], row[k + 1]) for k in range(0, len(row), 2)]  # type: ignore[arg-type]
            found[i] = row[0]  # type: ignore[assignment]
        return found

    return reader


class CompactRange:
    """The right border of a tree of ``size`` leaves: one perfect subtree per set bit.

    ``append`` returns the ``(node id, hash)`` pairs of every perfect subtree
    the new leaf completes, the leaf itself first, so the caller can store
    them in the same transaction as the entry.
    """

    __slots__ = ("_hashes", "_levels", "size")

    def __init__(self, size: int = 0, border: Sequence[bytes] = ()) -> None:
        levels = [lvl for lvl in range(size.bit_length() - 1, -1, -1) if size >> lvl & 1]
        if len(levels) != len(border):
            raise MerkleError(
                f"compact range for size {size} needs {len(levels)} hashes, got {len(border)}"
            )
        self.size = size
        self._levels = levels
        self._hashes = list(border)

    @staticmethod
    def border_ids(size: int) -> list[int]:
        """Return the node ids of the right border of a tree of ``size``, largest first."""
        return node_ids_for_range(0, size) if size else []

    def append(self, leaf: bytes) -> list[tuple[int, bytes]]:
        """Add one leaf hash; return the newly completed perfect subtrees."""
        index = self.size
        new = [(node_id(0, index), leaf)]
        level, h = 0, leaf
        while self._levels and self._levels[-1] == level:
            self._levels.pop()
            h = node_hash(self._hashes.pop(), h)
            level += 1
            new.append((node_id(level, index >> level), h))
        self._levels.append(level)
        self._hashes.append(h)
        self.size += 1
        return new

    def extend(self, leaves: Iterable[bytes], min_level: int = 1) -> list[tuple[int, bytes]]:
        """Add many leaf hashes; return the completed subtrees at ``min_level`` and above.

        The batch form of :meth:`append`, without per-leaf lists: this is the
        hot loop of durable appends.
        """
        out = []
        levels, hashes, index = self._levels, self._hashes, self.size
        for leaf in leaves:
            level, h = 0, leaf
            while levels and levels[-1] == level:
                levels.pop()
                h = node_hash(hashes.pop(), h)
                level += 1
                if level >= min_level:
                    out.append((((index >> level) << LEVEL_BITS) | level, h))
            levels.append(level)
            hashes.append(h)
            index += 1
        self.size = index
        return out

    def root(self) -> bytes:
        """Return the root hash of the tree so far."""
        return _fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> CompactRange:
        """Return an independent copy (used to stage a batch before it is durable)."""
        return CompactRange(self.size, list(self._hashes))
