"""Kubernetes NetworkPolicy semantics, exactly as the API defines them.

* Policies are additive: a connection is allowed when *any* rule of *any*
  policy that applies allows it; no policy ever denies.
* A pod is isolated for ingress (egress) only when at least one policy in its
  namespace selects it and lists ``Ingress`` (``Egress``) in ``policyTypes``.
  Without ``policyTypes`` a policy has ``Ingress``, plus ``Egress`` when its
  ``egress`` list is non-empty. A pod no policy isolates accepts (sends) anything.
* A connection needs both sides: the source's egress and the destination's ingress.
* A rule with no ``from``/``to`` matches every peer; with no ``ports`` every port.
  ``ingress: []`` (or none) allows nothing.
* In ONE peer, ``podSelector`` and ``namespaceSelector`` AND; two peers OR.
  ``podSelector`` alone means the policy's own namespace.
* An empty selector ``{}`` matches everything; ``matchLabels`` and
  ``matchExpressions`` (In, NotIn, Exists, DoesNotExist) AND. ``NotIn`` and
  ``DoesNotExist`` match a pod without the key.
* ``ipBlock`` (``cidr`` minus ``except``) matches addresses outside the
  cluster. Pod IPs are not known from manifests and CNIs differ on whether an
  ipBlock matches pod traffic, so here it never matches a pod.
* Ports: ``protocol`` defaults to TCP; a named port is resolved on the
  destination pod's container ports; ``endPort`` makes ``port..endPort`` a range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ramparts.review._yamlnode import get, labels, mapping, seq, text


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: namespace, labels, and its named container ports."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    """An address outside the cluster."""

    ip: str


Peer = Pod | External


def selector_matches(selector: Any, pod_labels: Mapping[str, str]) -> bool:
    """A LabelSelector against labels. ``None`` or ``{}`` selects everything."""
    if selector is None:
        return True
    if not isinstance(selector, dict):
        return False
    for k, v in labels(selector, "matchLabels").items():
        if pod_labels.get(k) != v:
            return False
    for expr in seq(selector, "matchExpressions"):
        key = text(expr, "key")
        op = text(expr, "operator")
        values = {text(v) for v in seq(expr, "values")}
        present = key in pod_labels
        if op == "In":
            ok = present and pod_labels[key] in values
        elif op == "NotIn":
            ok = not present or pod_labels[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            return False  # the API server rejects unknown operators; match nothing
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Policy:
    """One NetworkPolicy, read from its manifest."""

    name: str
    namespace: str
    node: Any

    @cached_property
    def pod_selector(self) -> Any:
        sel = get(self.node, "spec", "podSelector")
        return sel if sel is not None else {}

    @cached_property
    def types(self) -> frozenset[str]:
        declared = [text(t) for t in seq(self.node, "spec", "policyTypes")]
        if declared:
            return frozenset(declared)
        out = {"Ingress"}
        if seq(self.node, "spec", "egress"):
            out.add("Egress")
        return frozenset(out)

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and selector_matches(self.pod_selector, pod.labels)

    def rules(self, direction: str) -> list[Any]:
        return [
            r for r in seq(self.node, "spec", direction.lower()) if isinstance(r, dict) or r is None
        ]


def policies_from(objects: Iterable[Any]) -> list[Policy]:
    """Policies from model objects (anything with kind, name, namespace, node)."""
    return [Policy(o.name, o.namespace, o.node) for o in objects if o.kind == "NetworkPolicy"]


class Reachability:
    """Answers "can A reach B on port P" for one set of policies and namespaces."""

    def __init__(
        self, policies: list[Policy], namespace_labels: Mapping[str, Mapping[str, str]]
    ) -> None:
        self.policies = policies
        self._ns_labels = namespace_labels

    def ns_labels(self, ns: str) -> Mapping[str, str]:
        return {**self._ns_labels.get(ns, {}), "kubernetes.io/metadata.name": ns}

    def applying(self, pod: Pod, direction: str) -> list[Policy]:
        """The policies that isolate ``pod`` for ``direction`` ("Ingress" or "Egress")."""
        return [p for p in self.policies if direction in p.types and p.selects(pod)]

    def isolated(self, pod: Pod, direction: str) -> bool:
        return bool(self.applying(pod, direction))

    def allows(self, src: Peer, dst: Peer, port: int, protocol: str = "TCP") -> bool:
        """Is a connection from ``src`` to ``dst:port/protocol`` allowed by both sides?"""
        if isinstance(src, Pod) and not self._side(
            src, dst, port_owner=dst, port=port, protocol=protocol, direction="Egress"
        ):
            return False
        return not isinstance(dst, Pod) or self._side(
            dst, src, port_owner=dst, port=port, protocol=protocol, direction="Ingress"
        )

    def allowing_policies(
        self, pod: Pod, peer: Peer, *, port_owner: Peer, port: int, protocol: str, direction: str
    ) -> list[Policy]:
        """The policies (selecting ``pod``) with a rule that admits ``peer`` on the port."""
        return [
            p
            for p in self.applying(pod, direction)
            if any(
                self.rule_matches(
                    p,
                    r,
                    peer,
                    port_owner=port_owner,
                    port=port,
                    protocol=protocol,
                    direction=direction,
                )
                for r in p.rules(direction)
            )
        ]

    def _side(
        self, pod: Pod, peer: Peer, *, port_owner: Peer, port: int, protocol: str, direction: str
    ) -> bool:
        applying = self.applying(pod, direction)
        if not applying:
            return True
        return any(
            self.rule_matches(
                p, r, peer, port_owner=port_owner, port=port, protocol=protocol, direction=direction
            )
            for p in applying
            for r in p.rules(direction)
        )

    def rule_matches(
        self,
        policy: Policy,
        rule: Any,
        peer: Peer,
        *,
        port_owner: Peer,
        port: int,
        protocol: str,
        direction: str,
    ) -> bool:
        rule = rule or {}
        peers_key = "from" if direction == "Ingress" else "to"
        peers = seq(rule, peers_key)
        if peers and not any(self.peer_matches(policy, pe, peer) for pe in peers):
            return False
        ports = seq(rule, "ports")
        return not ports or any(port_matches(pp, port_owner, port, protocol) for pp in ports)

    def peer_matches(self, policy: Policy, spec: Any, peer: Peer) -> bool:
        if not isinstance(spec, dict):
            return False
        if "ipBlock" in spec:
            return isinstance(peer, External) and ip_block_matches(
                mapping(spec, "ipBlock"), peer.ip
            )
        has_pod, has_ns = "podSelector" in spec, "namespaceSelector" in spec
        if not (has_pod or has_ns) or not isinstance(peer, Pod):
            return False
        if has_ns:
            if not selector_matches(
                get(spec, "namespaceSelector") or {}, self.ns_labels(peer.namespace)
            ):
                return False
        elif peer.namespace != policy.namespace:
            return False
        return not has_pod or selector_matches(get(spec, "podSelector") or {}, peer.labels)


def port_matches(spec: Any, owner: Peer, port: int, protocol: str) -> bool:
    """One NetworkPolicyPort against ``port/protocol`` on the pod that owns the port."""
    if not isinstance(spec, dict):
        return False
    if text(spec, "protocol", default="TCP").upper() != protocol.upper():
        return False
    want = get(spec, "port")
    if want is None:
        return True
    if isinstance(want, int) and not isinstance(want, bool):
        end = get(spec, "endPort")
        high = end if isinstance(end, int) and end >= want else want
        return want <= port <= high
    named = owner.named_ports.get(str(want)) if isinstance(owner, Pod) else None
    if named is None:
        return str(want).isdigit() and int(str(want)) == port
    return named[0] == port and named[1].upper() == protocol.upper()


def ip_block_matches(block: Mapping[str, Any], ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
        net = ipaddress.ip_network(text(block, "cidr"), strict=False)
    except ValueError:
        return False
    if addr.version != net.version or addr not in net:
        return False
    for ex in seq(block, "except"):
        try:
            if addr in ipaddress.ip_network(text(ex), strict=False):
                return False
        except ValueError:
            continue
    return True
