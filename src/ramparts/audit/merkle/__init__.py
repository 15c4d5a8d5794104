"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof generation, proof verification.

>>> from ramparts.audit.merkle import CompactRange, leaf_hash, verify_inclusion, prove_inclusion
>>> cr, nodes = CompactRange(), {}
>>> for entry in (b"a", b"b", b"c"):
...     nodes.update(cr.append(leaf_hash(entry)))
>>> proof = prove_inclusion(2, 3, lambda ids: {i: nodes[i] for i in ids if i in nodes})
>>> verify_inclusion(2, 3, leaf_hash(b"c"), proof, cr.root())
"""

from ramparts.audit.merkle.errors import (
    HashSizeError,
    MerkleError,
    ProofError,
    ProofSizeError,
    RootMismatchError,
)
from ramparts.audit.merkle.hashing import (
    EMPTY_ROOT,
    HASH_SIZE,
    RFC6962_LEAF_HASH_PREFIX,
    RFC6962_NODE_HASH_PREFIX,
    leaf_hash,
    node_hash,
)
from ramparts.audit.merkle.subtree import (
    is_valid_subtree,
    verify_subtree_consistency,
    verify_subtree_inclusion,
)
from ramparts.audit.merkle.tree import (
    CompactRange,
    NodeReader,
    node_id,
    prove_consistency,
    prove_inclusion,
    root_at,
)
from ramparts.audit.merkle.verify import (
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "RFC6962_LEAF_HASH_PREFIX",
    "RFC6962_NODE_HASH_PREFIX",
    "CompactRange",
    "HashSizeError",
    "MerkleError",
    "NodeReader",
    "ProofError",
    "ProofSizeError",
    "RootMismatchError",
    "is_valid_subtree",
    "leaf_hash",
    "node_hash",
    "node_id",
    "prove_consistency",
    "prove_inclusion",
    "root_at",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]
