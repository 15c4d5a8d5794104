"""The route table: longest prefix match on a segment boundary.

``/v1/accounts`` matches ``/v1/accounts`` and ``/v1/accounts/7`` but never
``/v1/accountsX``: a prefix is a run of whole segments. Paths reach the table
already normalised (:mod:`ramparts.gateway._paths`), so a dot segment or an
encoded slash cannot walk a request from one prefix into another.

>>> from ramparts.config import default_topology
>>> table = RouteTable.from_spec(default_topology().gateway)
>>> table.match("/v1/accounts/7").service
'accounts'
>>> table.match("/v1/accountsX") is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ramparts.config import GatewaySpec, RateLimitSpec, RouteSpec, parse_rule_range

__all__ = ["Route", "RouteTable"]


@dataclass(frozen=True, slots=True)
class Route:
    """One compiled route. ``methods`` empty means every method the gateway serves."""

    prefix: str
    service: str
    methods: frozenset[str]
    auth: str
    scopes: tuple[str, ...]
    rate_limit: RateLimitSpec | None
    max_body_bytes: int
    timeout_seconds: float
    waf: str
    waf_exclude: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_spec(cls, spec: RouteSpec, default_rate_limit: RateLimitSpec | None) -> Route:
        return cls(
            prefix=_canonical_prefix(spec.prefix),
            service=spec.service,
            methods=frozenset(m.upper() for m in spec.methods),
            auth=spec.auth,
            scopes=tuple(spec.scopes),
            rate_limit=spec.rate_limit or default_rate_limit,
            max_body_bytes=spec.max_body_bytes,
            timeout_seconds=spec.timeout_seconds,
            waf=spec.waf,
            waf_exclude=tuple(parse_rule_range(r) for r in spec.waf_exclude),
        )

    def allows_method(self, method: str) -> bool:
        return (
            not self.methods
            or method in self.methods
            or (
                # RFC 9110 section 9.3.2: HEAD is GET without the body.
                method == "HEAD" and "GET" in self.methods
            )
        )


def _canonical_prefix(prefix: str) -> str:
    """``/v1/accounts/`` and ``/v1/accounts`` are the same prefix; ``/`` stays ``/``."""
    stripped = prefix.rstrip("/")
    return stripped or "/"


class RouteTable:
    """Routes by prefix. Lookup walks the path's own prefixes, longest first: O(segments)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_prefix: dict[str, Route] = {}
        for route in routes:
            if route.prefix in self._by_prefix:
                raise ValueError(
                    f"route prefix {route.prefix!r} is declared twice "
                    f"(services {self._by_prefix[route.prefix].service!r} and {route.service!r})"
                )
            self._by_prefix[route.prefix] = route

    @classmethod
    def from_spec(cls, spec: GatewaySpec) -> RouteTable:
        return cls(Route.from_spec(r, spec.default_rate_limit) for r in spec.routes)

    def __len__(self) -> int:
        return len(self._by_prefix)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_prefix.values())

    def match(self, path: str) -> Route | None:
        """The route with the longest prefix that is a whole-segment prefix of ``path``."""
        by_prefix = self._by_prefix
        candidate = path.rstrip("/") or "/"
        while True:
            route = by_prefix.get(candidate)
            if route is not None:
                return route
            if candidate == "/":
                return None
            cut = candidate.rfind("/")
            candidate = candidate[:cut] or "/"
