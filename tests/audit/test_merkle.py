"""Merkle hashing, proof generation and verification: properties and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ramparts.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    HashSizeError,
    MerkleError,
    ProofError,
    ProofSizeError,
    RootMismatchError,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    root_at,
    verify_consistency,
    verify_inclusion,
)


def _build(n: int) -> tuple[list[bytes], dict[int, bytes]]:
    """Return the roots after every size 0..n and the stored node map."""
    cr, nodes, roots = CompactRange(), {}, [EMPTY_ROOT]
    for i in range(n):
        nodes.update(cr.append(leaf_hash(i.to_bytes(4, "big"))))
        roots.append(cr.root())
    return roots, nodes


def _reader(nodes: dict[int, bytes]):
    return lambda ids: {i: nodes[i] for i in ids if i in nodes}


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH written directly from its recursive definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


class TestHashing:
    def test_leaf_and_node_hashes_differ(self) -> None:
        """A leaf can never be confused with an interior node over the same bytes."""
        a, b = leaf_hash(b"x"), leaf_hash(b"y")
        assert leaf_hash(a + b) != node_hash(a, b)

    @given(st.binary(), st.binary())
    def test_different_leaves_hash_differently(self, x: bytes, y: bytes) -> None:
        """Distinct entries get distinct leaf hashes."""
        assert (leaf_hash(x) == leaf_hash(y)) == (x == y)


class TestCompactRange:
    @given(st.lists(st.binary(max_size=8), max_size=70))
    @settings(max_examples=60)
    def test_root_matches_recursive_definition(self, leaves: list[bytes]) -> None:
        """The incremental root equals MTH computed from the RFC's recursion, for every size."""
        cr, nodes = CompactRange(), {}
        for i, leaf in enumerate(leaves):
            nodes.update(cr.append(leaf_hash(leaf)))
            assert cr.root() == _reference_root(leaves[: i + 1])
            assert root_at(i + 1, _reader(nodes)) == cr.root()

    def test_restore_from_border(self) -> None:
        """A compact range rebuilt from stored border nodes continues identically."""
        roots, nodes = _build(13)
        border = [nodes[i] for i in CompactRange.border_ids(13)]
        restored = CompactRange(13, border)
        assert restored.root() == roots[13]
        restored.append(leaf_hash((13).to_bytes(4, "big")))
        assert restored.root() == _build(14)[0][14]

    def test_wrong_border_length_is_rejected(self) -> None:
        """A border that does not fit the size fails when the object is built."""
        with pytest.raises(MerkleError, match="needs 3 hashes, got 1"):
            CompactRange(7, [EMPTY_ROOT])


class TestInclusion:
    @given(st.data())
    @settings(max_examples=80)
    def test_generated_proofs_verify(self, data: st.DataObject) -> None:
        """Every inclusion proof generated for a random tree verifies."""
        n = data.draw(st.integers(1, 200))
        index = data.draw(st.integers(0, n - 1))
        size = data.draw(st.integers(index + 1, n))
        roots, nodes = _build(n)
        proof = prove_inclusion(index, size, _reader(nodes))
        verify_inclusion(index, size, leaf_hash(index.to_bytes(4, "big")), proof, roots[size])

    @given(st.data())
    @settings(max_examples=60)
    def test_any_bit_flip_fails(self, data: st.DataObject) -> None:
        """Flipping one bit anywhere in the leaf, proof or root makes verification raise."""
        n = data.draw(st.integers(2, 100))
        index = data.draw(st.integers(0, n - 1))
        roots, nodes = _build(n)
        leaf = leaf_hash(index.to_bytes(4, "big"))
        proof = prove_inclusion(index, n, _reader(nodes))
        parts = [leaf, *proof, roots[n]]
        which = data.draw(st.integers(0, len(parts) - 1))
        parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
        with pytest.raises(RootMismatchError):
            verify_inclusion(index, n, parts[0], parts[1:-1], parts[-1])

    def test_wrong_proof_size_message(self) -> None:
        """A short proof names the size found and the size wanted."""
        roots, nodes = _build(8)
        proof = prove_inclusion(0, 8, _reader(nodes))
        with pytest.raises(ProofSizeError, match="wrong proof size 2, want 3"):
            verify_inclusion(0, 8, leaf_hash(b"\0\0\0\0"), proof[:2], roots[8])

    def test_index_beyond_size(self) -> None:
        """An index outside the tree is refused before any hashing."""
        with pytest.raises(ProofError, match="index is beyond size: 8 >= 8"):
            verify_inclusion(8, 8, EMPTY_ROOT, [], EMPTY_ROOT)

    def test_short_hash_is_refused(self) -> None:
        """Every hash must be exactly 32 bytes."""
        with pytest.raises(HashSizeError, match="leaf hash has size 31, want 32"):
            verify_inclusion(0, 1, EMPTY_ROOT[:31], [], EMPTY_ROOT)


class TestConsistency:
    @given(st.data())
    @settings(max_examples=80)
    def test_generated_proofs_verify(self, data: st.DataObject) -> None:
        """Every consistency proof generated for a random pair of sizes verifies."""
        n = data.draw(st.integers(1, 200))
        size2 = data.draw(st.integers(1, n))
        size1 = data.draw(st.integers(1, size2))
        roots, nodes = _build(n)
        proof = prove_consistency(size1, size2, _reader(nodes))
        verify_consistency(size1, size2, proof, roots[size1], roots[size2])

    @given(st.data())
    @settings(max_examples=60)
    def test_any_bit_flip_fails(self, data: st.DataObject) -> None:
        """Flipping one bit in a proof hash or either root makes verification raise."""
        n = data.draw(st.integers(2, 100))
        size1 = data.draw(st.integers(1, n - 1))
        roots, nodes = _build(n)
        proof = prove_consistency(size1, n, _reader(nodes))
        parts = [roots[size1], *proof, roots[n]]
        which = data.draw(st.integers(0, len(parts) - 1))
        parts[which] = _flip(parts[which], data.draw(st.integers(0, 255)))
        with pytest.raises(RootMismatchError):
            verify_consistency(size1, n, parts[1:-1], parts[0], parts[-1])

    def test_from_empty_tree_is_an_error(self) -> None:
        """A consistency proof from size 0 proves nothing and is refused."""
        with pytest.raises(ProofError, match="empty tree"):
            verify_consistency(0, 5, [], EMPTY_ROOT, EMPTY_ROOT)

    def test_shrinking_tree_is_an_error(self) -> None:
        """size2 below size1 is a rollback, never consistent."""
        with pytest.raises(ProofError, match=r"size2 \(3\) < size1 \(5\)"):
            verify_consistency(5, 3, [], EMPTY_ROOT, EMPTY_ROOT)

    def test_wrong_proof_size_message(self) -> None:
        """A proof with an extra hash names the size found and the size wanted."""
        roots, nodes = _build(8)
        proof = prove_consistency(3, 8, _reader(nodes))
        with pytest.raises(
            ProofSizeError, match=f"wrong proof size {len(proof) + 1}, want {len(proof)}"
        ):
            verify_consistency(3, 8, [*proof, EMPTY_ROOT], roots[3], roots[8])

    def test_missing_store_node_is_reported(self) -> None:
        """Generation against an incomplete store names the missing node instead of guessing."""
        _, nodes = _build(8)
        del nodes[(1 << 6) | 2]  # level 2, index 1
        with pytest.raises(MerkleError, match="level 2 index 1"):
            prove_consistency(3, 8, _reader(nodes))


class TestSubtrees:
    @given(st.data())
    @settings(max_examples=60)
    def test_subtree_inclusion_from_shifted_tree(self, data: st.DataObject) -> None:
        """A valid subtree is a tree of its own: proofs made inside it verify as subtree proofs."""
        from ramparts.audit.merkle import is_valid_subtree, verify_subtree_inclusion
        from ramparts.audit.merkle.tree import LEVEL_BITS, LEVEL_MASK

        n = data.draw(st.integers(2, 120))
        start = data.draw(st.integers(0, n - 1))
        end = data.draw(st.integers(start + 1, n))
        if not is_valid_subtree(start, end):
            with pytest.raises(ProofError, match="not a valid subtree"):
                verify_subtree_inclusion(start, (start, end), EMPTY_ROOT, [], EMPTY_ROOT)
            return
        _, nodes = _build(n)

        def shifted(ids):  # local node (level, i) is global (level, i + start >> level)
            out = {}
            for i in ids:
                level = i & LEVEL_MASK
                g = (((i >> LEVEL_BITS) + (start >> level)) << LEVEL_BITS) | level
                if g in nodes:
                    out[i] = nodes[g]
            return out

        local_root = root_at(end - start, shifted)
        index = data.draw(st.integers(start, end - 1))
        proof = prove_inclusion(index - start, end - start, shifted)
        leaf = leaf_hash(index.to_bytes(4, "big"))
        verify_subtree_inclusion(index, (start, end), leaf, proof, local_root)
        with pytest.raises(RootMismatchError):
            verify_subtree_inclusion(index, (start, end), leaf, proof, _flip(local_root, 3))

    @given(st.data())
    @settings(max_examples=40)
    def test_prefix_subtree_consistency_matches_rfc(self, data: st.DataObject) -> None:
        """For [0, size1) a subtree consistency proof is exactly an RFC 9162 consistency proof."""
        from ramparts.audit.merkle import verify_subtree_consistency

        n = data.draw(st.integers(2, 120))
        size1 = data.draw(st.integers(1, n - 1))
        roots, nodes = _build(n)
        proof = prove_consistency(size1, n, _reader(nodes))
        verify_subtree_consistency((0, size1), n, proof, roots[size1], roots[n])
        with pytest.raises(MerkleError):
            verify_subtree_consistency((0, size1), n, proof, roots[size1], _flip(roots[n], 9))
