"""RFC 9162 inclusion and consistency proof verification.

Small on purpose, so it can be reviewed in one sitting. Every precondition is
checked before any hashing; each failure raises a specific exception whose
message names what was expected and what was found. Verification returns
nothing: a caller cannot forget to look at a boolean.

The algorithm follows RFC 9162 sections 2.1.3.2 and 2.1.4.2, in the
bit-decomposition form used by transparency-dev/merkle (proof/verify.go).

>>> from ramparts.audit.merkle.hashing import leaf_hash
>>> verify_inclusion(0, 1, leaf_hash(b"a"), [], leaf_hash(b"a"))
"""

from __future__ import annotations

from collections.abc import Sequence

from ramparts.audit.merkle.errors import (
    HashSizeError,
    ProofError,
    ProofSizeError,
    RootMismatchError,
)
from ramparts.audit.merkle.hashing import HASH_SIZE, node_hash

__all__ = ["root_from_inclusion_proof", "verify_consistency", "verify_inclusion"]


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise HashSizeError(f"{what} has size {len(value)}, want {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof into its inner part and its right-border part.

    The inner part is the path below the level where the paths to ``index`` and
    to ``size - 1`` meet; the border part holds the left siblings above it.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _match(what: str, calculated: bytes, expected: bytes) -> None:
    if calculated != expected:
        raise RootMismatchError(
            f"{what} mismatch: calculated {calculated.hex()}, expected {expected.hex()}",
            calculated=calculated,
            expected=expected,
        )


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root implied by an inclusion proof of ``leaf`` at ``index`` in a tree of ``size``.

    Preconditions (each raises ProofError or a subclass): 0 <= index < size;
    ``leaf`` and every proof hash are HASH_SIZE bytes; the proof has exactly
    the length the tree shape requires.
    """
    if index < 0 or size < 0:
        raise ProofError(f"negative index {index} or size {size}")
    if index >= size:
        raise ProofError(f"index is beyond size: {index} >= {size}")
    _check_hash("leaf hash", leaf)
    _check_proof_hashes(proof)
    inner, border = _decompose_inclusion(index, size)
    if len(proof) != inner + border:
        raise ProofSizeError(f"wrong proof size {len(proof)}, want {inner + border}")
    res = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` whose head is ``root``.

    Raises:
        ProofError: a precondition failed (see :func:`root_from_inclusion_proof`).
        RootMismatchError: the proof is well formed but leads to another root.
    """
    _check_hash("root", root)
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    _match("root", calculated, root)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with head ``root2`` extends the one of ``size1``/``root1``.

    Preconditions, checked in this order: 0 <= size1 <= size2; a proof from
    size 0 is refused (an empty tree is consistent with everything, so such a
    "proof" proves nothing and is treated as an error rather than silently
    passing); equal sizes need an empty proof and identical roots; otherwise
    both roots and every proof hash are HASH_SIZE bytes and the proof length
    matches the tree shape.

    Raises:
        ProofError: a precondition failed.
        RootMismatchError: the proof is well formed but does not connect the roots.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative size1 {size1} or size2 {size2}")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == 0:
        raise ProofError("consistency proof from an empty tree (size1 = 0) is meaningless")
    if size1 == size2:
        # Nothing is hashed here: the claim is only that both heads are the same
        # bytes. transparency-dev's probe "sizes are equal (one) and proof is
        # empty" requires accepting equal (even short) roots in this case.
        if proof:
            raise ProofSizeError(f"wrong proof size {len(proof)}, want 0 (size1 = size2)")
        _match("root", root2, root1)
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_proof_hashes(proof)
    if not proof:
        raise ProofSizeError("wrong proof size 0, want at least 1")

    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    # The proof starts with the hash of the subtree of size 2**shift that ends
    # at size1, unless size1 is itself that power of two (then it is root1).
    if size1 == 1 << shift:
        seed, rest = root1, proof
    else:
        seed, rest = proof[0], proof[1:]
    want = len(proof) - len(rest) + inner + border
    if len(proof) != want:
        raise ProofSizeError(f"wrong proof size {len(proof)}, want {want}")

    mask = (size1 - 1) >> shift
    hash1 = _chain_inner_right(seed, rest[:inner], mask)
    hash1 = _chain_border_right(hash1, rest[inner:])
    _match("root1", hash1, root1)
    hash2 = _chain_inner(seed, rest[:inner], mask)
    hash2 = _chain_border_right(hash2, rest[inner:])
    _match("root2", hash2, root2)
