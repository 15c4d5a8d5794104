"""RFC 6962 / 9162 conformance: transparency-dev probes and the CT reference tree.

Each runner checks every vector and reports all failures at once, so one run
shows the whole picture instead of the first broken case.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ramparts.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleError,
    leaf_hash,
    node_hash,
    prove_consistency,
    prove_inclusion,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.conformance


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _probes(merkle_dir: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    root = merkle_dir / "transparency-dev-testdata" / kind
    return [
        (str(p.relative_to(root)), json.loads(p.read_text())) for p in sorted(root.rglob("*.json"))
    ]


@pytest.fixture(scope="module")
def merkle_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "merkle"


@pytest.fixture(scope="module")
def vectors(merkle_dir: Path) -> dict[str, Any]:
    return json.loads((merkle_dir / "merkle_vectors.json").read_text())


def _run_probe(check, probe: dict[str, Any]) -> str | None:
    """Return a failure description, or None when the verifier agrees with wantErr."""
    try:
        check(probe)
    except MerkleError as exc:
        return None if probe["wantErr"] else f"unexpected error: {exc}"
    return "accepted, want error" if probe["wantErr"] else None


def test_transparency_dev_inclusion_probes(merkle_dir: Path) -> None:
    """Every inclusion probe errors iff wantErr."""

    def check(p: dict[str, Any]) -> None:
        proof = [_b64(h) for h in p["proof"] or []]
        verify_inclusion(p["leafIdx"], p["treeSize"], _b64(p["leafHash"]), proof, _b64(p["root"]))

    probes = _probes(merkle_dir, "inclusion")
    failures = [f"{name}: {why}" for name, p in probes if (why := _run_probe(check, p))]
    assert len(probes) == 98
    assert not failures, "\n".join(failures)


def test_transparency_dev_consistency_probes(merkle_dir: Path) -> None:
    """Every consistency probe errors iff wantErr (from size 0 is always an error)."""

    def check(p: dict[str, Any]) -> None:
        proof = [_b64(h) for h in p["proof"] or []]
        verify_consistency(p["size1"], p["size2"], proof, _b64(p["root1"]), _b64(p["root2"]))

    probes = _probes(merkle_dir, "consistency")
    failures = [f"{name}: {why}" for name, p in probes if (why := _run_probe(check, p))]
    assert len(probes) == 98
    assert not failures, "\n".join(failures)


def test_transparency_dev_subtree_inclusion_probes(merkle_dir: Path) -> None:
    """Every subtree inclusion probe (MTC draft section 4.3) errors iff wantErr."""
    from ramparts.audit.merkle.subtree import verify_subtree_inclusion

    def check(p: dict[str, Any]) -> None:
        proof = [_b64(h) for h in p["proof"] or []]
        verify_subtree_inclusion(
            p["leafIdx"], (p["start"], p["end"]), _b64(p["leafHash"]), proof, _b64(p["root"])
        )

    probes = _probes(merkle_dir, "subtreeinclusion")
    failures = [f"{name}: {why}" for name, p in probes if (why := _run_probe(check, p))]
    assert len(probes) == 204
    assert not failures, "\n".join(failures)


def test_transparency_dev_subtree_consistency_probes(merkle_dir: Path) -> None:
    """Every subtree consistency probe (MTC draft section 4.4) errors iff wantErr."""
    from ramparts.audit.merkle.subtree import verify_subtree_consistency

    def check(p: dict[str, Any]) -> None:
        proof = [_b64(h) for h in p["proof"] or []]
        verify_subtree_consistency(
            (p["start"], p["end"]), p["size"], proof, _b64(p["root1"]), _b64(p["root2"])
        )

    probes = _probes(merkle_dir, "subtreeconsistency")
    failures = [f"{name}: {why}" for name, p in probes if (why := _run_probe(check, p))]
    assert len(probes) == 118
    assert not failures, "\n".join(failures)


def test_hashing_known_answers(vectors: dict[str, Any]) -> None:
    """Leaf, node and empty-tree hashes match the published known answers.

    Reproduce by hand: ``printf '\\x00' | sha256sum`` gives the empty-leaf hash.
    """
    failures = []
    for kat in vectors["hashing_kats"]:
        if kat["fn"] == "empty_root":
            got = EMPTY_ROOT
        elif kat["fn"] == "leaf":
            got = leaf_hash(bytes.fromhex(kat["input_hex"]))
        else:
            got = node_hash(bytes.fromhex(kat["left_hex"]), bytes.fromhex(kat["right_hex"]))
        if got.hex() != kat["want"]:
            failures.append(f"{kat['desc']}: got {got.hex()}")
    assert not failures, "\n".join(failures)


def _reference_tree(vectors: dict[str, Any]) -> tuple[list[bytes], dict[int, bytes]]:
    """Build the 8-leaf CT reference tree; return the root after each size and the node store."""
    cr, nodes, roots = CompactRange(), {}, [EMPTY_ROOT]
    for leaf_hex in vectors["reference_tree"]["leaf_inputs_hex"]:
        nodes.update(cr.append(leaf_hash(bytes.fromhex(leaf_hex))))
        roots.append(cr.root())
    return roots, nodes


def test_reference_tree_roots(vectors: dict[str, Any]) -> None:
    """Roots for sizes 0..8 of the CT reference tree match, as do its leaf hashes."""
    roots, nodes = _reference_tree(vectors)
    want = vectors["reference_tree"]["roots_by_size"]
    failures = [
        f"size {n}: {r.hex()} != {w}"
        for n, (r, w) in enumerate(zip(roots, want, strict=True))
        if r.hex() != w
    ]
    for i, want_leaf in enumerate(vectors["reference_tree"]["leaf_hashes"]):
        if nodes[i << 6].hex() != want_leaf:
            failures.append(f"leaf {i}: {nodes[i << 6].hex()} != {want_leaf}")
    assert not failures, "\n".join(failures)


def test_reference_tree_inclusion_proofs(vectors: dict[str, Any]) -> None:
    """Every generated inclusion proof equals the reference one and verifies."""
    _, nodes = _reference_tree(vectors)
    read = lambda ids: {i: nodes[i] for i in ids if i in nodes}  # noqa: E731
    failures = []
    cases = vectors["inclusion_all_8"]
    assert len(cases) == 36
    for c in cases:
        want = c["proof"]
        got = [h.hex() for h in prove_inclusion(c["leaf_index"], c["tree_size"], read)]
        where = f"leaf {c['leaf_index']} size {c['tree_size']}"
        if got != want:
            failures.append(f"{where}: generated {got}, want {want}")
        try:
            verify_inclusion(
                c["leaf_index"],
                c["tree_size"],
                bytes.fromhex(c["leaf_hash"]),
                [bytes.fromhex(h) for h in want],
                bytes.fromhex(c["root"]),
            )
        except MerkleError as exc:
            failures.append(f"{where}: reference proof rejected: {exc}")
    for c in vectors["ct_cpp_kat_paths_1based"]:
        got = [h.hex() for h in prove_inclusion(c["leaf_1based"] - 1, c["tree_size"], read)]
        if got != c["path"]:
            failures.append(
                f"CT KAT leaf {c['leaf_1based']} (1-based) size {c['tree_size']}: {got}"
            )
    assert not failures, "\n".join(failures)


def test_reference_tree_consistency_proofs(vectors: dict[str, Any]) -> None:
    """Every generated consistency proof equals the reference one and verifies."""
    roots, nodes = _reference_tree(vectors)
    read = lambda ids: {i: nodes[i] for i in ids if i in nodes}  # noqa: E731
    failures = []
    cases = vectors["consistency_all_8"]
    assert len(cases) == 36
    for c in cases:
        want = c["proof"]
        got = [h.hex() for h in prove_consistency(c["size1"], c["size2"], read)]
        where = f"{c['size1']} -> {c['size2']}"
        if got != want:
            failures.append(f"{where}: generated {got}, want {want}")
        try:
            verify_consistency(
                c["size1"],
                c["size2"],
                [bytes.fromhex(h) for h in want],
                bytes.fromhex(c["root1"]),
                bytes.fromhex(c["root2"]),
            )
        except MerkleError as exc:
            failures.append(f"{where}: reference proof rejected: {exc}")
        if roots[c["size2"]].hex() != c["root2"]:
            failures.append(f"{where}: root2 differs")
    for c in vectors["ct_cpp_kat_consistency"]:
        got = [h.hex() for h in prove_consistency(c["size1"], c["size2"], read)]
        if got != c["proof"]:
            failures.append(f"CT KAT {c['size1']} -> {c['size2']}: {got}")
    assert not failures, "\n".join(failures)


def _note_bytes(case: dict[str, Any]) -> bytes:
    """The JSON stores a raw 0xff byte as U+00FF; send it as the raw byte."""
    return case["note"].encode().replace("\u00ff".encode(), b"\xff")


def test_signed_note_cases(vectors: dict[str, Any]) -> None:
    """The golang.org/x/mod note cases and the C2SP example: accept/reject and which sigs verify."""
    from ramparts.audit.note import (
        InvalidSignatureError,
        MalformedNoteError,
        NoteError,
        UnverifiedNoteError,
        open_note,
        parse_vkey,
    )

    want_error = {
        "error:malformed note": MalformedNoteError,
        "error:invalid signature": InvalidSignatureError,
        "error:no verifiable signatures": UnverifiedNoteError,
    }
    sn = vectors["signed_note"]
    keys = {name: parse_vkey(vkey) for name, vkey in sn["verifier_keys"].items()}
    failures = []
    for case in sn["cases"]:
        verifiers = [keys[n] for n in case["verifiers"]]
        try:
            note = open_note(_note_bytes(case), verifiers)
        except NoteError as exc:
            want = case["want"]
            if not want.startswith("error:"):
                failures.append(f"{case['desc']}: unexpected {type(exc).__name__}: {exc}")
            elif not isinstance(exc, want_error[want]) or want[6:] not in str(exc):
                failures.append(f"{case['desc']}: {type(exc).__name__} {str(exc)!r}, want {want}")
            continue
        if case["want"] != "ok":
            failures.append(f"{case['desc']}: accepted, want {case['want']}")
            continue
        if "verified_sigs" in case and [s.name for s in note.sigs] != case["verified_sigs"]:
            failures.append(f"{case['desc']}: verified {[s.name for s in note.sigs]}")
        if [s.name for s in note.unverified_sigs] != case.get("unverified_sigs", []):
            failures.append(f"{case['desc']}: unverified {[s.name for s in note.unverified_sigs]}")
    assert not failures, "\n".join(failures)


def test_signed_note_bad_verifier_keys(vectors: dict[str, Any]) -> None:
    """Each malformed vkey (bad length, unknown type, wrong key id) is refused."""
    from ramparts.audit.note import KeyFormatError, parse_vkey

    accepted = []
    for vkey in vectors["signed_note"]["bad_verifier_keys"]:
        try:
            parse_vkey(vkey)
        except KeyFormatError:
            continue
        accepted.append(vkey)
    assert not accepted, f"accepted bad vkeys: {accepted}"


def test_signed_note_ambiguous_key(vectors: dict[str, Any]) -> None:
    """Two configured verifiers with the same name and id are an error once that key signed."""
    from ramparts.audit.note import AmbiguousKeyError, open_note, parse_vkey

    sn = vectors["signed_note"]
    enoch = sn["verifier_keys"]["EnochRoot"]
    two_sigs = next(c for c in sn["cases"] if c["desc"] == "two sigs, both known")
    with pytest.raises(AmbiguousKeyError, match="ambiguous key"):
        open_note(_note_bytes(two_sigs), [parse_vkey(enoch), parse_vkey(enoch)])


def test_signed_note_reference_signer(vectors: dict[str, Any]) -> None:
    """The Go reference key signs the reference note byte for byte (Ed25519 is deterministic)."""
    from ramparts.audit.note import Signer

    sn = vectors["signed_note"]
    signer = Signer.from_skey(sn["signer_key_PeterNeumann"])
    assert signer.verifier().vkey == sn["verifier_keys"]["PeterNeumann"]
    reference = sn["cases"][0]["note"]
    text = reference[: reference.rindex("\n\n") + 1]
    assert signer.sign_note(text) == reference


def test_checkpoint_example_parses(vectors: dict[str, Any]) -> None:
    """The tlog-checkpoint example body parses and re-serialises identically."""
    from ramparts.audit.checkpoint import Checkpoint

    text = vectors["checkpoint_example"]["text"]
    cp = Checkpoint.parse(text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.text() == text
