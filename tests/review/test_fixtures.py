"""The two realistic fixtures: a bank done right (no finding) and one done wrong."""

from __future__ import annotations

from collections import Counter

from ramparts.config import default_topology
from ramparts.review import scan


def test_secure_bank_has_no_finding(fixtures):
    r = scan([fixtures / "secure-bank"], topology=default_topology())
    assert [(f.rule, f.resource) for f in r.findings] == []
    assert not r.errors
    assert r.units[0].workloads == 12


def test_secure_compose_has_no_finding(fixtures):
    r = scan([fixtures / "secure-compose"])
    assert [(f.rule, f.resource) for f in r.findings] == []
    assert [u.kind for u in r.units] == ["compose"] and not r.errors


def test_secure_compose_against_topology_shows_only_reverse_edges(fixtures):
    # Compose networks are symmetric: each allowed edge also opens its reverse.
    r = scan([fixtures / "secure-compose"], topology=default_topology())
    edges = sorted(f.message.rsplit(" has no edge ", 1)[1] for f in r.findings)
    assert {f.rule for f in r.findings} == {"R5.extra-edge"}
    assert edges == ["ledger -> payments", "payments -> gateway"]


def test_leaky_bank_finds_every_risk(fixtures):
    r = scan([fixtures / "leaky-bank"])
    assert not r.errors
    assert {f.risk for f in r.findings} == {"R1", "R2", "R3", "R4", "R5", "R6"}
    counts = Counter(f.rule for f in r.findings)
    assert counts == Counter(
        {
            "R1.no-mesh": 3,
            "R1.compose-no-mtls": 3,
            "R1.db-tls-disabled": 1,
            "R2.host-network": 1,
            "R2.host-port": 1,
            "R2.load-balancer": 1,
            "R2.node-port": 1,
            "R2.compose-published-port": 1,
            "R3.committed-secret": 1,
            "R3.configmap": 1,
            "R3.env-literal": 1,
            "R3.connection-string-password": 1,
            "R4.shared-database": 2,
            "R5.allow-all": 2,
            "R5.beta-annotation": 1,
            "R5.compose-flat": 1,
            "R5.no-default-deny-egress": 1,
            "R5.not-isolated": 2,
            "R5.selects-nothing": 1,
            "R5.unrestricted-egress": 1,
            "R6.ingress-allowlist": 1,
            "R6.source-ranges": 1,
        }
    )
    lb = next(f for f in r.findings if f.rule == "R2.load-balancer")
    assert lb.message.startswith("Service bank/ledger-db is type LoadBalancer")
    assert lb.file.endswith("rendered.yaml") and lb.line == 90
    # The canary of a shared DB is not counted, the real second service is.
    shared = [f for f in r.findings if f.rule == "R4.shared-database"]
    assert any("statements" in f.message and "ledger" in f.message for f in shared)
