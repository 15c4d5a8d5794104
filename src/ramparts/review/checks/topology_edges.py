"""Compare what the NetworkPolicies actually allow with the edges ``ramparts.yaml`` allows.

Workloads are matched to topology services by service identity (see
``service_identity``); the gateway workload is the topology's ``gateway``.
Every reachable pair of matched workloads whose edge the topology lacks is an
extra edge (risk R5). Compose services that share a network reach each other
on every port.

Databases: a database server workload belongs to the topology services whose
configuration points at it (by Service name, workload name or StatefulSet
``serviceName``); any other topology service that can reach it is an extra
edge too, since ``ramparts.yaml`` gives each database to its owner alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ramparts.review._model import ComposeService, K8sObject, Workload
from ramparts.review._yamlnode import labels, text
from ramparts.review.context import Context, db_refs
from ramparts.review.findings import Finding, finding

FALLBACK_PORT = 80
GATEWAY = "gateway"  # ramparts.config.GATEWAY; not imported, to keep pydantic off start-up


def _name(ctx: Context, service: str, gateway: bool) -> str | None:
    assert ctx.topology is not None
    if gateway:
        return GATEWAY
    return service if service in ctx.topology.services else None


def candidate_ports(ctx: Context, wl: Workload) -> list[tuple[int, str]]:
    ports = set(wl.port_numbers())
    if not ports:
        ports = {(FALLBACK_PORT, "TCP")}
    return sorted(ports)


@dataclass(frozen=True, slots=True)
class Edge:
    """One workload reaching another: the first port it can use, by topology names."""

    src: Workload
    dst: Workload
    src_name: str
    dst_name: str
    port: int
    protocol: str


def reachable_edges(ctx: Context) -> dict[tuple[str, str], Edge]:
    """Every (caller, callee) pair of topology services the NetworkPolicies let connect."""
    assert ctx.topology is not None
    named = [(w, _name(ctx, w.service, w.is_gateway)) for w in ctx.dep.workloads]
    pairs = [(w, n) for w, n in named if n is not None]
    out: dict[tuple[str, str], Edge] = {}
    for src, src_name in pairs:
        for dst, dst_name in pairs:
            if src_name == dst_name or (src_name, dst_name) in out:
                continue
            for port, proto in candidate_ports(ctx, dst):
                if ctx.reach.allows(ctx.pod(src), ctx.pod(dst), port, proto):
                    out[(src_name, dst_name)] = Edge(src, dst, src_name, dst_name, port, proto)
                    break
    return out


def check(ctx: Context) -> Iterator[Finding]:
    if ctx.topology is None:
        return
    allowed = ctx.topology.edges
    if ctx.dep.kind == "compose":
        yield from _compose(ctx, allowed)
        return
    yield from _database_edges(ctx)
    for key, e in reachable_edges(ctx).items():
        if key in allowed:
            continue
        via = ctx.reach.allowing_policies(
            ctx.pod(e.dst),
            ctx.pod(e.src),
            port_owner=ctx.pod(e.dst),
            port=e.port,
            protocol=e.protocol,
            direction="Ingress",
        )
        how = f"NetworkPolicy {via[0].name} allows it" if via else f"{e.dst.ref} is not isolated"
        obj = _policy_object(ctx, via[0].namespace, via[0].name) if via else e.dst.obj
        yield finding(
            "R5.extra-edge",
            obj.file,
            obj.line,
            e.dst.ref,
            f"{e.src.ref} ({e.src_name}) can reach {e.dst.ref} ({e.dst_name}) on port "
            f"{e.port}/{e.protocol} ({how}), but {ctx.topology.source} has no edge "
            f"{e.src_name} -> {e.dst_name}",
        )


def database_owners(ctx: Context) -> dict[int, tuple[Workload | ComposeService, set[str]]]:
    """id(database workload) -> (the workload, topology services configured to use it)."""
    by_host: dict[str, list[Workload | ComposeService]] = {}
    for w in ctx.dep.workloads:
        if w.is_database:
            names = {w.obj.name, text(w.obj.node, "spec", "serviceName")} - {""}
            for n in names:
                by_host.setdefault(f"{n}.{w.namespace}".lower(), []).append(w)
    for svc in ctx.dep.of_kind("Service"):
        for w in ctx.selected_by(labels(svc.node, "spec", "selector"), svc.namespace):
            if w.is_database:
                by_host.setdefault(f"{svc.name}.{svc.namespace}".lower(), []).append(w)
    for c in ctx.dep.compose_services:
        if c.is_database:
            by_host.setdefault(c.name.lower(), []).append(c)
    owners: dict[int, tuple[Workload | ComposeService, set[str]]] = {}
    for w in [*ctx.dep.workloads, *ctx.dep.compose_services]:
        name = _name(ctx, w.service, w.is_gateway)
        if name is None or w.is_database:
            continue
        for ref in db_refs(ctx, w):
            for db in by_host.get(ref.host, []):
                owners.setdefault(id(db), (db, set()))[1].add(name)
    return owners


def _database_edges(ctx: Context) -> Iterator[Finding]:
    assert ctx.topology is not None
    callers = [(w, _name(ctx, w.service, w.is_gateway)) for w in ctx.dep.workloads]
    for db, owners in database_owners(ctx).values():
        if not isinstance(db, Workload):
            continue
        reported: set[str] = set()
        for src, name in callers:
            if name is None or name in owners or name in reported or src.is_database:
                continue
            port = next(
                (
                    (p, proto)
                    for p, proto in candidate_ports(ctx, db)
                    if ctx.reach.allows(ctx.pod(src), ctx.pod(db), p, proto)
                ),
                None,
            )
            if port is None:
                continue
            reported.add(name)
            yield finding(
                "R5.extra-edge",
                db.obj.file,
                db.obj.line,
                db.ref,
                f"{src.ref} ({name}) can reach {db.ref}, the database of "
                f"{', '.join(sorted(owners))}, on port {port[0]}/{port[1]}, but "
                f"{ctx.topology.source} gives that database to {', '.join(sorted(owners))} only",
            )


def _policy_object(ctx: Context, ns: str, name: str) -> K8sObject:
    return next(o for o in ctx.dep.of_kind("NetworkPolicy") if (o.namespace, o.name) == (ns, name))


def _compose(ctx: Context, allowed: frozenset[tuple[str, str]]) -> Iterator[Finding]:
    assert ctx.topology is not None
    named = [(s, _name(ctx, s.service, s.is_gateway)) for s in ctx.dep.compose_services]
    named = [(s, n) for s, n in named if n is not None and not s.is_database]
    for db, owners in database_owners(ctx).values():
        assert isinstance(db, ComposeService)
        for src, name in named:
            shared = set(src.networks) & set(db.networks)
            if name in owners or not shared:
                continue
            yield finding(
                "R5.extra-edge",
                db.file,
                db.line,
                db.ref,
                f"{src.ref} ({name}) can reach {db.ref}, the database of "
                f"{', '.join(sorted(owners))}, over network {sorted(shared)[0]}, but "
                f"{ctx.topology.source} gives that database to {', '.join(sorted(owners))} only",
            )
    for src, src_name in named:
        for dst, dst_name in named:
            if src_name == dst_name or (src_name, dst_name) in allowed:
                continue
            shared = set(src.networks) & set(dst.networks)
            if not shared:
                continue
            assert ctx.topology is not None
            yield finding(
                "R5.extra-edge",
                dst.file,
                dst.line,
                dst.ref,
                f"{src.ref} can reach {dst.ref} over network {sorted(shared)[0]}, but "
                f"{ctx.topology.source} has no edge {src_name} -> {dst_name}",
            )
