"""RFC 6962 / RFC 9162 Merkle tree hashing.

The leaf and interior node hashes take different one-byte prefixes so that a
leaf can never be passed off as an interior node (second-preimage defence,
RFC 9162 section 2.1.1).

>>> leaf_hash(b"").hex()[:16]
'6e340b9cffb37a98'
"""

from __future__ import annotations

import hashlib

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "RFC6962_LEAF_HASH_PREFIX",
    "RFC6962_NODE_HASH_PREFIX",
    "leaf_hash",
    "node_hash",
]

# RFC 9162 section 2.1.1: MTH({d(0)}) = HASH(0x00 || d(0)).
RFC6962_LEAF_HASH_PREFIX = b"\x00"
# RFC 9162 section 2.1.1: MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
RFC6962_NODE_HASH_PREFIX = b"\x01"
# SHA-256 output size in bytes; every hash in a proof must have exactly this size.
HASH_SIZE = 32
# RFC 9162 section 2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """Return SHA-256(0x00 || entry), the hash of one log entry."""
    return hashlib.sha256(RFC6962_LEAF_HASH_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), the hash of an interior node."""
    return hashlib.sha256(RFC6962_NODE_HASH_PREFIX + left + right).digest()
