"""R2: exposure that bypasses the gateway — fires and stays silent."""

from __future__ import annotations

from tests.review.conftest import deployment, rules_of


def service(name: str, stype: str = "ClusterIP", extra: str = "") -> str:
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: bank}}
spec:
  type: {stype}
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: http}}]{extra}
"""


def test_internal_load_balancer_fires_with_object_and_line(scan_yaml):
    r = scan_yaml("---\n".join([deployment("ledger-db"), service("ledger-db", "LoadBalancer")]))
    (f,) = [f for f in r.findings if f.risk == "R2"]
    assert f.rule == "R2.load-balancer"
    assert f.message.startswith("Service bank/ledger-db is type LoadBalancer")
    assert f.line == 21  # the `type:` line


def test_gateway_load_balancer_is_silent(scan_yaml):
    r = scan_yaml("---\n".join([deployment("gateway"), service("gateway", "LoadBalancer")]))
    assert rules_of(r, "R2") == []


def test_cluster_ip_is_silent(scan_yaml):
    r = scan_yaml("---\n".join([deployment("ledger"), service("ledger")]))
    assert rules_of(r, "R2") == []


def test_node_port_and_external_ips_fire(scan_yaml):
    r = scan_yaml(
        "---\n".join(
            [deployment("ledger"), service("ledger", "NodePort", "\n  externalIPs: [198.51.100.7]")]
        )
    )
    assert rules_of(r, "R2") == ["R2.external-ips", "R2.node-port"]


def test_published_through_ingress_and_directly(scan_yaml):
    ingress = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: bank}
spec:
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: statements, port: {number: 80}}}
"""
    r = scan_yaml(
        "---\n".join([deployment("statements"), service("statements", "NodePort"), ingress])
    )
    (f,) = [f for f in r.findings if f.risk == "R2"]
    assert f.rule == "R2.ingress-and-direct"
    assert "Ingress bank/web" in f.message and f.related


def test_host_network_and_host_port_fire(scan_yaml):
    dep = deployment(
        "statements",
        extra_spec="\n      hostNetwork: true",
        ports="            - {name: http, containerPort: 8080, hostPort: 8080}",
    )
    r = scan_yaml(dep)
    assert rules_of(r, "R2") == ["R2.host-network", "R2.host-port"]


def test_compose_published_ports(scan_yaml):
    compose = """
    services:
      gateway:
        image: ghcr.io/bank/gateway
        ports: ["443:8443"]
      db:
        image: postgres:16
        ports: ["5432:5432"]
      cache:
        image: redis:7
        ports: ["127.0.0.1:6379:6379"]
      worker:
        image: ghcr.io/bank/worker
        expose: ["9000"]
    """
    r = scan_yaml(compose, name="compose.yaml")
    got = {
        f.resource: f.severity.label for f in r.findings if f.rule == "R2.compose-published-port"
    }
    assert got == {"compose service db": "medium", "compose service cache": "low"}


def test_compose_host_network(scan_yaml):
    compose = """
    services:
      api:
        image: bank/api
        network_mode: host
    """
    r = scan_yaml(compose, name="docker-compose.yml")
    assert rules_of(r, "R2") == ["R2.compose-host-network"]
