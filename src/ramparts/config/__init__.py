"""The topology: ``ramparts.yaml``, the single source of truth.

One file declares the trust domain, the services (where they listen, the
database each owns, whom each calls, narrower per-caller rules, allowed
egress) and the gateway (listen address, routes, JWT issuers, limits). It is
parsed once into immutable objects; the authorisation table and the expected
edge set are derived from it.

>>> topo = default_topology()
>>> topo.spiffe_id("ledger")
'spiffe://refbank.local/ns/refbank/sa/ledger'
>>> topo.authorize("payments", topo.spiffe_id("statements"), "GET", "/").allowed
False
"""

from ramparts.config._address import EgressRule, Endpoint, split_host_port
from ramparts.config._errors import Problem, TopologyError
from ramparts.config._loader import default_topology, load_topology, parse_topology
from ramparts.config._schema import (
    CallerRuleSpec,
    GatewaySpec,
    IssuerSpec,
    PlatformSpec,
    RateLimitBackendSpec,
    RateLimitSpec,
    RouteSpec,
    ServiceSpec,
    TopologySpec,
    WafSpec,
    parse_rule_range,
)
from ramparts.config._topology import (
    GATEWAY,
    PLATFORM_COMPONENTS,
    AuthzDecision,
    CallerRule,
    Service,
    Topology,
)

__all__ = [
    "GATEWAY",
    "PLATFORM_COMPONENTS",
    "AuthzDecision",
    "CallerRule",
    "CallerRuleSpec",
    "EgressRule",
    "Endpoint",
    "GatewaySpec",
    "IssuerSpec",
    "PlatformSpec",
    "Problem",
    "RateLimitBackendSpec",
    "RateLimitSpec",
    "RouteSpec",
    "Service",
    "ServiceSpec",
    "Topology",
    "TopologyError",
    "TopologySpec",
    "WafSpec",
    "default_topology",
    "load_topology",
    "parse_rule_range",
    "parse_topology",
    "split_host_port",
]
