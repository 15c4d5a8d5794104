"""``ramparts render k8s``: the whole topology as Kubernetes manifests.

Everything is derived from the topology, the same decisions the local
platform enforces:

* a Namespace per topology namespace, Pod Security "restricted" enforced;
* per service: a ServiceAccount (no token automount), a Deployment with no
  secret anywhere in its environment (identity from the mesh, database
  credentials from Vault Agent, the topology from a ConfigMap), and a
  ClusterIP Service; only the gateway's Service is exposed (LoadBalancer);
* NetworkPolicies: default deny for ingress and egress, one ingress policy
  per service admitting exactly its callers on its port, one egress policy per
  service reaching exactly its callees, DNS to kube-dns on UDP and TCP 53, and
  literal egress addresses as ``ipBlock`` /32s;
* Istio: PeerAuthentication STRICT, an allow-nothing baseline and an
  AuthorizationPolicy per service whose principals are its callers' service
  accounts (per-path rules become ``to.operation`` with ``{*}`` templates);
  egress to named hosts becomes ServiceEntries with outbound traffic limited
  to the registry (a NetworkPolicy cannot name a host);
* optionally Linkerd: Server, MeshTLSAuthentication and AuthorizationPolicy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from ruamel.yaml import YAML

from ramparts.config import GATEWAY, Topology

Manifest = dict[str, Any]
Mesh = Literal["istio", "linkerd", "none"]
APP_LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "ramparts"}
DEFAULT_IMAGE = "ghcr.io/ramparts/refbank:0.1.0"
GATEWAY_PORT = 8443
AUDIT = "ramparts-audit"
AUDIT_PORT = 7002
VAULT_ANNOTATIONS = "vault.hashicorp.com"


def _meta(
    name: str, namespace: str | None, labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**PART_OF, **(labels or {})}}
    if namespace:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def render(
    topology: Topology, *, image: str = DEFAULT_IMAGE, mesh: Mesh = "istio", replicas: int = 2
) -> list[Manifest]:
    """Every object for ``topology``, in apply order."""
    ns = topology.namespace
    out: list[Manifest] = [_namespace(ns, mesh), _topology_configmap(topology)]
    workloads = [*topology.services, GATEWAY, AUDIT]
    for name in workloads:
        out.append(_service_account(name, ns))
        out.append(_deployment(topology, name, image, replicas, mesh))
        out.append(_service(topology, name))
    out += _network_policies(topology)
    if mesh == "istio":
        out += _istio(topology)
    elif mesh == "linkerd":
        out += _linkerd(topology)
    return out


def _port(topology: Topology, name: str) -> int:
    if name == GATEWAY:
        return GATEWAY_PORT
    if name == AUDIT:
        return AUDIT_PORT
    return topology.services[name].listen.port


def _namespace(ns: str, mesh: Mesh) -> Manifest:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    annotations: dict[str, str] = {}
    if mesh == "istio":
        labels["istio-injection"] = "enabled"
    elif mesh == "linkerd":
        annotations["linkerd.io/inject"] = "enabled"
    meta = _meta(ns, None, labels)
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _topology_configmap(topology: Topology) -> Manifest:
    if not topology.text:
        raise ValueError(f"topology {topology.source} has no source text to publish")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("ramparts-topology", topology.namespace),
        # The same file, byte for byte: every pod derives its decisions from it.
        "data": {"ramparts.yaml": topology.text},
    }


def _service_account(name: str, ns: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name, ns, {APP_LABEL: name}),
        "automountServiceAccountToken": False,
    }


def _args(topology: Topology, name: str) -> list[str]:
    if name == GATEWAY:
        return ["ramparts", "gateway", "run", "--topology", "/etc/ramparts/ramparts.yaml"]
    if name == AUDIT:
        return ["ramparts", "audit", "serve", "--data", "/var/lib/ramparts-audit"]
    db = topology.services[name].database or name
    # The URL names the database only; the role and password come from the
    # Vault Agent file at runtime, never from the pod spec.
    return [
        "python",
        "-m",
        "refbank",
        name,
        "--topology",
        "/etc/ramparts/ramparts.yaml",
        "--state",
        "/var/run/ramparts",
        "--database",
        f"postgresql://postgres-{db}.{topology.namespace}.svc:5432/{db}",
    ]


def _deployment(topology: Topology, name: str, image: str, replicas: int, mesh: Mesh) -> Manifest:
    ns = topology.namespace
    labels = {APP_LABEL: name}
    annotations: dict[str, str] = {}
    if name in topology.services and topology.services[name].database:
        role = name
        annotations.update(
            {
                f"{VAULT_ANNOTATIONS}/agent-inject": "true",
                f"{VAULT_ANNOTATIONS}/role": role,
                f"{VAULT_ANNOTATIONS}/agent-inject-secret-db": f"database/creds/{role}",
                f"{VAULT_ANNOTATIONS}/agent-inject-perms-db": "0400",
            }
        )
    if mesh == "istio" and name != GATEWAY:
        annotations["sidecar.istio.io/inject"] = "true"
    elif mesh == "none":
        # Without a mesh the workloads speak mTLS themselves (ramparts.identity).
        annotations["ramparts.dev/mtls"] = "app"
    volumes = [
        {"name": "topology", "configMap": {"name": "ramparts-topology"}},
        {"name": "state", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {
            # A short-lived token for this workload only, for the secrets broker to verify.
            "name": "identity",
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": "ramparts-secrets",
                            "expirationSeconds": 3600,
                            "path": "token",
                        }
                    }
                ]
            },
        },
    ]
    container = {
        "name": name,
        "image": image,
        "args": _args(topology, name),
        "ports": [{"name": "https", "containerPort": _port(topology, name), "protocol": "TCP"}],
        "securityContext": _container_security(),
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "readinessProbe": {"tcpSocket": {"port": "https"}, "periodSeconds": 5},
        "volumeMounts": [
            {"name": "topology", "mountPath": "/etc/ramparts", "readOnly": True},
            {"name": "state", "mountPath": "/var/run/ramparts"},
            {"name": "identity", "mountPath": "/var/run/secrets/ramparts", "readOnly": True},
        ],
    }
    pod_meta: dict[str, Any] = {"labels": {**PART_OF, **labels}}
    if annotations:
        pod_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": pod_meta,
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _service(topology: Topology, name: str) -> Manifest:
    port = _port(topology, name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, topology.namespace, {APP_LABEL: name}),
        "spec": {
            # The gateway is the one door; everything else is reachable only in-cluster.
            "type": "LoadBalancer" if name == GATEWAY else "ClusterIP",
            "selector": {APP_LABEL: name},
            "ports": [
                {
                    "name": "https",
                    "port": 443 if name == GATEWAY else port,
                    "targetPort": "https",
                    "protocol": "TCP",
                }
            ],
        },
    }


def _pods(*names: str) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": {APP_LABEL: n}}} for n in names]


def _np(topology: Topology, name: str, spec: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(name, topology.namespace),
        "spec": spec,
    }


def _network_policies(topology: Topology) -> list[Manifest]:
    out = [
        _np(
            topology, "default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        ),
        _np(
            topology,
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
    ]
    callers: dict[str, list[str]] = {}
    for caller, callee in sorted(topology.edges):
        callers.setdefault(callee, []).append(caller)
    for name in topology.services:
        port = _port(topology, name)
        if callers.get(name):
            out.append(
                _np(
                    topology,
                    f"{name}-ingress",
                    {
                        "podSelector": {"matchLabels": {APP_LABEL: name}},
                        "policyTypes": ["Ingress"],
                        "ingress": [
                            {
                                "from": _pods(*callers[name]),
                                "ports": [{"protocol": "TCP", "port": port}],
                            }
                        ],
                    },
                )
            )
    # Every workload ships events to the audit log.
    out.append(
        _np(
            topology,
            f"{AUDIT}-ingress",
            {
                "podSelector": {"matchLabels": {APP_LABEL: AUDIT}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": _pods(*topology.services, GATEWAY),
                        "ports": [{"protocol": "TCP", "port": AUDIT_PORT}],
                    }
                ],
            },
        )
    )
    out.append(
        _np(
            topology,
            f"{GATEWAY}-ingress",
            {
                "podSelector": {"matchLabels": {APP_LABEL: GATEWAY}},
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}],
            },
        )
    )
    for name in [*topology.services, GATEWAY]:
        out.append(_egress_policy(topology, name))
    return out


def _egress_policy(topology: Topology, name: str) -> Manifest:
    rules: list[dict[str, Any]] = []
    for caller, callee in sorted(topology.edges):
        if caller == name:
            port = _port(topology, callee)
            rules.append({"to": _pods(callee), "ports": [{"protocol": "TCP", "port": port}]})
    rules.append({"to": _pods(AUDIT), "ports": [{"protocol": "TCP", "port": AUDIT_PORT}]})
    if name in topology.services:
        for rule in topology.services[name].egress:
            if rule.network is not None:
                rules.append(
                    {
                        "to": [{"ipBlock": {"cidr": str(rule.network)}}],
                        "ports": [{"protocol": "TCP", "port": rule.port}],
                    }
                )
    return _np(
        topology,
        f"{name}-egress",
        {
            "podSelector": {"matchLabels": {APP_LABEL: name}},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    )


def _principal(topology: Topology, name: str) -> str:
    # Istio principals are "<trust domain>/ns/<namespace>/sa/<service account>";
    # meshConfig.trustDomain must equal the topology's trust domain.
    return f"{topology.trust_domain}/ns/{topology.namespace}/sa/{name}"


def _istio_path(pattern: str) -> str:
    """Our ``*`` (one segment) and trailing ``**`` as Istio path templates (Istio >= 1.22)."""
    return "/".join("{*}" if p == "*" else "{**}" if p == "**" else p for p in pattern.split("/"))


def _istio(topology: Topology) -> list[Manifest]:
    ns = topology.namespace
    out: list[Manifest] = [
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "PeerAuthentication",
            "metadata": _meta("default", ns),
            "spec": {"mtls": {"mode": "STRICT"}},
        },
        {
            # With no ALLOW policy matching, Istio would allow; this baseline makes it deny.
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": _meta("allow-nothing", ns),
            "spec": {},
        },
    ]
    callers: dict[str, list[str]] = {}
    for caller, callee in sorted(topology.edges):
        callers.setdefault(callee, []).append(caller)
    for name, svc in topology.services.items():
        rules = []
        for caller in callers.get(name, []):
            rule: dict[str, Any] = {
                "from": [{"source": {"principals": [_principal(topology, caller)]}}]
            }
            narrowed = svc.caller_rules.get(caller)
            if narrowed:
                ops = []
                for r in narrowed:
                    op: dict[str, Any] = {"paths": [_istio_path(p) for p in r.paths]}
                    if r.methods:
                        op["methods"] = sorted(r.methods)
                    ops.append({"operation": op})
                rule["to"] = ops
            rules.append(rule)
        out.append(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": _meta(name, ns, {APP_LABEL: name}),
                "spec": {
                    "selector": {"matchLabels": {APP_LABEL: name}},
                    "action": "ALLOW",
                    "rules": rules,
                },
            }
        )
        hosts = [r for r in svc.egress if r.network is None]
        if hosts:
            out.append(
                {
                    "apiVersion": "networking.istio.io/v1",
                    "kind": "ServiceEntry",
                    "metadata": _meta(f"{name}-egress", ns, {APP_LABEL: name}),
                    "spec": {
                        "hosts": sorted({h.host for h in hosts}),
                        "location": "MESH_EXTERNAL",
                        "resolution": "DNS",
                        "ports": [
                            {"number": p, "name": f"tls-{p}", "protocol": "TLS"}
                            for p in sorted({h.port for h in hosts})
                        ],
                        "exportTo": ["."],
                    },
                }
            )
    out.append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Sidecar",
            "metadata": _meta("default", ns),
            "spec": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}},
        }
    )
    return out


def _linkerd(topology: Topology) -> list[Manifest]:
    ns = topology.namespace
    out: list[Manifest] = []
    callers: dict[str, list[str]] = {}
    for caller, callee in sorted(topology.edges):
        callers.setdefault(callee, []).append(caller)
    for name in topology.services:
        out.append(
            {
                "apiVersion": "policy.linkerd.io/v1beta3",
                "kind": "Server",
                "metadata": _meta(name, ns),
                "spec": {
                    "podSelector": {"matchLabels": {APP_LABEL: name}},
                    "port": "https",
                    "proxyProtocol": "HTTP/1",
                },
            }
        )
        out.append(
            {
                "apiVersion": "policy.linkerd.io/v1alpha1",
                "kind": "MeshTLSAuthentication",
                "metadata": _meta(f"{name}-callers", ns),
                "spec": {
                    "identities": [
                        f"{c}.{ns}.serviceaccount.identity.linkerd.cluster.local"
                        for c in callers.get(name, [])
                    ]
                },
            }
        )
        out.append(
            {
                "apiVersion": "policy.linkerd.io/v1alpha1",
                "kind": "AuthorizationPolicy",
                "metadata": _meta(name, ns),
                "spec": {
                    "targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": name},
                    "requiredAuthenticationRefs": [
                        {
                            "group": "policy.linkerd.io",
                            "kind": "MeshTLSAuthentication",
                            "name": f"{name}-callers",
                        }
                    ],
                },
            }
        )
    return out


def dump_all(manifests: Iterable[Manifest], stream: Any) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.explicit_start = True
    yaml.dump_all(list(manifests), stream)
