"""R5: flat network. Missing default deny, allow-all rules, open egress, dead selectors.

A default-deny policy for a direction is one that selects every pod of its
namespace (``podSelector: {}``), lists the direction in its policy types and
has no rule for it.
"""

from __future__ import annotations

from collections.abc import Iterator

from ramparts.review._yamlnode import get, line_of, mapping, seq, text
from ramparts.review.context import Context
from ramparts.review.findings import Finding, finding
from ramparts.review.netpol import Policy

BETA_ANNOTATION = "net.beta.kubernetes.io/network-policy"
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})


def is_empty_selector(sel: object) -> bool:
    return sel is None or (
        isinstance(sel, dict) and not get(sel, "matchLabels") and not get(sel, "matchExpressions")
    )


def is_default_deny(p: Policy, direction: str) -> bool:
    return direction in p.types and is_empty_selector(p.pod_selector) and not p.rules(direction)


def check(ctx: Context) -> Iterator[Finding]:
    if ctx.dep.kind == "compose":
        yield from _compose(ctx)
        return
    policies = ctx.reach.policies
    for ns_obj in ctx.dep.namespaces.values():
        if BETA_ANNOTATION in ns_obj.annotations:
            yield finding(
                "R5.beta-annotation",
                ns_obj.file,
                line_of(
                    mapping(ns_obj.node, "metadata", "annotations"), BETA_ANNOTATION, ns_obj.line
                ),
                ns_obj.ref,
                f"Namespace {ns_obj.name} relies on the {BETA_ANNOTATION} annotation, removed in "
                "Kubernetes 1.7: it isolates nothing",
            )
    for ns in sorted({w.namespace for w in ctx.dep.workloads}):
        in_ns = [p for p in policies if p.namespace == ns]
        anchor = ctx.dep.namespaces.get(ns)
        workloads = ctx.workloads_in(ns)
        file, line = (
            (anchor.file, anchor.line) if anchor else (workloads[0].obj.file, workloads[0].obj.line)
        )
        for direction, rule in (
            ("Ingress", "R5.no-default-deny-ingress"),
            ("Egress", "R5.no-default-deny-egress"),
        ):
            if any(is_default_deny(p, direction) for p in in_ns):
                continue
            if direction == "Ingress" and in_ns:
                # Policies exist: report the workloads they leave open instead.
                for wl in workloads:
                    if not ctx.reach.isolated(ctx.pod(wl), "Ingress") and not wl.is_gateway:
                        yield finding(
                            "R5.not-isolated",
                            wl.obj.file,
                            wl.obj.line,
                            wl.ref,
                            f"{wl.ref} is selected by no ingress NetworkPolicy and namespace {ns} "
                            "has no default deny: any pod can connect to it",
                        )
                continue
            yield finding(
                rule,
                file,
                line,
                f"Namespace {ns}",
                f"Namespace {ns} has no default-deny {direction.lower()} NetworkPolicy: "
                + (
                    f"its {len(workloads)} workload(s) accept connections from any pod"
                    if direction == "Ingress"
                    else f"its {len(workloads)} workload(s) may connect anywhere"
                ),
            )
    for ap in ctx.dep.of_kind("AuthorizationPolicy"):
        # Istio: an ALLOW policy with an empty rule (`rules: [{}]`) allows every request.
        rules = seq(ap.node, "spec", "rules")
        if text(ap.node, "spec", "action", default="ALLOW").upper() != "ALLOW":
            continue
        for i, rule in enumerate(rules):
            if not rule:
                yield finding(
                    "R5.allow-all",
                    ap.file,
                    line_of(rules, i, ap.line),
                    ap.ref,
                    f"{ap.ref} rule {i + 1} is empty: it allows every request from anyone",
                )
    for obj in ctx.dep.of_kind("NetworkPolicy"):
        p = Policy(obj.name, obj.namespace, obj.node)
        yield from _rules(obj, p)
        in_ns = ctx.workloads_in(p.namespace)
        if (
            not is_empty_selector(p.pod_selector)
            and in_ns
            and not any(p.selects(ctx.pod(w)) for w in in_ns)
        ):
            spec = mapping(obj.node, "spec")
            yield finding(
                "R5.selects-nothing",
                obj.file,
                line_of(spec, "podSelector", obj.line),
                obj.ref,
                f"{obj.ref} selects no pod in namespace {p.namespace}: it protects nothing",
            )


def _rules(obj, p: Policy) -> Iterator[Finding]:
    for direction, peers_key in (("Ingress", "from"), ("Egress", "to")):
        if direction not in p.types:
            continue
        rules = seq(obj.node, "spec", direction.lower())
        for i, raw in enumerate(rules):
            line = line_of(rules, i, obj.line)
            rule = raw or {}
            peers = seq(rule, peers_key)
            ports = seq(rule, "ports")
            if not peers and not ports:
                yield finding(
                    "R5.allow-all",
                    obj.file,
                    line,
                    obj.ref,
                    f"{obj.ref} {direction.lower()} rule {i + 1} is empty: it allows every "
                    f"{'source' if direction == 'Ingress' else 'destination'} on every port",
                )
                continue
            for peer in peers:
                if (
                    isinstance(peer, dict)
                    and "namespaceSelector" in peer
                    and is_empty_selector(peer.get("namespaceSelector"))
                    and is_empty_selector(peer.get("podSelector"))
                    and not ports
                ):
                    yield finding(
                        "R5.allow-all",
                        obj.file,
                        line,
                        obj.ref,
                        f"{obj.ref} {direction.lower()} rule {i + 1} has a peer with an empty "
                        "namespaceSelector: it allows every pod in every namespace on every port",
                    )
            if direction != "Egress" or _dns_only(ports):
                continue
            cidrs = [text(pe, "ipBlock", "cidr") for pe in peers if isinstance(pe, dict)]
            if not peers or any(c in ANYWHERE for c in cidrs):
                scope = f"port(s) {_ports(ports)}" if ports else "every port"
                yield finding(
                    "R5.unrestricted-egress",
                    obj.file,
                    line,
                    obj.ref,
                    f"{obj.ref} egress rule {i + 1} allows any address on {scope}",
                )


def _dns_only(ports: list) -> bool:
    return bool(ports) and all(text(p, "port") in ("53", "dns", "dns-tcp") for p in ports)


def _ports(ports: list) -> str:
    return ", ".join(
        f"{text(p, 'port', default='*')}/{text(p, 'protocol', default='TCP')}" for p in ports
    )


def _compose(ctx: Context) -> Iterator[Finding]:
    services = [s for s in ctx.dep.compose_services if s.network_mode not in ("host", "none")]
    if len(services) < 3:
        return
    shared = set(services[0].networks)
    for s in services[1:]:
        shared &= set(s.networks)
    if shared:
        node = ctx.dep.compose_node
        net = sorted(shared)[0]
        yield finding(
            "R5.compose-flat",
            ctx.dep.compose_file,
            line_of(node, "services", 1),
            f"compose network {net}",
            f"all {len(services)} services of {ctx.dep.name} share the network {net}: any of "
            "them can reach every other service and database",
        )
