"""R5: flat network — default deny, allow-all, open egress, dead selectors, beta annotation."""

from __future__ import annotations

from tests.review.conftest import deployment, rules_of

DENY_ALL = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: bank}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""


def netpol(name: str, body: str) -> str:
    return f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: bank}}
spec:
{body}"""


def test_namespace_without_policies_fires_both_directions(scan_yaml):
    r = scan_yaml(deployment("ledger"))
    assert rules_of(r, "R5") == ["R5.no-default-deny-egress", "R5.no-default-deny-ingress"]
    f = next(f for f in r.findings if f.rule == "R5.no-default-deny-ingress")
    assert f.resource == "Namespace bank"


def test_default_deny_is_silent(scan_yaml):
    assert rules_of(scan_yaml("---\n".join([DENY_ALL, deployment("ledger")])), "R5") == []


def test_egress_only_listed_without_policy_types_is_not_default_deny(scan_yaml):
    # `egress: []` with no policyTypes yields types [Ingress] only: egress stays open.
    pol = netpol("deny", "  podSelector: {}\n  ingress: []\n  egress: []\n")
    r = scan_yaml("---\n".join([pol, deployment("ledger")]))
    assert rules_of(r, "R5") == ["R5.no-default-deny-egress"]


def test_unselected_workload_when_policies_exist(scan_yaml):
    pol = netpol(
        "ledger",
        "  podSelector: {matchLabels: {app: ledger}}\n  ingress:\n"
        "    - from: [{podSelector: {matchLabels: {app: payments}}}]\n",
    )
    r = scan_yaml("---\n".join([pol, deployment("ledger"), deployment("accounts")]))
    f = [f for f in r.findings if f.rule == "R5.not-isolated"]
    assert [x.resource for x in f] == ["Deployment bank/accounts"]


def test_allow_all_rules(scan_yaml):
    pols = [
        DENY_ALL,
        netpol("open-in", "  podSelector: {}\n  ingress:\n    - {}\n"),
        netpol(
            "any-ns",
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n"
            "    - to: [{namespaceSelector: {}}]\n",
        ),
    ]
    r = scan_yaml("---\n".join([*pols, deployment("ledger")]))
    got = sorted((f.rule, f.resource) for f in r.findings if f.risk == "R5")
    assert got == [
        ("R5.allow-all", "NetworkPolicy bank/any-ns"),
        ("R5.allow-all", "NetworkPolicy bank/open-in"),
    ]


def test_unrestricted_egress_but_dns_is_fine(scan_yaml):
    pols = [
        DENY_ALL,
        netpol(
            "internet",
            "  podSelector: {matchLabels: {app: ledger}}\n  policyTypes: [Egress]\n  egress:\n"
            "    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]\n"
            "      ports: [{port: 443}]\n",
        ),
        netpol(
            "dns",
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n"
            "    - ports: [{port: 53, protocol: UDP}, {port: 53}]\n",
        ),
    ]
    r = scan_yaml("---\n".join([*pols, deployment("ledger")]))
    (f,) = [f for f in r.findings if f.risk == "R5"]
    assert f.rule == "R5.unrestricted-egress" and "443/TCP" in f.message


def test_selector_matching_nothing(scan_yaml):
    pols = [
        DENY_ALL,
        netpol("typo", "  podSelector: {matchLabels: {app: ledgr}}\n  ingress: []\n"),
        netpol(
            "expr",
            "  podSelector:\n    matchExpressions:\n"
            "      - {key: app, operator: In, values: [ledger]}\n  ingress: []\n",
        ),
    ]
    r = scan_yaml("---\n".join([*pols, deployment("ledger")]))
    f = [f for f in r.findings if f.rule == "R5.selects-nothing"]
    assert [x.resource for x in f] == ["NetworkPolicy bank/typo"]


def test_beta_annotation(scan_yaml):
    ns = """apiVersion: v1
kind: Namespace
metadata:
  name: bank
  annotations:
    net.beta.kubernetes.io/network-policy: '{"ingress":{"isolation":"DefaultDeny"}}'
"""
    r = scan_yaml("---\n".join([ns, DENY_ALL, deployment("ledger")]))
    (f,) = [f for f in r.findings if f.risk == "R5"]
    assert f.rule == "R5.beta-annotation" and f.line == 6


def test_compose_flat_vs_segmented(scan_yaml):
    flat = """
    services:
      a: {image: bank/a}
      b: {image: bank/b}
      db: {image: postgres:16}
    """
    assert rules_of(scan_yaml(flat, name="docker-compose.yml"), "R5") == ["R5.compose-flat"]
    segmented = """
    services:
      a: {image: bank/a, networks: [front, a-db]}
      b: {image: bank/b, networks: [front]}
      db: {image: postgres:16, networks: [a-db]}
    networks: {front: {}, a-db: {internal: true}}
    """
    assert rules_of(scan_yaml(segmented, name="docker-compose.yml"), "R5") == []


def test_istio_allow_all_authorization_policy(scan_yaml):
    ap = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: bank}
spec:
  rules:
    - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ledger, namespace: bank}
spec:
  selector: {matchLabels: {app: ledger}}
  rules:
    - from: [{source: {principals: [cluster.local/ns/bank/sa/payments]}}]
"""
    r = scan_yaml("---\n".join([DENY_ALL, ap]))
    (f,) = [f for f in r.findings if f.risk == "R5"]
    assert f.rule == "R5.allow-all" and f.resource == "AuthorizationPolicy bank/allow-all"
    assert f.line == 13
