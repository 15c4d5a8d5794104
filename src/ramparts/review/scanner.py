"""Run every check over every deployment unit found under the given paths."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ramparts.review import _model
from ramparts.review._errors import ScanError
from ramparts.review._load import load_paths
from ramparts.review.checks import (
    r1_mtls,
    r2_exposure,
    r3_secrets,
    r4_shared_db,
    r5_flat_network,
    r6_ip_allowlist,
    topology_edges,
)
from ramparts.review.context import DEFAULT_ISTIO_ROOT, Context
from ramparts.review.findings import Finding

if TYPE_CHECKING:
    from ramparts.config import Topology

CHECKS = (
    r1_mtls.check,
    r2_exposure.check,
    r3_secrets.check,
    r4_shared_db.check,
    r5_flat_network.check,
    r6_ip_allowlist.check,
    topology_edges.check,
)


@dataclass
class UnitSummary:
    name: str
    kind: str
    workloads: int
    objects: int


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    notes: list[ScanError] = field(default_factory=list)
    units: list[UnitSummary] = field(default_factory=list)
    files_read: int = 0
    topology: str | None = None


def scan(
    paths: Iterable[str | Path],
    *,
    topology: Topology | str | Path | None = None,
    istio_root: str = DEFAULT_ISTIO_ROOT,
) -> ScanResult:
    """Scan manifests and compose files. A ``ramparts.yaml`` found among them is used as topology.

    Unreadable or malformed files become ``errors``; the scan goes on with the rest.
    """
    loaded = load_paths(paths)
    result = ScanResult(errors=list(loaded.errors), notes=list(loaded.notes))
    result.files_read = loaded.files_read
    topo: Topology | None = None
    source = (
        topology if topology is not None else (loaded.topologies[0] if loaded.topologies else None)
    )
    if isinstance(source, (str, Path)):
        topo = _load_topology(Path(source), result.errors)
    else:
        topo = source
    result.topology = topo.source if topo else None
    for unit in loaded.units:
        dep = _model.build(unit)
        ctx = Context(dep, topo, istio_root)
        result.units.append(
            UnitSummary(
                unit.name,
                unit.kind,
                len(dep.workloads) + len(dep.compose_services),
                len(dep.objects),
            )
        )
        seen: set[tuple[str, str, int, str]] = set()
        for check in CHECKS:
            for f in check(ctx):
                key = (f.rule, f.file, f.line, f.message)
                if key not in seen:
                    seen.add(key)
                    result.findings.append(_with_unit(f, unit.name))
    result.findings.sort(key=lambda f: (f.risk, -f.severity, f.file, f.line, f.rule))
    return result


def _load_topology(path: Path, errors: list[ScanError]) -> Topology | None:
    # Imported here: pydantic costs ~0.15 s of start-up, paid only when a topology is used.
    from ramparts.config import TopologyError, load_topology  # noqa: PLC0415

    try:
        return load_topology(path)
    except TopologyError as exc:
        errors.extend(ScanError(p.file, p.line, f"topology: {p.message}") for p in exc.problems)
        return None


def _with_unit(f: Finding, unit: str) -> Finding:
    return replace(f, unit=unit)
