"""R1: no mutual TLS — fires and stays silent."""

from __future__ import annotations

import pytest
from tests.review.conftest import deployment, rules_of

MESH_NS = """apiVersion: v1
kind: Namespace
metadata:
  name: bank
  labels: {istio-injection: enabled}
"""
STRICT_MESH = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"""


def test_workload_without_mesh_fires(scan_yaml):
    r = scan_yaml(deployment("ledger"))
    f = [f for f in r.findings if f.rule == "R1.no-mesh"]
    assert len(f) == 1
    assert "Deployment bank/ledger is not in a service mesh" in f[0].message
    assert f[0].line == 1 and f[0].risk == "R1" and f[0].fix


def test_istio_strict_mesh_wide_is_silent(scan_yaml):
    r = scan_yaml("---\n".join([MESH_NS, STRICT_MESH, deployment("ledger")]))
    assert rules_of(r, "R1") == []


def test_istio_without_peer_authentication_is_permissive(scan_yaml):
    r = scan_yaml("---\n".join([MESH_NS, deployment("ledger")]))
    f = [f for f in r.findings if f.rule == "R1.permissive"]
    assert len(f) == 1 and "default PERMISSIVE" in f[0].message


def test_namespace_permissive_overrides_mesh_strict(scan_yaml):
    ns_pa = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: relaxed, namespace: bank}
spec:
  mtls:
    mode: PERMISSIVE
"""
    r = scan_yaml("---\n".join([MESH_NS, STRICT_MESH, ns_pa, deployment("ledger")]))
    f = [f for f in r.findings if f.rule == "R1.permissive"]
    assert len(f) == 1
    assert "PeerAuthentication bank/relaxed sets mTLS mode PERMISSIVE" in f[0].message
    assert f[0].line == 18  # the `mode:` line of the namespace policy


def test_workload_strict_overrides_namespace_permissive(scan_yaml):
    pas = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: relaxed, namespace: bank}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ledger-strict, namespace: bank}
spec:
  selector: {matchLabels: {app: ledger}}
  mtls: {mode: STRICT}
"""
    r = scan_yaml("---\n".join([MESH_NS, pas, deployment("ledger")]))
    assert rules_of(r, "R1") == []


def test_port_level_disable_fires(scan_yaml):
    pa = """apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ledger, namespace: bank}
spec:
  selector: {matchLabels: {app: ledger}}
  mtls: {mode: STRICT}
  portLevelMtls:
    9090: {mode: DISABLE}
"""
    r = scan_yaml("---\n".join([MESH_NS, pa, deployment("ledger")]))
    f = [f for f in r.findings if f.rule == "R1.permissive"]
    assert len(f) == 1 and "DISABLE on port 9090" in f[0].message


def test_pod_opting_out_of_injection_fires(scan_yaml):
    dep = deployment("ledger", labels='{app: ledger, sidecar.istio.io/inject: "false"}')
    r = scan_yaml("---\n".join([MESH_NS, STRICT_MESH, dep]))
    assert rules_of(r, "R1") == ["R1.no-mesh"]


def test_linkerd_injection_is_a_mesh(scan_yaml):
    dep = deployment("ledger", annotations="{linkerd.io/inject: enabled}")
    assert rules_of(scan_yaml(dep), "R1") == []


def test_db_tls_disabled_in_env_and_secret(scan_yaml):
    env = """            - name: DATABASE_URL
              value: postgresql://ledger-db:5432/ledger?sslmode=disable
            - name: ACCOUNTS_DB
              valueFrom: {secretKeyRef: {name: accts, key: dsn}}
"""
    secret = """apiVersion: v1
kind: Secret
metadata: {name: accts, namespace: bank}
stringData:
  dsn: "Server=accounts-db,1433;Database=accounts;Encrypt=False"
"""
    dep = deployment("ledger", env=env, annotations="{ramparts.dev/mtls: app}")
    r = scan_yaml("---\n".join([secret, dep]))
    f = sorted((x.line, x.message) for x in r.findings if x.rule == "R1.db-tls-disabled")
    assert len(f) == 2
    assert f[0][0] == 5 and "encrypt=False" in f[0][1]
    assert "sslmode=disable" in f[1][1]


def test_db_tls_verified_is_silent(scan_yaml):
    env = """            - name: DATABASE_URL
              value: postgresql://ledger-db:5432/ledger?sslmode=verify-full
            - name: REDIS_URL
              value: rediss://cache:6380/0?tls=true
"""
    r = scan_yaml(deployment("ledger", env=env, annotations="{ramparts.dev/mtls: app}"))
    assert rules_of(r, "R1") == []


def test_compose_services_fire_unless_app_mtls(scan_yaml):
    compose = """
    services:
      api:
        image: bank/api
        labels: {ramparts.dev/mtls: app}
      worker:
        image: bank/worker
    """
    r = scan_yaml(compose, name="docker-compose.yml")
    assert [f.resource for f in r.findings if f.rule == "R1.compose-no-mtls"] == [
        "compose service worker"
    ]


@pytest.mark.parametrize(
    ("url", "setting"),
    [
        ("mongodb://orders-db:27017/orders?ssl=false", "ssl=false"),
        ("mongodb+srv://cluster.example/orders?tls=false", "tls=false"),
        ("jdbc:mysql://mysql:3306/core?useSSL=false", "usessl=false"),
        ("jdbc:sqlserver://sql:1433;databaseName=core;encrypt=false", "encrypt=false"),
        ("host=pg dbname=core user=app sslmode=disable", "sslmode=disable"),
    ],
)
def test_tls_off_variants(scan_yaml, url, setting):
    env = f"""            - name: DSN
              value: "{url}"
"""
    r = scan_yaml(deployment("core", env=env, annotations="{ramparts.dev/mtls: app}"))
    (f,) = [f for f in r.findings if f.rule == "R1.db-tls-disabled"]
    assert setting in f.message.lower()
