"""What every check gets: the deployment model and the views derived from it once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ramparts.review import databases
from ramparts.review._model import ComposeService, Deployment, Workload
from ramparts.review._yamlnode import line_of, seq, text
from ramparts.review.netpol import Pod, Reachability, policies_from

if TYPE_CHECKING:
    from ramparts.config import Topology

DEFAULT_ISTIO_ROOT = "istio-system"


@dataclass
class Context:
    dep: Deployment
    topology: Topology | None = None
    istio_root: str = DEFAULT_ISTIO_ROOT
    _pods: dict[int, Pod] = field(default_factory=dict, repr=False)

    def pod(self, wl: Workload) -> Pod:
        key = id(wl)
        if key not in self._pods:
            self._pods[key] = Pod(wl.obj.name, wl.namespace, wl.pod_labels, wl.named_ports())
        return self._pods[key]

    @cached_property
    def reach(self) -> Reachability:
        ns_labels = {ns: self.dep.namespace_labels(ns) for ns in self.dep.all_namespaces()}
        return Reachability(policies_from(self.dep.objects), ns_labels)

    def workloads_in(self, ns: str) -> list[Workload]:
        return [w for w in self.dep.workloads if w.namespace == ns]

    def selected_by(self, selector: dict[str, str], ns: str) -> list[Workload]:
        """Workloads a Service selector picks (plain equality, as Services use)."""
        if not selector:
            return []
        return [
            w
            for w in self.workloads_in(ns)
            if all(w.pod_labels.get(k) == v for k, v in selector.items())
        ]


def workload_settings(wl: Workload) -> list[databases.Setting]:
    """Env values (resolved through ConfigMaps and Secrets of the unit) and args of a workload."""
    out: list[databases.Setting] = []
    for c in wl.containers:
        out.extend(databases.Setting(e.name, e.value, e.file, e.line) for e in c.env if e.value)
        out.extend(command_settings(c.node, wl.obj.file))
    return out


def command_settings(container: object, file: str) -> Iterator[databases.Setting]:
    for key in ("command", "args"):
        items = seq(container, key)
        for i, item in enumerate(items):
            value = text(item)
            if value:
                yield databases.Setting(key, value, file, line_of(items, i))
        if isinstance(container, dict) and isinstance(container.get(key), str):
            yield databases.Setting(key, container[key], file, line_of(container, key))


def compose_settings(svc: ComposeService) -> list[databases.Setting]:
    out = [databases.Setting(e.name, e.value, e.file, e.line) for e in svc.env if e.value]
    out.extend(command_settings(svc.node, svc.file))
    return out


def db_refs(ctx: Context, wl: Workload | ComposeService) -> list[databases.DbRef]:
    if isinstance(wl, Workload):
        return databases.from_settings(workload_settings(wl), wl.namespace)
    return databases.from_settings(compose_settings(wl), None)
