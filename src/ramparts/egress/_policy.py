"""The egress decision: may this service reach this URL, at these addresses?

Two gates, both fail closed:

1. the destination (host and port, after :mod:`._url` canonicalised it) must be
   in the service's egress list from the topology;
2. every address the host resolves to must be a global unicast address
   (:mod:`._addresses`), whatever the allow-list says: an allowed name that
   resolves to ``10.0.0.5`` or ``169.254.169.254`` is a DNS attack, not a
   partner.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ramparts.config import EgressRule, Topology
from ramparts.egress._addresses import IPAddress, forbidden_reason
from ramparts.egress._url import ParsedURL, URLError, parse_url

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EgressBlocked(Exception):
    """The guard refused a destination. ``destination`` is safe to log (no path or query)."""

    def __init__(self, reason: str, destination: str) -> None:
        super().__init__(f"egress to {destination} blocked: {reason}")
        self.reason = reason
        self.destination = destination


@dataclass(frozen=True, slots=True)
class Decision:
    url: ParsedURL
    rule: EgressRule


class EgressPolicy:
    """The egress allow-list of one service, plus the address rules every service shares."""

    def __init__(
        self,
        service: str,
        rules: Iterable[EgressRule],
        *,
        denied_networks: Iterable[Network] = (),
        dangerously_allowed_networks: Iterable[Network] = (),
    ) -> None:
        self.service = service
        self.rules: tuple[EgressRule, ...] = tuple(rules)
        self.denied_networks = tuple(denied_networks)
        self.dangerously_allowed_networks = tuple(dangerously_allowed_networks)
        if self.dangerously_allowed_networks:
            # Loud on purpose: this exists for local test partners, never production.
            log.warning(
                "egress policy for %s allows non-global networks %s: SSRF protection is "
                "weakened for them",
                service,
                ", ".join(str(n) for n in self.dangerously_allowed_networks),
            )

    @classmethod
    def from_topology(cls, topology: Topology, service: str) -> EgressPolicy:
        try:
            svc = topology.services[service]
        except KeyError:
            raise KeyError(f"no service {service!r} in {topology.source}") from None
        return cls(service, svc.egress)

    def check_url(self, url: str) -> Decision:
        """Parse ``url`` and match it against the allow-list; raise :class:`EgressBlocked`."""
        try:
            parsed = parse_url(url)
        except URLError as exc:
            raise EgressBlocked(f"malformed URL: {exc}", "<unparseable URL>") from None
        if parsed.address is not None:
            self.check_address(parsed, parsed.address)
        rule = self._match(parsed)
        if rule is None:
            raise EgressBlocked(
                f"{parsed.host}:{parsed.port} is not in {self.service}'s egress allow-list",
                parsed.origin,
            )
        return Decision(parsed, rule)

    def check_address(self, url: ParsedURL, addr: IPAddress) -> None:
        """Raise :class:`EgressBlocked` unless ``addr`` may be connected to."""
        if any(
            addr in net for net in self.dangerously_allowed_networks if net.version == addr.version
        ):
            return
        if any(addr in net for net in self.denied_networks if net.version == addr.version):
            raise EgressBlocked(f"{addr} is in a denied network", url.origin)
        reason = forbidden_reason(addr)
        if reason is not None:
            what = f"{addr} is" if url.address is not None else f"{url.host} resolves to {addr},"
            raise EgressBlocked(f"{what} {reason}", url.origin)

    def check_addresses(self, decision: Decision, addrs: Sequence[IPAddress]) -> IPAddress:
        """Check every resolved address; return the one to pin the connection to."""
        if not addrs:
            raise EgressBlocked(f"{decision.url.host} did not resolve", decision.url.origin)
        for addr in addrs:
            self.check_address(decision.url, addr)
            rule = decision.rule
            if rule.network is not None and addr not in rule.network:
                raise EgressBlocked(f"{addr} is outside the allowed {rule}", decision.url.origin)
        return addrs[0]

    def _match(self, url: ParsedURL) -> EgressRule | None:
        for rule in self.rules:
            if rule.port != url.port:
                continue
            if rule.network is None:
                if url.host_kind == "domain" and rule.host == url.host:
                    return rule
            elif url.address is not None and url.address in rule.network:
                return rule
        return None
