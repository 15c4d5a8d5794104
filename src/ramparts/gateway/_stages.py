"""The request pipeline's stages, in the order they run.

correlation -> header hygiene -> route -> WAF -> JWT -> rate limit -> (proxy)

The first three never wait: each has a plain ``check(req)`` returning
``None`` (continue) or a :class:`Reply` (answer now). The others are
``async`` callables of the same shape; they finish without a task switch when
they do not really wait: the pipeline runner drives the coroutine by hand and
only schedules a task when a stage suspends (a JWKS fetch, a Redis round
trip). Every deny decided here emits exactly one security event; the
JWT validator and the rate limiter emit their own.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from ramparts.events import EventEmitter
from ramparts.gateway._forwarded import TrustedProxies
from ramparts.gateway._hooks import Limiter, Stage, TokenVerifier, WAFHook
from ramparts.gateway._http import HOP_BY_HOP, INTERNAL_PREFIX, Reply
from ramparts.gateway._paths import BadTarget, normalise_target
from ramparts.gateway._request import Request
from ramparts.gateway._routes import Route, RouteTable
from ramparts.jwt import JWTValidator
from ramparts.masking import Masker
from ramparts.ratelimit import MemoryBackend, RateLimiter, key_for
from ramparts.telemetry.context import new_correlation_id
from ramparts.telemetry.traceparent import InvalidTraceparentError, parse_traceparent

__all__ = [
    "CorrelationStage",
    "HygieneStage",
    "JWTStage",
    "RateLimitStage",
    "RouteStage",
    "WAFStage",
]

REQUEST_ID = b"x-request-id"
TRACEPARENT = b"traceparent"
TRACESTATE = b"tracestate"
SUBJECT = b"x-ramparts-subject"
SCOPES = b"x-ramparts-scopes"
ISSUER = b"x-ramparts-issuer"

#: An inbound request ID is believed only from a trusted proxy and only if it
#: looks like one: 8-128 characters that cannot break a log line or a header.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# W3C Trace Context 3.2.2.3/3.2.2.4: all-zero ids are invalid and never sent.
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_log = logging.getLogger("ramparts.gateway")

#: Dropped from every client request and set (or not) by the gateway alone.
#: The forwarding family is rebuilt from the verified peer address.
_GATEWAY_OWNED = frozenset(
    {
        REQUEST_ID,
        TRACEPARENT,
        TRACESTATE,
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
        b"expect",
        # The verified identity goes downstream in X-Ramparts-*; the bearer
        # token itself stays at the edge, so services never hold user credentials.
        b"authorization",
    }
)
_STRIP = HOP_BY_HOP | _GATEWAY_OWNED
_WWW_AUTH_INVALID = (b"www-authenticate", b'Bearer realm="ramparts", error="invalid_token"')
_WWW_AUTH_SCOPE = (b"www-authenticate", b'Bearer realm="ramparts", error="insufficient_scope"')
_WWW_AUTH_MISSING = (b"www-authenticate", b'Bearer realm="ramparts"')


class CorrelationStage:
    """Gives the request its correlation ID and W3C trace context.

    An inbound ``X-Request-ID`` and ``traceparent`` are continued only when the
    TCP peer is a trusted proxy and the values are well-formed; otherwise the
    gateway starts fresh ones. Either way the gateway is a new span: the
    ``traceparent`` it sends downstream carries a new parent-id.
    """

    name = "correlation"

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted

    def check(self, req: Request) -> Reply | None:
        trusted = bool(self.trusted) and self.trusted.is_trusted(req.peer)
        # One getrandom per request: 128 bits of correlation / trace id and a
        # 64-bit span id (the same entropy new_correlation_id and
        # new_traceparent would draw separately).
        fresh = os.urandom(24).hex()
        rid = req.request_id_in
        if trusted and rid is not None and _REQUEST_ID.fullmatch(rid):
            req.correlation_id = rid.decode("ascii")
        else:
            req.correlation_id = fresh[:32]
        trace_id = None
        flags = "01"
        if trusted and req.traceparent_in is not None:
            try:
                parent = parse_traceparent(req.traceparent_in.decode("latin-1"))
            except InvalidTraceparentError:
                parent = None
            if parent is not None:
                trace_id = parent.trace_id
                flags = f"{parent.flags:02x}"
        if trace_id is None:
            req.tracestate_in = None
            trace_id = fresh[:32] if fresh[:32] != _ZERO_TRACE else new_correlation_id()
        span_id = fresh[32:] if fresh[32:] != _ZERO_SPAN else "1" * 16
        req.trace_id = trace_id
        req.traceparent_out = f"00-{trace_id}-{span_id}-{flags}".encode("ascii")
        return None


class HygieneStage:
    """Removes hop-by-hop, client-supplied internal and forwarding headers; sets X-Forwarded-*.

    Removed: the RFC 9110 hop-by-hop set, every header named in ``Connection``,
    ``Proxy-*``, the ``X-Ramparts-*`` namespace, the request ID and trace
    headers (re-set by the gateway), ``Forwarded``/``X-Forwarded-*``/
    ``X-Real-IP`` (rebuilt from the peer), ``Expect`` (the gateway answers
    ``100-continue`` itself) and ``Authorization`` (consumed at the edge).
    """

    name = "hygiene"

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted

    def check(self, req: Request) -> Reply | None:
        strip = _STRIP | req.connection_tokens if req.connection_tokens else _STRIP
        req.raw_headers = req.headers
        req.headers = [
            (n, v)
            for n, v in req.headers
            if n not in strip and not n.startswith(INTERNAL_PREFIX) and not n.startswith(b"proxy-")
        ]
        client, chain = self.trusted.client_chain(req.peer, req.xff_in)
        req.client_ip = client
        proto = req.scheme
        if req.xfp_in in (b"http", b"https") and self.trusted.is_trusted(req.peer):
            proto = req.xfp_in.decode("ascii")  # type: ignore[union-attr]
        up = req.upstream_headers
        up.append((b"x-forwarded-for", chain.encode("ascii")))
        up.append((b"x-forwarded-proto", proto.encode("ascii")))
        up.append((REQUEST_ID, req.correlation_id.encode("ascii")))
        up.append((TRACEPARENT, req.traceparent_out))
        if req.tracestate_in is not None:
            up.append((TRACESTATE, req.tracestate_in))
        return None


class RouteStage:
    """Normalises the path, picks the route, enforces its methods and body limit.

    Unknown route: 404 and ``route.unknown`` without contacting any service.
    """

    name = "route"

    def __init__(self, table: RouteTable, emitter: EventEmitter) -> None:
        self.table = table
        self.emitter = emitter
        self._targets: dict[bytes, tuple[str, str | None]] = {}
        self._masker = Masker()

    def _normalise(self, target: bytes) -> tuple[str, str | None]:
        # Hot targets repeat; the cache is bounded and keyed by short targets only.
        hit = self._targets.get(target)
        if hit is None:
            hit = normalise_target(target)
            if len(target) <= 256:
                if len(self._targets) >= 4096:
                    self._targets.clear()
                self._targets[target] = hit
        return hit

    def check(self, req: Request) -> Reply | None:
        try:
            req.path, req.query = self._normalise(req.target)
        except BadTarget as exc:
            _deny(self.emitter, req, "request.malformed", str(exc), {"check": "target"})
            return Reply(400, "bad_request", str(exc))
        route = self.table.match(req.path)
        if route is None:
            # The path is client data and may hold PII: masked before it is recorded.
            path = self._masker.mask_text(req.path[:256])
            _deny(self.emitter, req, "route.unknown", "no route for path", {"path": path})
            return Reply(404, "not_found", "no route for this path")
        req.route = route
        if not route.allows_method(req.method):
            _deny(
                self.emitter,
                req,
                "route.method_not_allowed",
                f"{req.method} is not allowed on {route.prefix}",
                {"route": route.prefix, "method": req.method},
            )
            allow = ", ".join(
                sorted(route.methods | ({"HEAD"} if "GET" in route.methods else set()))
            )
            return Reply(
                405,
                "method_not_allowed",
                "method not allowed on this route",
                headers=[(b"allow", allow.encode("ascii"))],
            )
        if req.content_length is not None and req.content_length > route.max_body_bytes:
            _deny(
                self.emitter,
                req,
                "request.too_large",
                f"body of {req.content_length} bytes exceeds {route.max_body_bytes}",
                {"route": route.prefix, "limit": route.max_body_bytes},
            )
            return Reply(413, "payload_too_large", "request body too large", close=True)
        return None


class WAFStage:
    """Hands the request to the WAF engine unless the route turned it off.

    It needs the whole body (bounded by the route's ``max_body_bytes``): an
    attack in a JSON or form body is as real as one in the URL.
    """

    name = "waf"
    needs_body = True

    def __init__(self, hook: WAFHook) -> None:
        self.hook = hook
        # Only an engine that says so is driven without a task (see _pipeline).
        self.eager_safe = bool(getattr(hook, "eager_safe", False))

    def applies(self, route: Route) -> bool:
        return route.waf != "off"

    async def __call__(self, req: Request) -> Reply | None:
        route = req.route
        if route is None or route.waf == "off":
            return None
        return await self.hook.inspect(req, route.waf)


class JWTStage:
    """Requires a valid bearer token on ``auth: jwt`` routes and the route's scopes.

    On success the verified subject, scopes and issuer go downstream in
    ``X-Ramparts-Subject``/``-Scopes``/``-Issuer``, headers no client can set
    (the hygiene stage dropped any client copy).
    """

    name = "jwt"

    def __init__(self, verifier: TokenVerifier | None, emitter: EventEmitter) -> None:
        self.verifier = verifier
        self.emitter = emitter
        # JWTValidator fetches JWKS in a task of its own (see _pipeline).
        self.eager_safe = verifier is None or type(verifier) is JWTValidator

    def applies(self, route: Route) -> bool:
        return route.auth != "none"

    async def __call__(self, req: Request) -> Reply | None:
        route = req.route
        if route is None or route.auth == "none":
            return None
        token = _bearer(req.authorization)
        if token is None:
            reason = (
                "missing bearer token"
                if not req.authorization
                else "malformed Authorization header"
            )
            _deny(self.emitter, req, "jwt.rejected", reason, {"reason_code": "missing_token"})
            return Reply(401, "unauthorized", reason, headers=[_WWW_AUTH_MISSING])
        if self.verifier is None:
            # Fail closed: a route that wants tokens with no issuer configured.
            _deny(
                self.emitter,
                req,
                "jwt.rejected",
                "no JWT issuer configured",
                {"reason_code": "no_issuer"},
            )
            return Reply(
                401, "unauthorized", "token cannot be verified", headers=[_WWW_AUTH_INVALID]
            )
        try:
            verified = await self.verifier.verify(token, peer=req.client_ip)
        except Exception as exc:  # every verifier error is a rejection: fail closed
            code = getattr(exc, "reason", None)
            if code is None:
                # Not a verdict on the token but a fault: record it loudly, still deny.
                _log.error("JWT verifier failed", exc_info=exc)
                _deny(
                    self.emitter, req, "jwt.rejected", "verifier error", {"reason_code": "internal"}
                )
            return Reply(401, "unauthorized", _public_reason(code), headers=[_WWW_AUTH_INVALID])
        if route.scopes:
            try:
                self.verifier.require_scopes(verified, route.scopes, peer=req.client_ip)
            except Exception:
                return Reply(
                    403, "forbidden", "token lacks a required scope", headers=[_WWW_AUTH_SCOPE]
                )
        req.subject = verified.subject
        req.issuer = verified.issuer
        req.scopes = verified.scopes
        req.extra["identity"] = True
        return None


def _public_reason(code: str | None) -> str:
    # The client learns the category, not which check failed in detail.
    if code in ("expired", "not_yet_valid", "issued_in_future"):
        return "token is not valid at this time"
    return "token rejected"


def _bearer(values: list[bytes]) -> str | None:
    if len(values) != 1:
        return None
    scheme, _, token = values[0].partition(b" ")
    token = token.strip(b" ")
    if scheme.lower() != b"bearer" or not token or b" " in token:
        return None
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return None


class RateLimitStage:
    """Applies the route's limit (or the gateway default), keyed as the limit says.

    ``subject`` keys fall back to the client address on routes without a
    verified subject; ``api_key`` keys read ``X-API-Key`` and fall back the same
    way. The limiter emits ``ratelimit.exceeded``.
    """

    name = "ratelimit"

    def __init__(self, limiter: Limiter, limits: dict[str, Any]) -> None:
        self.limiter = limiter
        self.limits = limits  # route prefix -> ramparts.ratelimit.RateLimit
        # The in-memory backend never awaits; Redis needs a real task (see _pipeline).
        self.eager_safe = type(limiter) is RateLimiter and type(limiter.backend) is MemoryBackend

    def applies(self, route: Route) -> bool:
        return route.prefix in self.limits

    async def __call__(self, req: Request) -> Reply | None:
        route = req.route
        if route is None:
            return None
        limit = self.limits.get(route.prefix)
        if limit is None:
            return None
        kind = limit.key
        value: str | None
        if kind == "subject":
            value = req.subject
        elif kind == "route":
            value = route.prefix
        elif kind == "api_key":
            value = req.extra.get("api_key")
        else:
            value = None
        if not value:
            kind, value = "ip", req.client_ip
        key = key_for(kind, value, route.prefix)
        decision = await self.limiter.check(key, limit, peer=req.client_ip)
        headers = [(n.lower().encode("ascii"), v.encode("ascii")) for n, v in decision.headers()]
        if not decision.allowed:
            message = (
                "rate limit exceeded" if decision.status == 429 else "rate limiter unavailable"
            )
            return Reply(decision.status, "rate_limited", message, headers=headers)
        req.response_headers.extend(headers)
        return None


def _deny(
    emitter: EventEmitter, req: Request, type_: str, reason: str, detail: dict[str, Any]
) -> None:
    detail = {"method": req.method, **detail}
    emitter.deny(
        type_,
        reason=reason,
        peer=req.client_ip,
        detail=detail,
        correlation_id=req.correlation_id or None,
        trace_id=req.trace_id,
    )


class Pipeline:
    """The stages in their fixed order.

    The first three never wait and run as plain calls (``check``); the rest
    are ``async`` and are chosen per route in advance (a route with
    ``auth: none``, no limit and the WAF off runs none of them, and no
    coroutine is created for it).
    """

    def __init__(self, prelude: Sequence[Any], stages: Sequence[Stage], table: RouteTable) -> None:
        self.prelude = tuple(prelude)
        self.stages = tuple(stages)
        self.per_route: dict[str, tuple[Stage, ...]] = {
            route.prefix: tuple(s for s in self.stages if s.applies(route))  # type: ignore[attr-defined]
            for route in table
        }
        #: Per route: must the request body be complete before the stages run?
        self.needs_body: dict[str, bool] = {
            prefix: any(getattr(s, "needs_body", False) for s in stages)
            for prefix, stages in self.per_route.items()
        }
        #: Per route: may its stages be driven without a task (see ``_pipeline``)?
        self.eager: dict[str, bool] = {
            prefix: all(getattr(s, "eager_safe", False) for s in stages)
            for prefix, stages in self.per_route.items()
        }

    @property
    def names(self) -> list[str]:
        return [s.name for s in (*self.prelude, *self.stages)]


def build_pipeline(
    *,
    trusted: TrustedProxies,
    table: RouteTable,
    emitter: EventEmitter,
    waf: WAFHook | None,
    verifier: TokenVerifier | None,
    limiter: Limiter | None,
    limits: dict[str, Any],
) -> Pipeline:
    """correlation -> hygiene -> route -> WAF -> JWT -> rate limit; absent hooks are left out."""
    prelude = [CorrelationStage(trusted), HygieneStage(trusted), RouteStage(table, emitter)]
    stages: list[Stage] = []
    if waf is not None:
        stages.append(WAFStage(waf))
    stages.append(JWTStage(verifier, emitter))
    if limiter is not None and limits:
        stages.append(RateLimitStage(limiter, limits))
    return Pipeline(prelude, stages, table)
