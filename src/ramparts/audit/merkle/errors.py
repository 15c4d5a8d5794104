"""Exceptions raised by Merkle proof verification and generation.

::

    MerkleError
     ├── ProofError            a proof or its parameters are malformed
     │    ├── ProofSizeError   the proof has the wrong number of hashes
     │    └── HashSizeError    a hash is not exactly 32 bytes
     └── RootMismatchError     the proof is well formed but does not lead to the root
"""

from __future__ import annotations

__all__ = ["HashSizeError", "MerkleError", "ProofError", "ProofSizeError", "RootMismatchError"]


class MerkleError(Exception):
    """Base class: a Merkle proof did not verify or could not be produced."""


class ProofError(MerkleError):
    """The proof or its parameters (index, sizes) are malformed."""


class ProofSizeError(ProofError):
    """The proof does not have the number of hashes the tree shape requires."""


class HashSizeError(ProofError):
    """A hash (leaf, root or proof element) is not exactly HASH_SIZE bytes."""


class RootMismatchError(MerkleError):
    """The proof is well formed but the root it yields differs from the expected one."""

    def __init__(self, message: str, *, calculated: bytes, expected: bytes) -> None:
        super().__init__(message)
        self.calculated = calculated
        self.expected = expected
