"""Checks that need the whole topology, each located by its path in the file."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ramparts.config._schema import TopologySpec
from ramparts.config._topology import PLATFORM_COMPONENTS

Loc = tuple[str | int, ...]


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"(known services: {', '.join(sorted(known))}){hint}"


def check(spec: TopologySpec) -> Iterator[tuple[Loc, str]]:
    """Yield (location, message) for every cross-field problem in ``spec``."""
    names = list(spec.services)
    for name in names:
        if name in PLATFORM_COMPONENTS:
            yield (
                ("services", name),
                (f"{name!r} is the name of a platform component; choose another service name"),
            )

    for name, svc in spec.services.items():
        for i, callee in enumerate(svc.calls):
            if callee == name:
                yield ("services", name, "calls", i), "a service does not need to call itself"
            elif callee not in spec.services:
                yield (
                    ("services", name, "calls", i),
                    f"unknown service {callee!r} {_suggest(callee, names)}",
                )
        for i, rule in enumerate(svc.allow):
            if rule.caller not in spec.services:
                loc: Loc = ("services", name, "allow", i, "from")
                yield loc, f"unknown service {rule.caller!r} {_suggest(rule.caller, names)}"
            elif name not in spec.services[rule.caller].calls:
                yield (
                    ("services", name, "allow", i, "from"),
                    (
                        f"rule for caller {rule.caller!r}, but {rule.caller!r} does not list "
                        f"{name!r} in its calls; add it there or remove this rule"
                    ),
                )
        for i, egress in enumerate(svc.egress):
            try:
                egress.rule()
            except ValueError as exc:
                yield ("services", name, "egress", i), str(exc)

    owners: dict[str, str] = {}
    for name, svc in spec.services.items():
        if svc.database is None:
            continue
        if svc.database in owners:
            first = owners[svc.database]
            yield (
                ("services", name, "database"),
                (
                    f"database {svc.database!r} is already owned by service {first!r}: a database "
                    f"shared by two services lets a flaw in one reach the other's data (the "
                    f"shared-database anti-pattern). Give {name!r} its own database and have it "
                    f"call {first!r} for that data"
                ),
            )
        else:
            owners[svc.database] = name

    yield from _check_ports(spec)
    yield from _check_gateway(spec, names)


def _check_ports(spec: TopologySpec) -> Iterator[tuple[Loc, str]]:
    # Platform components first: their default ports are not in the file, so a
    # clash is reported at the service's line, where it can be fixed.
    listeners: list[tuple[Loc, int]] = [
        (("platform", c), getattr(spec.platform, c).port)
        for c in ("ca", "secrets", "audit", "witness", "console")
    ]
    listeners.append((("gateway", "listen"), spec.gateway.listen.port))
    if spec.gateway.admin_listen is not None:
        listeners.append((("gateway", "admin_listen"), spec.gateway.admin_listen.port))
    listeners += [(("services", n, "listen"), s.listen.port) for n, s in spec.services.items()]
    seen: dict[int, Loc] = {}
    for loc, port in listeners:
        if port in seen:
            where = ".".join(str(p) for p in seen[port])
            yield loc, f"port {port} is already used by {where}"
        else:
            seen[port] = loc


def _check_gateway(spec: TopologySpec, names: list[str]) -> Iterator[tuple[Loc, str]]:
    gw = spec.gateway
    if gw.ratelimit.backend == "redis" and not gw.ratelimit.redis_url:
        yield ("gateway", "ratelimit", "backend"), "backend 'redis' needs a redis_url"
    if (gw.tls_cert is None) != (gw.tls_key is None):
        yield ("gateway", "tls_cert"), "tls_cert and tls_key go together: give both or neither"
    prefixes: dict[str, int] = {}
    for i, route in enumerate(gw.routes):
        if route.service not in spec.services:
            msg = f"unknown service {route.service!r} {_suggest(route.service, names)}"
            yield ("gateway", "routes", i, "service"), msg
        if route.prefix in prefixes:
            yield (
                ("gateway", "routes", i, "prefix"),
                (f"prefix {route.prefix!r} is already routed by routes[{prefixes[route.prefix]}]"),
            )
        prefixes.setdefault(route.prefix, i)
        if route.auth == "jwt" and not gw.issuers:
            yield (
                ("gateway", "routes", i, "auth"),
                (
                    "route requires a JWT but the gateway has no issuers; add gateway.issuers "
                    "or set 'auth: none' for a public route"
                ),
            )
    seen: set[str] = set()
    for i, issuer in enumerate(gw.issuers):
        if issuer.issuer in seen:
            yield ("gateway", "issuers", i, "issuer"), f"issuer {issuer.issuer!r} is listed twice"
        seen.add(issuer.issuer)
