"""R6: access limited by source address alone, with no authentication in front.

"Authentication in front" means: the target is the gateway itself, the target
pods are in Istio with STRICT mTLS, or the ingress route carries an
authentication annotation (nginx auth-url / auth-type / client-certificate
verification, Traefik or Kong auth middleware/plugins).
"""

from __future__ import annotations

from collections.abc import Iterator

from ramparts.review._model import Workload, is_gateway
from ramparts.review._yamlnode import labels, line_of, mapping, seq, text
from ramparts.review.checks.r1_mtls import effective_mode, mesh_of
from ramparts.review.checks.r2_exposure import ingress_backends
from ramparts.review.context import Context
from ramparts.review.findings import Finding, finding

ALLOWLIST_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/whitelist-source-range",
    "nginx.ingress.kubernetes.io/allowlist-source-range",
    "ingress.kubernetes.io/whitelist-source-range",
    "traefik.ingress.kubernetes.io/whitelist-source-range",
    "haproxy.org/whitelist",
    "haproxy.org/allow-list",
    "haproxy.router.openshift.io/ip_whitelist",
    "alb.ingress.kubernetes.io/inbound-cidrs",
)
AUTH_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/auth-url",
    "nginx.ingress.kubernetes.io/auth-type",
    "nginx.ingress.kubernetes.io/auth-signin",
    "ingress.kubernetes.io/auth-type",
    "ramparts.dev/auth",
)
IP_FIELDS = ("ipBlocks", "remoteIpBlocks", "notIpBlocks", "notRemoteIpBlocks")
IDENTITY_FIELDS = ("principals", "requestPrincipals", "namespaces", "notPrincipals")


def _authenticated(ctx: Context, targets: list[Workload]) -> bool:
    if not targets:
        return False
    return all(
        t.is_gateway or (mesh_of(ctx, t) == "istio" and effective_mode(ctx, t)[0] == "STRICT")
        for t in targets
    )


def _ingress_has_auth(annotations: dict[str, str]) -> bool:
    if any(a in annotations for a in AUTH_ANNOTATIONS):
        return True
    if annotations.get("nginx.ingress.kubernetes.io/auth-tls-verify-client", "").lower() == "on":
        return True
    middleware = annotations.get("traefik.ingress.kubernetes.io/router.middlewares", "")
    plugins = annotations.get("konghq.com/plugins", "")
    return any(w in (middleware + "," + plugins).lower() for w in ("auth", "jwt", "oauth", "oidc"))


def check(ctx: Context) -> Iterator[Finding]:
    for svc in ctx.dep.of_kind("Service"):
        spec = mapping(svc.node, "spec")
        ranges = seq(spec, "loadBalancerSourceRanges")
        ann_ranges = svc.annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges")
        if not ranges and not ann_ranges:
            continue
        targets = ctx.selected_by(labels(spec, "selector"), svc.namespace)
        if is_gateway(svc.name, svc.labels) or _authenticated(ctx, targets):
            continue
        shown = ", ".join(text(r) for r in ranges) or ann_ranges
        yield finding(
            "R6.source-ranges",
            svc.file,
            line_of(spec, "loadBalancerSourceRanges", svc.line),
            svc.ref,
            f"{svc.ref} is guarded only by source ranges ({shown}); nothing authenticates "
            "the caller in front of it",
        )
    backends = ingress_backends(ctx)
    by_ingress: dict[int, list[Workload]] = {}
    for (ns, name), ings in backends.items():
        svc = next(
            (s for s in ctx.dep.of_kind("Service") if (s.namespace, s.name) == (ns, name)), None
        )
        targets = (
            ctx.selected_by(labels(svc.node, "spec", "selector"), ns) if svc is not None else []
        )
        for ing in ings:
            by_ingress.setdefault(id(ing), []).extend(targets)
    for ing in ctx.dep.of_kind("Ingress"):
        ann = ing.annotations
        key = next((a for a in ALLOWLIST_ANNOTATIONS if a in ann), None)
        if key is None or _ingress_has_auth(ann):
            continue
        if _authenticated(ctx, by_ingress.get(id(ing), [])):
            continue
        yield finding(
            "R6.ingress-allowlist",
            ing.file,
            line_of(mapping(ing.node, "metadata", "annotations"), key, ing.line),
            ing.ref,
            f"{ing.ref} is guarded only by {key}={ann[key]}; no authentication is configured "
            "on the route",
        )
    for ap in ctx.dep.of_kind("AuthorizationPolicy"):
        if text(ap.node, "spec", "action", default="ALLOW").upper() != "ALLOW":
            continue
        rules = seq(ap.node, "spec", "rules")
        for i, rule in enumerate(rules):
            sources = [mapping(f, "source") for f in seq(rule, "from")]
            if not sources:
                continue
            ip_only = all(
                any(s.get(k) for k in IP_FIELDS) and not any(s.get(k) for k in IDENTITY_FIELDS)
                for s in sources
            )
            auth_when = any(
                text(w, "key").startswith(("request.auth", "source.principal", "connection.sni"))
                for w in seq(rule, "when")
            )
            if ip_only and not auth_when:
                yield finding(
                    "R6.authz-ip-only",
                    ap.file,
                    line_of(rules, i, ap.line),
                    ap.ref,
                    f"{ap.ref} rule {i + 1} allows callers by IP block alone, with no principal "
                    "or request principal",
                )
