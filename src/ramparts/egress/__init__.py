"""The egress guard: an SSRF-safe HTTP client for calls leaving the system.

Only destinations in the service's topology egress list; URLs parsed once,
strictly; DNS resolved by the guard and every address checked (loopback,
private, link-local and cloud metadata, CGNAT, multicast, reserved,
unspecified, IPv6 ULA and link-local, and IPv4-mapped, -compatible, NAT64 and
6to4 forms of any of those are refused); the connection pinned to the checked
address; every redirect hop checked again; every refusal an
``egress.blocked`` event.

>>> from ramparts.config import default_topology
>>> policy = EgressPolicy.from_topology(default_topology(), "notifications")
>>> try:
...     policy.check_url("http://0251.0376.0251.0376/latest/meta-data/")
... except EgressBlocked as exc:
...     print(exc.reason)
169.254.169.254 is cloud metadata service

The kernel backs this up: ``ramparts up --isolate`` derives nftables rules and
``ramparts render k8s`` derives NetworkPolicy egress rules from the same
topology entries, so a process that bypasses this client (a library opening
its own socket) is still dropped at the network layer; see docs/egress.md.
"""

from ramparts.egress._addresses import embedded_ipv4, forbidden_reason
from ramparts.egress._client import EgressClient, EgressError, EgressResponse, system_resolver
from ramparts.egress._policy import Decision, EgressBlocked, EgressPolicy
from ramparts.egress._url import ParsedURL, URLError, parse_url

__all__ = [
    "Decision",
    "EgressBlocked",
    "EgressClient",
    "EgressError",
    "EgressPolicy",
    "EgressResponse",
    "ParsedURL",
    "URLError",
    "embedded_ipv4",
    "forbidden_reason",
    "parse_url",
    "system_resolver",
]
