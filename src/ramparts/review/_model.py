"""One model per deployment unit: workloads, services, policies, config, secrets.

Only what the checks need is modelled; every object keeps its file, line and
the raw tree so a check can point at the exact field it is unhappy with.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from ramparts.review._load import Document, UnitSource
from ramparts.review._yamlnode import get, labels, line_of, mapping, seq, text, value_line

DEFAULT_NAMESPACE = "default"
# Kinds whose pod template we read, and where the template sits.
_POD_TEMPLATE = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "Rollout": ("spec", "template"),  # Argo Rollouts
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# Names and labels of the components that *are* the front door.
_GATEWAY_NAMES = frozenset(
    {
        "gateway",
        "api-gateway",
        "ramparts-gateway",
        "ingress-nginx",
        "ingress-nginx-controller",
        "nginx-ingress",
        "nginx-ingress-controller",
        "istio-ingressgateway",
        "ingressgateway",
        "traefik",
        "kong",
        "kong-proxy",
        "apisix-gateway",
        "envoy-gateway",
        "haproxy-ingress",
        "contour-envoy",
    }
)
_DB_IMAGE = re.compile(
    r"(^|/)(postgres|postgresql|postgis|mysql|mariadb|mongo|mongodb|redis|valkey|"
    r"mssql-server|mssql|cockroach|timescaledb|keydb)([:@]|$|-)",
    re.IGNORECASE,
)
# Two versions of one service are one service: payments, payments-canary, payments-v2.
VARIANT_SUFFIX = re.compile(
    r"-(canary|stable|primary|baseline|preview|blue|green|next|old|new|"
    r"v\d+(?:[.-]\d+)*|migrate|migration|migrations|db-migrate)$"
)


@dataclass
class K8sObject:
    kind: str
    name: str
    namespace: str
    file: str
    line: int
    node: Any = field(repr=False)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return labels(self.node, "metadata", "labels")

    @property
    def annotations(self) -> dict[str, str]:
        return labels(self.node, "metadata", "annotations")


@dataclass
class EnvVar:
    """An environment variable as the container sees it, and where its value is written."""

    name: str
    value: str | None  # None when the value lives outside the unit
    file: str
    line: int
    origin: str  # "literal", "secret", "configmap", "field"
    source: str  # the object the value comes from, e.g. "Secret payments/db"
    literal: bool  # written in plain text in this unit (env value, ConfigMap, compose)


@dataclass
class Container:
    name: str
    image: str
    node: Any = field(repr=False)
    ports: list[tuple[str, int, str]] = field(default_factory=list)  # (name, port, proto)
    env: list[EnvVar] = field(default_factory=list)


@dataclass
class Workload:
    """A pod template (k8s) or a compose service: something that runs and talks."""

    obj: K8sObject
    pod_labels: dict[str, str]
    pod_annotations: dict[str, str]
    pod_spec: Any = field(repr=False)
    containers: list[Container] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return self.obj.ref

    @property
    def namespace(self) -> str:
        return self.obj.namespace

    @property
    def service(self) -> str:
        return service_identity(self.obj.name, self.pod_labels or self.obj.labels)

    @property
    def is_gateway(self) -> bool:
        return is_gateway(self.obj.name, {**self.obj.labels, **self.pod_labels})

    @property
    def is_database(self) -> bool:
        return any(_DB_IMAGE.search(c.image) for c in self.containers)

    def named_ports(self) -> dict[str, tuple[int, str]]:
        return {n: (p, proto) for c in self.containers for n, p, proto in c.ports if n}

    def port_numbers(self) -> set[tuple[int, str]]:
        return {(p, proto) for c in self.containers for _, p, proto in c.ports}


@dataclass
class ComposeService:
    name: str
    file: str
    line: int
    node: Any = field(repr=False)
    image: str
    env: list[EnvVar]
    networks: list[str]
    network_mode: str

    @property
    def ref(self) -> str:
        return f"compose service {self.name}"

    @property
    def service(self) -> str:
        return service_identity(self.name, {})

    @property
    def is_gateway(self) -> bool:
        return is_gateway(self.name, labels(self.node, "labels"))

    @property
    def is_database(self) -> bool:
        return bool(_DB_IMAGE.search(self.image))


@dataclass
class Deployment:
    """Everything one deployment unit declares."""

    name: str
    kind: str  # "kubernetes" or "compose"
    objects: list[K8sObject] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    namespaces: dict[str, K8sObject] = field(default_factory=dict)
    configmaps: dict[tuple[str, str], K8sObject] = field(default_factory=dict)
    secrets: dict[tuple[str, str], K8sObject] = field(default_factory=dict)
    compose_services: list[ComposeService] = field(default_factory=list)
    compose_file: str = ""
    compose_node: Any = field(default=None, repr=False)
    _by_kind: dict[str, list[K8sObject]] | None = field(default=None, repr=False)
    _indexed: int = field(default=-1, repr=False)

    def of_kind(self, *kinds: str) -> list[K8sObject]:
        """Objects of these kinds, in file order (indexed once; the model is built first)."""
        if self._by_kind is None or self._indexed != len(self.objects):
            self._by_kind = {}
            for o in self.objects:
                self._by_kind.setdefault(o.kind, []).append(o)
            self._indexed = len(self.objects)
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        return [o for o in self.objects if o.kind in kinds]

    def namespace_labels(self, ns: str) -> dict[str, str]:
        obj = self.namespaces.get(ns)
        out = obj.labels if obj else {}
        return {**out, "kubernetes.io/metadata.name": ns}

    def all_namespaces(self) -> set[str]:
        return {o.namespace for o in self.objects} | set(self.namespaces)


def service_identity(name: str, pod_labels: dict[str, str]) -> str:
    """Which service a workload is a version of: its app label (or name) without a variant suffix.

    ``payments``, ``payments-canary`` and ``payments-v2`` are one service; so
    are two Deployments with the same ``app`` label and different ``version``
    labels. ``app.kubernetes.io/name`` is used, with ``app.kubernetes.io/component``
    when present, when there is no ``app`` label.
    """
    base = pod_labels.get("app")
    if not base and pod_labels.get("app.kubernetes.io/name"):
        base = pod_labels["app.kubernetes.io/name"]
        if pod_labels.get("app.kubernetes.io/component"):
            base += "-" + pod_labels["app.kubernetes.io/component"]
    base = (base or pod_labels.get("k8s-app") or name).lower()
    return VARIANT_SUFFIX.sub("", base) or base


def is_gateway(name: str, all_labels: dict[str, str]) -> bool:
    """The front door itself (ingress controller, API gateway): exposing it is its job."""
    if all_labels.get("ramparts.dev/role") == "gateway" or all_labels.get("istio") in (
        "ingressgateway",
        "ingress",
    ):
        return True
    candidates = {name, all_labels.get("app", ""), all_labels.get("app.kubernetes.io/name", "")}
    return any(VARIANT_SUFFIX.sub("", c.lower()) in _GATEWAY_NAMES for c in candidates if c)


def build(unit: UnitSource) -> Deployment:
    """The model of one unit."""
    dep = Deployment(unit.name, unit.kind)
    if unit.kind == "compose":
        for doc in unit.documents:
            _build_compose(dep, doc)
        return dep
    for doc in unit.documents:
        node = doc.node
        kind = text(node, "kind")
        name = text(node, "metadata", "name") or "<unnamed>"
        ns = text(node, "metadata", "namespace") or DEFAULT_NAMESPACE
        if kind == "Namespace":
            ns = name
        obj = K8sObject(kind, name, ns, doc.file, doc.line, node)
        dep.objects.append(obj)
        if kind == "Namespace":
            dep.namespaces[name] = obj
        elif kind == "ConfigMap":
            dep.configmaps[(ns, name)] = obj
        elif kind == "Secret":
            dep.secrets[(ns, name)] = obj
    for obj in dep.objects:
        pod_path = () if obj.kind == "Pod" else _POD_TEMPLATE.get(obj.kind)
        if pod_path is None:
            continue
        template = get(obj.node, *pod_path) if pod_path else obj.node
        spec = get(template, "spec")
        if not isinstance(spec, dict):
            continue
        wl = Workload(
            obj,
            labels(template, "metadata", "labels"),
            labels(template, "metadata", "annotations"),
            spec,
        )
        for key in ("initContainers", "containers"):
            for c in seq(spec, key):
                if isinstance(c, dict):
                    wl.containers.append(_container(dep, obj, c))
        dep.workloads.append(wl)
    return dep


def _container(dep: Deployment, obj: K8sObject, c: Any) -> Container:
    out = Container(text(c, "name"), text(c, "image"), c)
    for p in seq(c, "ports"):
        num = get(p, "containerPort")
        if isinstance(num, int):
            out.ports.append((text(p, "name"), num, text(p, "protocol", default="TCP").upper()))
    for ef in seq(c, "envFrom"):
        prefix = text(ef, "prefix")
        for ref_key, table, origin in (
            ("configMapRef", dep.configmaps, "configmap"),
            ("secretRef", dep.secrets, "secret"),
        ):
            ref = text(ef, ref_key, "name")
            if not ref:
                continue
            src = table.get((obj.namespace, ref))
            if src is None:
                continue
            for key, (value, line) in data_items(src).items():
                out.env.append(
                    EnvVar(prefix + key, value, src.file, line, origin, src.ref, origin != "secret")
                )
    for e in seq(c, "env"):
        name = text(e, "name")
        if not name:
            continue
        line = line_of(e, "value", line_of(e))
        if "value" in e:
            out.env.append(EnvVar(name, text(e, "value"), obj.file, line, "literal", obj.ref, True))
            continue
        vf = mapping(e, "valueFrom")
        for ref_key, table, origin in (
            ("configMapKeyRef", dep.configmaps, "configmap"),
            ("secretKeyRef", dep.secrets, "secret"),
        ):
            ref = text(vf, ref_key, "name")
            key = text(vf, ref_key, "key")
            if not ref:
                continue
            src = table.get((obj.namespace, ref))
            kind = "ConfigMap" if origin == "configmap" else "Secret"
            value, vline, vfile = None, line_of(e), obj.file
            if src is not None and key in data_items(src):
                value, vline = data_items(src)[key]
                vfile = src.file
            out.env.append(
                EnvVar(name, value, vfile, vline, origin, f"{kind} {obj.namespace}/{ref}", False)
            )
        if "fieldRef" in vf or "resourceFieldRef" in vf:
            out.env.append(EnvVar(name, None, obj.file, line, "field", obj.ref, False))
    _expand_k8s_refs(out.env)
    return out


_K8S_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _expand_k8s_refs(env: list[EnvVar]) -> None:
    """Kubernetes expands ``$(VAR)`` from earlier variables; do the same for connection strings."""
    seen: dict[str, str | None] = {}
    for v in env:
        if v.value and "$(" in v.value:
            v.value = _K8S_REF.sub(lambda m: seen.get(m.group(1)) or m.group(0), v.value)
        seen[v.name] = v.value


def data_items(obj: K8sObject) -> dict[str, tuple[str, int]]:
    """A ConfigMap's or Secret's keys: decoded value and the line it is written on."""
    out: dict[str, tuple[str, int]] = {}
    data = mapping(obj.node, "data")
    for k, v in data.items():
        value = text(v)
        if obj.kind == "Secret":
            value = decode_base64(value)
        out[str(k)] = (value, value_line(data, k, line_of(data, k, obj.line)))
    string_data = mapping(obj.node, "stringData")
    for k, v in string_data.items():
        out[str(k)] = (text(v), value_line(string_data, k, line_of(string_data, k, obj.line)))
    return out


def decode_base64(value: str) -> str:
    """A Secret's ``data`` value as text; the raw string when it is not valid base64 text."""
    try:
        return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value


def _build_compose(dep: Deployment, doc: Document) -> None:
    dep.compose_file = doc.file
    dep.compose_node = doc.node
    services = mapping(doc.node, "services")
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        env: list[EnvVar] = []
        raw = get(svc, "environment")
        if isinstance(raw, dict):
            for k, v in raw.items():
                env.append(
                    EnvVar(
                        str(k),
                        None if v is None else text(v),
                        doc.file,
                        line_of(raw, k),
                        "literal",
                        f"compose service {name}",
                        True,
                    )
                )
        elif isinstance(raw, list):
            for i, item in enumerate(raw):
                k, sep, v = text(item).partition("=")
                env.append(
                    EnvVar(
                        k,
                        v if sep else None,
                        doc.file,
                        line_of(raw, i),
                        "literal",
                        f"compose service {name}",
                        True,
                    )
                )
        nets = get(svc, "networks")
        networks = [str(n) for n in nets] if isinstance(nets, (list, dict)) else []
        dep.compose_services.append(
            ComposeService(
                str(name),
                doc.file,
                line_of(services, name),
                svc,
                text(svc, "image"),
                env,
                networks or ([] if "network_mode" in svc else ["default"]),
                text(svc, "network_mode"),
            )
        )
