"""``ramparts render k8s``: valid objects, no secrets in pod specs, and NetworkPolicies whose
real semantics (computed by the review engine) allow exactly the topology's edges."""

from __future__ import annotations

import io
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from ramparts.config import GATEWAY, default_topology, parse_topology
from ramparts.platform.k8s import APP_LABEL, AUDIT, dump_all, render
from ramparts.review.netpol import External, Pod, Policy, Reachability

K8S_VERSION = "1.31"
CORE_GROUPS = ("v1", "apps/v1", "networking.k8s.io/v1")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render(default_topology())


def test_core_objects_validate_against_kubernetes_schemas(manifests: list[dict[str, Any]]) -> None:
    core = [m for m in manifests if m["apiVersion"] in CORE_GROUPS]
    assert len(core) >= 30
    for m in core:
        kubernetes_validate.validate(m, K8S_VERSION, strict=True)


def test_a_broken_object_fails_validation(manifests: list[dict[str, Any]]) -> None:
    """The validator is live: a typo in a field is caught."""
    bad = {**next(m for m in manifests if m["kind"] == "Service"), "spce": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_mesh_objects_are_well_formed(manifests: list[dict[str, Any]]) -> None:
    kinds = {(m["apiVersion"], m["kind"]) for m in manifests if m["apiVersion"] not in CORE_GROUPS}
    assert ("security.istio.io/v1", "PeerAuthentication") in kinds
    pa = next(m for m in manifests if m["kind"] == "PeerAuthentication")
    assert pa["spec"] == {"mtls": {"mode": "STRICT"}}
    authz = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "AuthorizationPolicy"}
    assert authz["allow-nothing"]["spec"] == {}
    ledger_rules = authz["ledger"]["spec"]["rules"]
    principals = {r["from"][0]["source"]["principals"][0]: r.get("to") for r in ledger_rules}
    assert set(principals) == {
        "refbank.local/ns/refbank/sa/payments",
        "refbank.local/ns/refbank/sa/statements",
    }
    statements_ops = principals["refbank.local/ns/refbank/sa/statements"]
    assert {
        "paths": ["/v1/accounts/{*}/entries", "/v1/accounts/{*}/balance"],
        "methods": ["GET"],
    } in [o["operation"] for o in statements_ops]


def test_no_secret_reaches_a_pod_spec(manifests: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    dump_all(manifests, text)
    assert "secretKeyRef" not in text.getvalue()
    assert "password" not in text.getvalue().lower()
    for m in manifests:
        if m["kind"] == "Deployment":
            for c in m["spec"]["template"]["spec"]["containers"]:
                assert "env" not in c and "envFrom" not in c, m["metadata"]["name"]
                assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_only_the_gateway_is_exposed(manifests: list[dict[str, Any]]) -> None:
    types = {m["metadata"]["name"]: m["spec"]["type"] for m in manifests if m["kind"] == "Service"}
    assert types.pop(GATEWAY) == "LoadBalancer"
    assert set(types.values()) == {"ClusterIP"}


def _pods(topo: Any) -> dict[str, Pod]:
    names = [*topo.services, GATEWAY, AUDIT]
    return {
        n: Pod(n, topo.namespace, {APP_LABEL: n, "app.kubernetes.io/part-of": "ramparts"})
        for n in names
    }


def test_network_policies_allow_exactly_the_topology_edges(manifests: list[dict[str, Any]]) -> None:
    """Each (pod, pod, port) is reachable iff the topology has the edge, or it is the audit log."""
    topo = default_topology()
    policies = [
        Policy(m["metadata"]["name"], topo.namespace, m)
        for m in manifests
        if m["kind"] == "NetworkPolicy"
    ]
    reach = Reachability(policies, {})
    pods = _pods(topo)
    ports = {n: topo.services[n].listen.port for n in topo.services} | {GATEWAY: 8443, AUDIT: 7002}
    wrong = []
    for src in pods:
        for dst in pods:
            if src == dst:
                continue
            expected = (src, dst) in topo.edges or (dst == AUDIT and src != AUDIT)
            if reach.allows(pods[src], pods[dst], ports[dst]) != expected:
                wrong.append((src, dst, expected))
            # No other port on the destination is reachable, even along an edge.
            assert not reach.allows(pods[src], pods[dst], 5432), (src, dst)
    assert wrong == []


def test_egress_to_the_outside(manifests: list[dict[str, Any]]) -> None:
    """No pod reaches the metadata service; a literal egress address, only its own service."""
    text = default_topology().text.replace(
        "- hooks.refbank-partners.example:443",
        "- hooks.refbank-partners.example:443\n      - 203.0.113.10:443",
    )
    topo = parse_topology(text)
    m = render(topo)
    policies = [
        Policy(x["metadata"]["name"], topo.namespace, x) for x in m if x["kind"] == "NetworkPolicy"
    ]
    reach = Reachability(policies, {})
    pods = _pods(topo)
    for name, pod in pods.items():
        assert not reach.allows(pod, External("169.254.169.254"), 80), name
        assert reach.allows(pod, External("203.0.113.10"), 443) is (name == "notifications"), name
    assert not reach.allows(pods["notifications"], External("203.0.113.10"), 80)
    hosts = [x for x in m if x["kind"] == "ServiceEntry"]
    assert [h["spec"]["hosts"] for h in hosts] == [["hooks.refbank-partners.example"]]


def test_topology_configmap_round_trips(manifests: list[dict[str, Any]]) -> None:
    cm = next(m for m in manifests if m["kind"] == "ConfigMap")
    again = parse_topology(cm["data"]["ramparts.yaml"])
    assert again.edges == default_topology().edges


def test_yaml_output_is_multi_document(manifests: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    dump_all(manifests, out)
    docs = list(YAML(typ="safe").load_all(out.getvalue()))
    assert len(docs) == len(manifests)
