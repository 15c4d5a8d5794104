"""R1: no mutual TLS: mesh membership, Istio PeerAuthentication modes, database TLS switched off.

Istio's effective mode for a workload: a workload-selector PeerAuthentication in
its namespace, else the namespace-wide one, else the mesh-wide one (no
selector, in the root namespace), else PERMISSIVE (Istio's default). ``UNSET``
inherits from the next level. ``portLevelMtls`` overrides the mode per port.
"""

from __future__ import annotations

from collections.abc import Iterator

from ramparts.review._model import K8sObject, Workload
from ramparts.review._yamlnode import get, labels, line_of, mapping, text
from ramparts.review.context import Context, db_refs
from ramparts.review.findings import Finding, finding
from ramparts.review.netpol import selector_matches

WEAK_MODES = frozenset({"PERMISSIVE", "DISABLE"})


def check(ctx: Context) -> Iterator[Finding]:
    yield from _db_tls(ctx)
    if ctx.dep.kind == "compose":
        yield from _compose(ctx)
        return
    for wl in ctx.dep.workloads:
        if wl.is_gateway:
            continue
        mesh = mesh_of(ctx, wl)
        if mesh is None:
            yield finding(
                "R1.no-mesh",
                wl.obj.file,
                wl.obj.line,
                wl.ref,
                f"{wl.ref} is not in a service mesh (no Istio or Linkerd injection) and does not "
                "declare app-level mTLS: its traffic is plain text and unauthenticated",
            )
        elif mesh == "istio":
            yield from _istio_mode(ctx, wl)


def mesh_of(ctx: Context, wl: Workload) -> str | None:
    """ "istio", "linkerd", "app" (mTLS in the service itself) or None."""
    ann, lab = wl.pod_annotations, wl.pod_labels
    if ann.get("ramparts.dev/mtls") == "app":
        return "app"
    ns = ctx.dep.namespaces.get(wl.namespace)
    ns_labels = ns.labels if ns else {}
    ns_ann = ns.annotations if ns else {}
    inject = lab.get("sidecar.istio.io/inject", ann.get("sidecar.istio.io/inject"))
    if inject != "false":
        if inject == "true" or "istio.io/rev" in lab:
            return "istio"
        if ns_labels.get("istio-injection") == "enabled" or (
            "istio.io/rev" in ns_labels and ns_labels.get("istio-injection") != "disabled"
        ):
            return "istio"
    linkerd = ann.get("linkerd.io/inject", ns_ann.get("linkerd.io/inject"))
    if linkerd in ("enabled", "ingress"):
        return "linkerd"
    return None


def effective_mode(ctx: Context, wl: Workload) -> tuple[str, K8sObject | None]:
    """Istio's mTLS mode for the workload as a whole, and the PeerAuthentication that sets it."""
    pas = ctx.dep.of_kind("PeerAuthentication")
    workload_level = [
        p
        for p in pas
        if p.namespace == wl.namespace
        and get(p.node, "spec", "selector") is not None
        and selector_matches(
            {"matchLabels": labels(p.node, "spec", "selector", "matchLabels")}, wl.pod_labels
        )
    ]
    namespace_level = [
        p for p in pas if p.namespace == wl.namespace and get(p.node, "spec", "selector") is None
    ]
    mesh_level = [
        p for p in pas if p.namespace == ctx.istio_root and get(p.node, "spec", "selector") is None
    ]
    for level in (workload_level, namespace_level, mesh_level):
        for p in level:
            mode = text(p.node, "spec", "mtls", "mode", default="UNSET").upper()
            if mode != "UNSET":
                return mode, p
    return "PERMISSIVE", None


def _istio_mode(ctx: Context, wl: Workload) -> Iterator[Finding]:
    mode, pa = effective_mode(ctx, wl)
    if mode in WEAK_MODES:
        where = (
            f"{pa.ref} sets mTLS mode {mode}"
            if pa
            else "no PeerAuthentication applies, so Istio's default PERMISSIVE mode "
            "accepts plain text"
        )
        yield finding(
            "R1.permissive",
            pa.file if pa else wl.obj.file,
            line_of(mapping(pa.node, "spec", "mtls"), "mode", pa.line) if pa else wl.obj.line,
            wl.ref,
            f"{wl.ref} is in the Istio mesh but {where}",
        )
    for p in ctx.dep.of_kind("PeerAuthentication"):
        if p.namespace != wl.namespace or get(p.node, "spec", "selector") is None:
            continue
        if not selector_matches(
            {"matchLabels": labels(p.node, "spec", "selector", "matchLabels")}, wl.pod_labels
        ):
            continue
        ports = mapping(p.node, "spec", "portLevelMtls")
        for port, spec in ports.items():
            pmode = text(spec, "mode", default="UNSET").upper()
            if pmode in WEAK_MODES:
                yield finding(
                    "R1.permissive",
                    p.file,
                    line_of(ports, port, p.line),
                    wl.ref,
                    f"{p.ref} sets mTLS mode {pmode} on port {port} of {wl.ref}",
                )


def _db_tls(ctx: Context) -> Iterator[Finding]:
    seen: set[tuple[str, int]] = set()
    targets = [*ctx.dep.workloads, *ctx.dep.compose_services]
    for wl in targets:
        for ref in db_refs(ctx, wl):
            if ref.tls_disabled and (ref.file, ref.line) not in seen:
                seen.add((ref.file, ref.line))
                yield finding(
                    "R1.db-tls-disabled",
                    ref.file,
                    ref.line,
                    wl.ref,
                    f"{wl.ref} connects to {ref.where} with TLS switched off "
                    f"({ref.tls_disabled} in {ref.variable})",
                )


def _compose(ctx: Context) -> Iterator[Finding]:
    services = [s for s in ctx.dep.compose_services if not s.is_gateway]
    if len(ctx.dep.compose_services) < 2 or not services:
        return
    app_tls = [s for s in services if text(s.node, "labels", "ramparts.dev/mtls") == "app"]
    plain = [s for s in services if s not in app_tls]
    for s in plain:
        yield finding(
            "R1.compose-no-mtls",
            s.file,
            s.line,
            s.ref,
            f"{s.ref} in {ctx.dep.name} has no mesh and declares no app-level mTLS "
            "(label ramparts.dev/mtls=app): service-to-service traffic is plain text",
        )
