"""R2: exposure that bypasses the gateway.

The gateway itself (ingress controller, API gateway; see ``is_gateway``) is
meant to be exposed and is never reported. Everything else reachable from
outside the cluster or host without passing it is.
"""

from __future__ import annotations

from collections.abc import Iterator

from ramparts.review._model import is_gateway
from ramparts.review._yamlnode import get, labels, line_of, mapping, seq, text
from ramparts.review.context import Context
from ramparts.review.findings import Finding, Severity, finding


def ingress_backends(ctx: Context) -> dict[tuple[str, str], list]:
    """(namespace, service) -> the Ingress objects routing to it."""
    out: dict[tuple[str, str], list] = {}
    for ing in ctx.dep.of_kind("Ingress"):
        names: set[str] = set()
        for backend in [
            mapping(ing.node, "spec", "defaultBackend"),
            mapping(ing.node, "spec", "backend"),
        ]:
            names.add(text(backend, "service", "name") or text(backend, "serviceName"))
        for rule in seq(ing.node, "spec", "rules"):
            for path in seq(rule, "http", "paths"):
                b = mapping(path, "backend")
                names.add(text(b, "service", "name") or text(b, "serviceName"))
        for n in names - {""}:
            out.setdefault((ing.namespace, n), []).append(ing)
    return out


def check(ctx: Context) -> Iterator[Finding]:
    if ctx.dep.kind == "compose":
        yield from _compose(ctx)
        return
    backends = ingress_backends(ctx)
    for svc in ctx.dep.of_kind("Service"):
        selector = labels(svc.node, "spec", "selector")
        targets = ctx.selected_by(selector, svc.namespace)
        if is_gateway(svc.name, svc.labels) or any(t.is_gateway for t in targets):
            continue
        spec = mapping(svc.node, "spec")
        stype = text(spec, "type", default="ClusterIP")
        line = line_of(spec, "type", svc.line)
        ports = ", ".join(
            f"{text(p, 'port')}" + (f" (nodePort {text(p, 'nodePort')})" if "nodePort" in p else "")
            for p in seq(spec, "ports")
        )
        if stype in ("LoadBalancer", "NodePort"):
            ings = backends.get((svc.namespace, svc.name))
            what = "a load balancer" if stype == "LoadBalancer" else "every node's address"
            if ings:
                yield finding(
                    "R2.ingress-and-direct",
                    svc.file,
                    line,
                    svc.ref,
                    f"{svc.ref} is published through {ings[0].ref} and also directly as type "
                    f"{stype} (port {ports or '?'}): clients can skip the ingress",
                    related=tuple((i.file, i.line) for i in ings),
                )
            else:
                rule = "R2.load-balancer" if stype == "LoadBalancer" else "R2.node-port"
                yield finding(
                    rule,
                    svc.file,
                    line,
                    svc.ref,
                    f"{svc.ref} is type {stype}: port {ports or '?'} is reachable on {what} "
                    "without passing the gateway",
                )
        ext = seq(spec, "externalIPs")
        if ext:
            yield finding(
                "R2.external-ips",
                svc.file,
                line_of(spec, "externalIPs", svc.line),
                svc.ref,
                f"{svc.ref} has externalIPs {', '.join(text(x) for x in ext)}: reachable "
                "without passing the gateway",
            )
    for wl in ctx.dep.workloads:
        if wl.is_gateway:
            continue
        if get(wl.pod_spec, "hostNetwork") is True:
            yield finding(
                "R2.host-network",
                wl.obj.file,
                line_of(wl.pod_spec, "hostNetwork", wl.obj.line),
                wl.ref,
                f"{wl.ref} runs on the host network: it listens on the node's addresses and "
                "NetworkPolicies do not apply to it",
            )
        for c in wl.containers:
            for p in seq(c.node, "ports"):
                if get(p, "hostPort") is not None:
                    yield finding(
                        "R2.host-port",
                        wl.obj.file,
                        line_of(p, "hostPort", wl.obj.line),
                        wl.ref,
                        f"{wl.ref} container {c.name} binds hostPort {text(p, 'hostPort')}: "
                        "reachable on the node's address without passing the gateway",
                    )


def _compose(ctx: Context) -> Iterator[Finding]:
    for s in ctx.dep.compose_services:
        if s.is_gateway:
            continue
        if s.network_mode == "host":
            yield finding(
                "R2.compose-host-network",
                s.file,
                line_of(s.node, "network_mode", s.line),
                s.ref,
                f"{s.ref} uses network_mode: host: it listens on the host's addresses",
            )
        ports = seq(s.node, "ports")
        if not ports:
            continue
        published = [_port_text(p) for p in ports]
        local_only = all(p.startswith(("127.0.0.1:", "localhost:", "[::1]:")) for p in published)
        yield finding(
            "R2.compose-published-port",
            s.file,
            line_of(s.node, "ports", s.line),
            s.ref,
            f"{s.ref} is an internal service but publishes port(s) {', '.join(published)} "
            + ("on the host's loopback" if local_only else "on every host address")
            + ": reachable without passing the gateway",
            severity=Severity.LOW if local_only else None,
        )


def _port_text(p: object) -> str:
    if isinstance(p, dict):
        host_ip = text(p, "host_ip")
        published = text(p, "published")
        target = text(p, "target")
        return f"{host_ip + ':' if host_ip else ''}{published}:{target}" if published else target
    return text(p)
