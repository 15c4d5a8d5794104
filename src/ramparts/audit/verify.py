"""Offline audit of a stored log: recompute the tree and check every signed statement.

What is checked, and what each failure means:

* every stored checkpoint carries a valid log signature, parses, and agrees
  with its own row (size, root); with witness keys given, it carries each
  witness's cosignature (the latest one must; an older one without is a
  warning, since the witness vouched for consistency up to a later size);
* two stored checkpoints of one size with different roots: a **fork**;
* entry indexes run 0, 1, 2... without gaps (**deleted** or inserted rows),
  and each stored leaf hash matches its entry's bytes (**modified** entry);
* the tree recomputed from the entries has, at every checkpoint size, the
  signed root (**modified, reordered, inserted** entries), and the stored tree
  nodes yield the same roots (tampered proof data);
* no checkpoint is beyond the stored entries (**truncated** log);
* externally held checkpoints (from a witness or a client) are not beyond
  the log (**rolled back**) and match its tree (**fork**).

>>> import tempfile, pathlib
>>> from ramparts.audit.note import Signer
>>> from ramparts.audit.store import open_store
>>> from ramparts.audit.log import AuditLog
>>> signer = Signer.generate("ex/log")
>>> log = AuditLog(open_store(pathlib.Path(tempfile.mkdtemp()) / "a.db"), signer)
>>> _ = log.append("b", [{"n": 1}]); _ = log.publish_checkpoint()
>>> verify_log(log.store, [signer.verifier()]).ok
True
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from ramparts.audit.checkpoint import Checkpoint
from ramparts.audit.merkle import CompactRange, leaf_hash, root_at
from ramparts.audit.merkle.errors import MerkleError
from ramparts.audit.merkle.tree import LEVEL_BITS, LEVEL_MASK
from ramparts.audit.note import NoteError, Verifier, open_note
from ramparts.audit.store import STORED_MIN_LEVEL, LogStore, StoredCheckpoint

__all__ = ["Finding", "Report", "verify_log"]


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, a message naming where, and the entry index / size involved."""

    kind: str
    message: str
    index: int | None = None
    size: int | None = None
    severity: str = "error"


@dataclass
class Report:
    """The result of an audit; ``ok`` only when there is no error-level finding."""

    entries: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def add(self, kind: str, message: str, **where: int | str | None) -> None:
        self.findings.append(Finding(kind, message, **where))  # type: ignore[arg-type]


def _short(h: bytes) -> str:
    return base64.b64encode(h).decode()[:12] + "..."


def _valid_cosigners(text: str, lines: Sequence[str], witness_keys: Sequence[Verifier]) -> set[str]:
    """Return the vkeys of witnesses with at least one valid cosignature line over ``text``.

    Lines are checked one by one, so a bad or misfiled line (e.g. a cosignature
    of another checkpoint of the same size) cannot hide a good one.
    """
    valid = set()
    for line in lines:
        try:
            note = open_note((text + "\n" + line).encode(), witness_keys)
        except NoteError:
            continue
        valid.update(w.vkey for w in witness_keys if note.signed_by(w))
    return valid


def _check_signatures(
    report: Report,
    cp: StoredCheckpoint,
    log_keys: Sequence[Verifier],
    witness_keys: Sequence[Verifier],
    *,
    latest: bool,
) -> Checkpoint | None:
    where = f"checkpoint size {cp.size}"
    try:
        note = open_note(cp.note.encode(), log_keys)
    except NoteError as exc:
        report.add("signature", f"{where}: {exc}", size=cp.size)
        return None
    cosigned = _valid_cosigners(note.text, cp.cosignatures, witness_keys) if witness_keys else set()
    for w in witness_keys:
        if w.vkey not in cosigned:
            severity = "error" if latest else "warning"
            report.findings.append(
                Finding(
                    "cosignature",
                    f"{where}: no valid cosignature by witness {w.name}",
                    size=cp.size,
                    severity=severity,
                )
            )
    try:
        parsed = Checkpoint.parse(note.text)
    except NoteError as exc:
        report.add("checkpoint", f"{where}: {exc}", size=cp.size)
        return None
    if parsed.size != cp.size or parsed.root_hash != cp.root:
        report.add(
            "checkpoint",
            f"{where}: signed body (size {parsed.size}) differs from its row",
            size=cp.size,
        )
        return None
    return parsed


def verify_log(
    store: LogStore,
    log_keys: Sequence[Verifier],
    witness_keys: Sequence[Verifier] = (),
    trusted_checkpoints: Sequence[bytes] = (),
) -> Report:
    """Audit ``store`` against its checkpoints and any externally held checkpoints.

    Args:
        store: the log's store (read only).
        log_keys: the log's verifier key(s); required, the audit fails closed without.
        witness_keys: witnesses whose cosignatures each checkpoint must carry.
        trusted_checkpoints: signed checkpoint notes held outside the log.
    """
    report = Report()
    if not log_keys:
        report.add("config", "no log key given; nothing can be verified")
        return report
    stored = store.checkpoints()
    report.checkpoints = len(stored)
    want: dict[int, list[tuple[str, bytes]]] = {}  # size -> [(source, root)]
    origins = set()
    for n, cp in enumerate(stored):
        parsed = _check_signatures(report, cp, log_keys, witness_keys, latest=n == len(stored) - 1)
        if parsed is not None:
            origins.add(parsed.origin)
            want.setdefault(cp.size, []).append((f"checkpoint size {cp.size}", cp.root))
    for size, roots in want.items():
        if len({r for _, r in roots}) > 1:
            report.add(
                "fork",
                f"fork: {len(roots)} signed checkpoints for size {size} with different roots",
                size=size,
            )
    for number, raw in enumerate(trusted_checkpoints, 1):
        try:
            parsed = Checkpoint.parse(open_note(raw, log_keys).text)
        except NoteError as exc:
            report.add("trusted", f"trusted checkpoint #{number}: {exc}")
            continue
        origins.add(parsed.origin)
        want.setdefault(parsed.size, []).append(
            (f"trusted checkpoint #{number} (size {parsed.size})", parsed.root_hash)
        )
        others = {r for src, r in want[parsed.size] if src.startswith("checkpoint")}
        if others and parsed.root_hash not in others:
            report.add(
                "fork",
                f"fork: trusted checkpoint #{number} and the stored checkpoint "
                f"for size {parsed.size} have different roots",
                size=parsed.size,
            )
    if len(origins) > 1:
        report.add(
            "origin", f"checkpoints name {len(origins)} different origins: {sorted(origins)}"
        )

    _recompute(store, report, want)
    signed = [cp.size for cp in stored]
    if report.entries and not signed:
        report.add("checkpoint", f"no signed checkpoint covers the {report.entries} stored entries")
    elif signed and max(signed) < report.entries:
        report.findings.append(
            Finding(
                "uncovered",
                f"entries [{max(signed)}, {report.entries}) are not yet under a checkpoint",
                index=max(signed),
                severity="warning",
            )
        )
    return report


# Inner tree nodes are compared against the store this many at a time.
_NODE_CHECK_BATCH = 65_536
# Report at most this many bad nodes; one tampered entry spoils a whole path.
_MAX_NODE_FINDINGS = 10


def _compare_nodes(store: LogStore, report: Report, computed: dict[int, bytes]) -> None:
    """Check stored inner nodes (the data proofs are served from) against recomputed ones."""
    ids = sorted(computed)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        stored = store.read_nodes(chunk)
        for node in chunk:
            if stored.get(node) == computed[node]:
                continue
            if sum(f.kind == "nodes" for f in report.findings) >= _MAX_NODE_FINDINGS:
                break
            level, index = node & LEVEL_MASK, node >> LEVEL_BITS
            first, last = index << level, (index + 1) << level
            what = "missing" if node not in stored else "does not match the entries"
            report.add(
                "nodes",
                f"stored tree node at level {level} index {index} (entries "
                f"[{first}, {last})) {what}: proofs served from it would not verify",
                index=first,
            )
    computed.clear()


def _check_roots(
    report: Report,
    tree: CompactRange,
    sizes: list[int],
    want: dict[int, list[tuple[str, bytes]]],
    state: dict[str, int],
) -> None:
    """Compare the recomputed root with every signed root for the tree's current size."""
    while state["pending"] < len(sizes) and sizes[state["pending"]] == tree.size:
        size = sizes[state["pending"]]
        state["pending"] += 1
        root = tree.root()
        for source, signed in want[size]:
            if signed != root:
                report.add(
                    "root",
                    f"{source}: recomputed root {_short(root)} != signed root "
                    f"{_short(signed)}; the entries diverge within [{state['last_good']}, {size})",
                    size=size,
                )
                break
        else:
            state["last_good"] = size


def _recompute(store: LogStore, report: Report, want: dict[int, list[tuple[str, bytes]]]) -> None:
    """Stream the entries once, rebuilding the tree and comparing roots at each wanted size."""
    sizes = sorted(want)
    tree = CompactRange()
    computed: dict[int, bytes] = {}
    state = {"pending": 1 if sizes and sizes[0] == 0 else 0, "last_good": 0}
    previous = -1
    for rows in store.iter_entry_chunks():
        if rows[0][0] != previous + 1 or rows[-1][0] - rows[0][0] != len(rows) - 1:
            for stored_index, _, _ in rows:
                if stored_index != previous + 1:
                    report.add(
                        "gap",
                        f"entry {previous + 1} is missing (next stored entry is "
                        f"{stored_index}): entries were deleted or renumbered",
                        index=previous + 1,
                    )
                previous = stored_index
        previous = rows[-1][0]
        # Hash by position: after a gap, later roots mismatch and say where.
        leaves = [leaf_hash(data) for _, _, data in rows]
        for offset, (row, h) in enumerate(zip(rows, leaves, strict=True)):
            if row[1] != h:
                report.add(
                    "leaf",
                    f"entry {tree.size + offset}: data does not match its stored leaf hash "
                    "(entry modified after it was appended)",
                    index=tree.size + offset,
                )
        # Extend up to each wanted size in this chunk, checking the root there.
        done = 0
        while done < len(leaves):
            stop = len(leaves)
            if state["pending"] < len(sizes):
                stop = min(stop, sizes[state["pending"]] - tree.size + done)
            computed.update(tree.extend(leaves[done:stop], STORED_MIN_LEVEL))
            done = stop
            _check_roots(report, tree, sizes, want, state)
        if len(computed) >= _NODE_CHECK_BATCH:
            _compare_nodes(store, report, computed)
    pending = state["pending"]
    _compare_nodes(store, report, computed)
    report.entries = tree.size
    for size in sizes[pending:]:
        for source, _ in want[size]:
            kind = "rollback" if source.startswith("trusted") else "truncated"
            what = "rolled back" if kind == "rollback" else "truncated"
            report.add(
                kind,
                f"{source} is beyond the {tree.size} stored entries: log {what} "
                f"(entries [{tree.size}, {size}) missing)",
                size=size,
            )
    # The stored tree nodes serve every proof; they must agree with the entries.
    for size in sizes[:pending]:
        if size == 0 or any(f.kind == "root" and f.size == size for f in report.findings):
            continue
        try:
            node_root = root_at(size, store.tree_reader())
        except MerkleError as exc:
            report.add("nodes", f"stored tree nodes for size {size}: {exc}", size=size)
            continue
        if node_root != want[size][0][1]:
            report.add(
                "nodes",
                f"stored tree nodes give a different root at size {size}: proofs "
                "served from them would not verify",
                size=size,
            )
