"""Subtree inclusion and consistency proofs (draft-ietf-plants-merkle-tree-certs, section 4).

A *subtree* ``[start, end)`` of a log is valid when ``start < end`` and
``start`` is a multiple of the smallest power of two >= ``end - start``: it is
then a node, or the right-border part of a node, of every tree that contains
it. Witnesses may cosign subtrees (tlog-witness ``sign-subtree``), and these
proofs tie a subtree hash to a leaf, or to the root of a larger tree.

The algorithms generalise the RFC 9162 ones in :mod:`.verify` (a consistency
proof from ``size1`` is a subtree consistency proof for ``[0, size1)``); they
are checked against transparency-dev's subtree test probes.

>>> is_valid_subtree(8, 13), is_valid_subtree(2, 5)
(True, False)
"""

from __future__ import annotations

from collections.abc import Sequence

from ramparts.audit.merkle.errors import ProofError, ProofSizeError
from ramparts.audit.merkle.hashing import EMPTY_ROOT
from ramparts.audit.merkle.verify import (
    _chain_border_right,
    _chain_inner,
    _chain_inner_right,
    _check_hash,
    _check_proof_hashes,
    _decompose_inclusion,
    _match,
    root_from_inclusion_proof,
)

__all__ = ["is_valid_subtree", "verify_subtree_consistency", "verify_subtree_inclusion"]


def is_valid_subtree(start: int, end: int) -> bool:
    """Return whether ``[start, end)`` is a subtree in the sense of the draft, section 4.1."""
    return 0 <= start < end and start % (1 << (end - start - 1).bit_length()) == 0


def _require_subtree(start: int, end: int) -> None:
    if not is_valid_subtree(start, end):
        raise ProofError(f"[{start}, {end}) is not a valid subtree")


def verify_subtree_inclusion(
    index: int, subtree: tuple[int, int], leaf: bytes, proof: Sequence[bytes], subtree_root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in ``subtree`` = (start, end) with ``subtree_root``.

    Raises:
        ProofError: invalid subtree, index outside it, bad hash size or proof length.
        RootMismatchError: the proof leads to another subtree hash.
    """
    start, end = subtree
    _require_subtree(start, end)
    if not start <= index < end:
        raise ProofError(f"index {index} is outside the subtree [{start}, {end})")
    _check_hash("subtree root", subtree_root)
    calculated = root_from_inclusion_proof(index - start, end - start, leaf, proof)
    _match("subtree root", calculated, subtree_root)


def verify_subtree_consistency(
    subtree: tuple[int, int], size: int, proof: Sequence[bytes], subtree_root: bytes, root: bytes
) -> None:
    """Check that ``subtree`` = (start, end) with ``subtree_root`` is part of the tree of ``size``.

    Raises:
        ProofError: invalid subtree, ``end > size``, bad hash size or proof length.
        RootMismatchError: the proof does not connect the two hashes.
    """
    start, end = subtree
    if start == end and start >= 0:
        # An empty subtree is part of every tree that reaches it. Its hash must
        # be the empty-tree hash and the proof empty; the tree root is not
        # involved (transparency-dev probes "subtree is empty ...").
        if size < end:
            raise ProofError(f"tree size {size} < subtree end {end}")
        if proof:
            raise ProofSizeError(f"wrong proof size {len(proof)}, want 0 (empty subtree)")
        _match("empty subtree root", subtree_root, EMPTY_ROOT)
        return
    _require_subtree(start, end)
    if size < end:
        raise ProofError(f"tree size {size} < subtree end {end}")
    if start == 0 and end == size:
        # The subtree is the whole tree: nothing to hash, the two must be equal.
        if proof:
            raise ProofSizeError(f"wrong proof size {len(proof)}, want 0 (subtree = tree)")
        _match("root", root, subtree_root)
        return
    if not proof:
        raise ProofSizeError("wrong proof size 0, want at least 1")
    _check_hash("subtree root", subtree_root)
    _check_hash("root", root)
    _check_proof_hashes(proof)

    height = ((end - 1) ^ start).bit_length()  # height of the subtree's node
    if end == size:
        # The subtree lies on the right border: only its left siblings are needed.
        want = (start >> height).bit_count()
        if len(proof) != want:
            raise ProofSizeError(f"wrong proof size {len(proof)}, want {want}")
        _match("root", _chain_border_right(subtree_root, proof), root)
        return

    fork, border = _decompose_inclusion(end - 1, size)
    shift = ((end - start) & -(end - start)).bit_length() - 1  # trailing zeros
    inner = fork - shift
    perfect = end - start == 1 << shift
    # A perfect subtree is its own rightmost part; otherwise the proof starts
    # with the hash of the subtree's rightmost perfect part.
    seed, rest = (subtree_root, proof) if perfect else (proof[0], proof[1:])
    want = len(proof) - len(rest) + inner + border
    if len(proof) != want:
        raise ProofSizeError(f"wrong proof size {len(proof)}, want {want}")
    mask = (end - 1) >> shift
    if not perfect:
        # The proof carries nodes inside the subtree: they must rebuild its hash.
        sub_inner = min(height, fork) - shift
        sub_border = max(0, border - ((end - 1) >> height).bit_count())
        hash1 = _chain_inner_right(seed, rest[:sub_inner], mask)
        hash1 = _chain_border_right(hash1, rest[inner : inner + sub_border])
        _match("subtree root", hash1, subtree_root)
    hash2 = _chain_inner(seed, rest[:inner], mask)
    hash2 = _chain_border_right(hash2, rest[inner:])
    _match("root", hash2, root)
