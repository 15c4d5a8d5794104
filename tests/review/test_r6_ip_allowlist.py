"""R6: IP allow-listing alone — fires without authentication in front, silent with it."""

from __future__ import annotations

from tests.review.conftest import deployment, rules_of

LB = """apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: bank}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  loadBalancerSourceRanges: [203.0.113.0/24]
  ports: [{{port: 443}}]
"""


def ingress(annotations: str) -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: admin
  namespace: bank
  annotations:
{annotations}
spec:
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {{service: {{name: admin, port: {{number: 80}}}}}}
"""


def test_source_ranges_on_internal_service_fire(scan_yaml):
    r = scan_yaml("---\n".join([deployment("reports"), LB.format(name="reports")]))
    (f,) = [f for f in r.findings if f.risk == "R6"]
    assert f.rule == "R6.source-ranges" and "203.0.113.0/24" in f.message and f.line == 23


def test_source_ranges_on_gateway_are_silent(scan_yaml):
    r = scan_yaml("---\n".join([deployment("gateway"), LB.format(name="gateway")]))
    assert rules_of(r, "R6") == []


def test_source_ranges_in_front_of_strict_mtls_are_silent(scan_yaml):
    mesh = """apiVersion: v1
kind: Namespace
metadata: {name: bank, labels: {istio-injection: enabled}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: bank}
spec: {mtls: {mode: STRICT}}
"""
    r = scan_yaml("---\n".join([mesh, deployment("reports"), LB.format(name="reports")]))
    assert rules_of(r, "R6") == []


def test_ingress_allowlist_without_auth_fires(scan_yaml):
    ann = "    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8"
    r = scan_yaml(ingress(ann))
    (f,) = [f for f in r.findings if f.risk == "R6"]
    assert f.rule == "R6.ingress-allowlist" and f.line == 7


def test_ingress_allowlist_with_auth_is_silent(scan_yaml):
    for extra in (
        "    nginx.ingress.kubernetes.io/auth-url: https://auth.bank.example/verify",
        '    nginx.ingress.kubernetes.io/auth-tls-verify-client: "on"',
    ):
        ann = "    nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8\n" + extra
        assert rules_of(scan_yaml(ingress(ann)), "R6") == []


def test_authorization_policy_by_ip_only(scan_yaml):
    ap = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ledger, namespace: bank}
spec:
  selector: {matchLabels: {app: ledger}}
  rules:
    - from:
        - source: {ipBlocks: [10.1.0.0/16]}
    - from:
        - source:
            principals: [cluster.local/ns/bank/sa/payments]
            ipBlocks: [10.1.0.0/16]
"""
    r = scan_yaml(ap)
    (f,) = [f for f in r.findings if f.risk == "R6"]
    assert f.rule == "R6.authz-ip-only" and "rule 1" in f.message and f.line == 7
