"""The parsed topology and everything derived from it.

Topology is parsed once; the authorisation table, the expected edge set and
(later) gateway routes, NetworkPolicies and nftables rules are all derived
from this object, never re-read from the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from ramparts.config._address import EgressRule, Endpoint
from ramparts.config._schema import CallerRuleSpec, GatewaySpec, PlatformSpec, TopologySpec

GATEWAY = "gateway"
# Platform components have identities in their own namespace, so no service can
# be named into one of them.
PLATFORM_NAMESPACE = "ramparts"
PLATFORM_COMPONENTS = ("ca", "secrets", "audit", "witness", "console", GATEWAY)
# Every workload talks to these platform endpoints; they authorise per request.
PLATFORM_SERVICES_FOR_WORKLOADS = ("ca", "secrets", "audit")


@dataclass(frozen=True, slots=True)
class CallerRule:
    """A caller limited to some methods (empty = any) on some paths (``*`` = one segment)."""

    methods: frozenset[str]
    paths: tuple[str, ...]

    def permits(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return any(_path_matches(pattern, path) for pattern in self.paths)


def _path_matches(pattern: str, path: str) -> bool:
    """``*`` matches one non-empty segment; a final ``**`` matches whatever follows.

    A path with a dot segment never matches: servers disagree on whether to
    collapse ``/a/../b``, so a rule must not depend on which one we run behind.
    """
    want, got = pattern.split("/"), path.split("/")
    if any(seg in (".", "..") for seg in got):
        return False
    if want[-1] == "**":
        want = want[:-1]
        if len(got) < len(want):
            return False
        got = got[: len(want)]
    return len(want) == len(got) and all(
        w == g or (w == "*" and g != "") for w, g in zip(want, got, strict=True)
    )


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    spiffe_id: str
    listen: Endpoint
    database: str | None
    calls: tuple[str, ...]
    egress: tuple[EgressRule, ...]
    # caller name -> rules; a caller without an entry may call anything the edge allows.
    caller_rules: Mapping[str, tuple[CallerRule, ...]]


@dataclass(frozen=True, slots=True)
class AuthzDecision:
    allowed: bool
    reason: str
    caller: str | None  # the caller's name in the topology, when its identity is known


@dataclass(frozen=True)
class Topology:
    """An immutable, validated ``ramparts.yaml``. Build it with :func:`load_topology`."""

    source: str
    spec: TopologySpec = field(repr=False)
    text: str = field(default="", repr=False)  # the file as read, for rendering elsewhere

    @property
    def trust_domain(self) -> str:
        return self.spec.trust_domain

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    @property
    def gateway(self) -> GatewaySpec:
        return self.spec.gateway

    @property
    def platform(self) -> PlatformSpec:
        return self.spec.platform

    def spiffe_id(self, name: str) -> str:
        """The SPIFFE ID of a service or platform component (``spiffe://td/ns/N/sa/NAME``)."""
        if name in self.spec.services:
            ns = self.namespace
        elif name in PLATFORM_COMPONENTS:
            ns = PLATFORM_NAMESPACE
        else:
            raise KeyError(f"no service or platform component named {name!r} in {self.source}")
        return f"spiffe://{self.trust_domain}/ns/{ns}/sa/{name}"

    @cached_property
    def services(self) -> Mapping[str, Service]:
        out: dict[str, Service] = {}
        for name, s in self.spec.services.items():
            rules: dict[str, list[CallerRule]] = {}
            for r in self.spec.services[name].allow:
                rules.setdefault(r.caller, []).append(_caller_rule(r))
            out[name] = Service(
                name=name,
                spiffe_id=self.spiffe_id(name),
                listen=s.listen,
                database=s.database,
                calls=s.calls,
                egress=tuple(e.rule() for e in s.egress),
                caller_rules=MappingProxyType({k: tuple(v) for k, v in rules.items()}),
            )
        return MappingProxyType(out)

    @cached_property
    def edges(self) -> frozenset[tuple[str, str]]:
        """Every allowed (caller, callee) pair between workloads, the gateway included."""
        pairs = {(name, callee) for name, s in self.spec.services.items() for callee in s.calls}
        pairs |= {(GATEWAY, r.service) for r in self.gateway.routes}
        return frozenset(pairs)

    @cached_property
    def _by_spiffe_id(self) -> Mapping[str, str]:
        names = [*self.spec.services, *PLATFORM_COMPONENTS]
        return MappingProxyType({self.spiffe_id(n): n for n in names})

    def name_for(self, spiffe_id: str) -> str | None:
        """The service named by a verified SPIFFE ID, or None for an identity we don't know."""
        return self._by_spiffe_id.get(spiffe_id)

    def authorize(
        self, callee: str, caller_spiffe_id: str | None, method: str, path: str
    ) -> AuthzDecision:
        """May the verified ``caller_spiffe_id`` call ``method path`` on ``callee``?

        Fails closed: no identity, an identity outside the topology, a caller
        with no edge to ``callee`` and a path outside the caller's rules are
        all denied, each with its own reason.
        """
        if caller_spiffe_id is None:
            return AuthzDecision(False, "no verified caller identity", None)
        caller = self.name_for(caller_spiffe_id)
        if caller is None:
            return AuthzDecision(False, f"unknown identity {caller_spiffe_id}", None)
        if callee in PLATFORM_SERVICES_FOR_WORKLOADS:
            # Every workload renews its identity, leases its credentials and ships its
            # events; the platform component then authorises each request itself.
            if caller in self.spec.services or caller == GATEWAY:
                return AuthzDecision(True, f"{caller} -> platform {callee} allowed", caller)
            return AuthzDecision(False, f"{caller} is not a workload of this topology", caller)
        if (caller, callee) not in self.edges:
            return AuthzDecision(
                False, f"{caller} may not call {callee} (no edge in topology)", caller
            )
        svc = self.services.get(callee)
        rules = svc.caller_rules.get(caller) if svc else None
        if rules and not any(r.permits(method, path) for r in rules):
            return AuthzDecision(False, f"{caller} may not {method} {path} on {callee}", caller)
        return AuthzDecision(True, f"{caller} -> {callee} allowed", caller)


def _caller_rule(spec: CallerRuleSpec) -> CallerRule:
    return CallerRule(frozenset(m.upper() for m in spec.methods), spec.paths)
