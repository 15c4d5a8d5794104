"""Reachability computed from NetworkPolicies against the edges ramparts.yaml allows."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from ramparts.review import scan

EXTRA = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: statements-to-accounts, namespace: bank}
spec:
  podSelector: {matchLabels: {app: statements}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: accounts}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: accounts-from-statements, namespace: bank}
spec:
  podSelector: {matchLabels: {app: accounts}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: statements}}}]
      ports: [{port: 7101}]
"""


def _bank(tmp_path: Path, fixtures: Path, extra: str = "") -> Path:
    d = tmp_path / "bank"
    shutil.copytree(fixtures / "secure-bank", d)
    topo = resources.files("ramparts.config").joinpath("refbank.yaml").read_text()
    (d / "ramparts.yaml").write_text(topo)
    if extra:
        (d / "extra.yaml").write_text(extra)
    return d


def test_policies_matching_the_topology_add_no_edge(tmp_path, fixtures):
    r = scan([_bank(tmp_path, fixtures)])
    assert r.topology and r.topology.endswith("ramparts.yaml")
    assert [f for f in r.findings if f.rule == "R5.extra-edge"] == []


def test_extra_reachable_edge_is_reported(tmp_path, fixtures):
    r = scan([_bank(tmp_path, fixtures, EXTRA)])
    (f,) = [f for f in r.findings if f.rule == "R5.extra-edge"]
    assert "(statements) can reach Deployment bank/accounts (accounts) on port 7101" in f.message
    assert "no edge statements -> accounts" in f.message
    assert f.file.endswith("extra.yaml") and f.line == 11  # the allowing policy


def test_unisolated_namespace_reaches_everything(tmp_path, fixtures):
    d = _bank(tmp_path, fixtures)
    (d / "policies.yaml").unlink()
    r = scan([d])
    edges = {f.message.split(" but ")[-1] for f in r.findings if f.rule == "R5.extra-edge"}
    assert "ramparts.yaml has no edge accounts -> ledger" in {e.split("/")[-1] for e in edges}
    assert not any(e.endswith("payments -> ledger") for e in edges)  # an allowed edge


def test_compose_shared_network_edges(tmp_path):
    topo = resources.files("ramparts.config").joinpath("refbank.yaml").read_text()
    (tmp_path / "ramparts.yaml").write_text(topo)
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n"
        "  payments: {image: bank/payments, networks: [core]}\n"
        "  ledger: {image: bank/ledger, networks: [core]}\n"
        "  statements: {image: bank/statements, networks: [reports]}\n"
    )
    r = scan([tmp_path])
    got = sorted(
        f.message.split(" has no edge ")[-1] for f in r.findings if f.rule == "R5.extra-edge"
    )
    assert got == ["ledger -> payments"]


DB_LEAK = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: statements-to-ledger-db, namespace: bank}
spec:
  podSelector: {matchLabels: {app: statements}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: ledger-db}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ledger-db-from-statements, namespace: bank}
spec:
  podSelector: {matchLabels: {app: ledger-db}}
  ingress:
    - from: [{podSelector: {matchLabels: {app: statements}}}]
"""


def test_reaching_another_services_database_is_an_extra_edge(tmp_path, fixtures):
    r = scan([_bank(tmp_path, fixtures, DB_LEAK)])
    (f,) = [f for f in r.findings if f.rule == "R5.extra-edge"]
    assert f.resource == "StatefulSet bank/ledger-db"
    assert "(statements) can reach StatefulSet bank/ledger-db, the database of ledger" in f.message


def test_compose_database_shared_network(tmp_path):
    topo = resources.files("ramparts.config").joinpath("refbank.yaml").read_text()
    (tmp_path / "ramparts.yaml").write_text(topo)
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n"
        "  ledger:\n"
        "    image: bank/ledger\n"
        "    networks: [ledger-db, core]\n"
        "    environment: {DATABASE_URL: 'postgres://ledger-db/ledger'}\n"
        "  payments: {image: bank/payments, networks: [core]}\n"
        "  statements: {image: bank/statements, networks: [ledger-db]}\n"
        "  ledger-db: {image: 'postgres:16', networks: [ledger-db]}\n"
    )
    r = scan([tmp_path])
    db = [
        f.message
        for f in r.findings
        if f.rule == "R5.extra-edge" and "the database of" in f.message
    ]
    assert len(db) == 1 and "(statements) can reach compose service ledger-db" in db[0]
