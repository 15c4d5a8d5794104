"""The gateway: listeners, the current configuration, hot reload, housekeeping.

A :class:`Gateway` serves one topology at a time as an immutable
:class:`GatewayState` (routes, pipeline, upstream pools). Reload builds a new
state beside the old one and swaps it in only if every part of it built:
requests already in flight finish on the state they started with, open
connections stay open, and an invalid topology is refused with the old one
kept and the reason logged.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ramparts.config import GatewaySpec, Topology, load_topology
from ramparts.events import EventEmitter, Outcome, SecurityEvent
from ramparts.gateway._admin import AdminConnection
from ramparts.gateway._forwarded import TrustedProxies
from ramparts.gateway._hooks import Limiter, TokenVerifier, WAFHook
from ramparts.gateway._observe import AccessLog, GatewayMetrics
from ramparts.gateway._request import Request
from ramparts.gateway._routes import RouteTable
from ramparts.gateway._server import ClientConnection
from ramparts.gateway._stages import Pipeline, build_pipeline
from ramparts.gateway._upstream import UpstreamPool, UpstreamTLS
from ramparts.identity import IdentitySource
from ramparts.jwt import JWTValidator, policy_from_config
from ramparts.ratelimit import MemoryBackend, RateLimit, RateLimiter
from ramparts.telemetry.context import new_correlation_id

__all__ = ["Gateway", "GatewayOptions", "GatewayState", "default_verifier"]

#: Seconds between metric snapshots of a worker (several workers only).
_PUBLISH_EVERY = 1.0

VerifierFactory = Callable[[Topology, EventEmitter], TokenVerifier | None]


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """Limits and timeouts of the data path (seconds and bytes).

    ``plain_upstreams`` and ``identity_over_plain`` are for local development
    and tests only: they let services be reached without mTLS and still get
    the identity headers.
    """

    #: Slow-client defence: the whole request head must arrive within this.
    header_timeout: float = 10.0
    #: An idle keep-alive connection is closed after this.
    keepalive_timeout: float = 60.0
    #: Longest pause between two pieces of a request body.
    body_timeout: float = 30.0
    #: Longest time a client may leave our send buffer full.
    send_timeout: float = 60.0
    connect_timeout: float = 5.0
    #: Request line plus headers. HAProxy's default buffer is 16 KiB; large
    #: JWTs and cookies need more than the 8 KiB some servers allow.
    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    max_target_bytes: int = 8192
    #: Cap on a body before its route is known (routes have their own limit).
    max_body_bytes: int = 1 << 20
    max_idle_per_upstream: int = 256
    #: Open connections per service; past it requests wait up to connect_timeout (then 503).
    max_connections_per_upstream: int = 1024
    sweep_interval: float = 0.25
    plain_upstreams: bool = False
    identity_over_plain: bool = False
    reuse_port: bool = False
    backlog: int = 2048

    def __post_init__(self) -> None:
        for name in (
            "header_timeout",
            "keepalive_timeout",
            "body_timeout",
            "send_timeout",
            "connect_timeout",
            "sweep_interval",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"GatewayOptions.{name} must be positive, got {getattr(self, name)!r}"
                )
        for name in (
            "max_head_bytes",
            "max_headers",
            "max_target_bytes",
            "max_idle_per_upstream",
            "max_connections_per_upstream",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"GatewayOptions.{name} must be at least 1, got {getattr(self, name)!r}"
                )


@dataclass(slots=True)
class GatewayState:
    """One generation of configuration; never mutated once serving."""

    generation: int
    topology: Topology
    routes: RouteTable
    pipeline: Pipeline
    pools: dict[str, UpstreamPool]
    trusted: TrustedProxies
    verifier: TokenVerifier | None
    limits: dict[str, Any] = field(default_factory=dict)


def default_verifier(topology: Topology, emitter: EventEmitter) -> TokenVerifier | None:
    """``ramparts.jwt.JWTValidator`` for the topology's issuers (None without issuers).

    A relative JWKS path is taken beside the topology file, as ``ramparts jwt verify``
    does, so both judge a token the same way whatever the working directory.
    """
    spec = topology.gateway
    if not spec.issuers:
        return None
    source = Path(topology.source)
    base_dir = source.parent if source.is_file() else None
    policies = [policy_from_config(i, base_dir=base_dir) for i in spec.issuers]
    return JWTValidator(policies, emitter=emitter)


class _DenyCounter:
    """An event sink that counts denies for the metrics; one place for every deny."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def write(self, event: SecurityEvent) -> None:
        if event.outcome is Outcome.DENY:
            self.metrics.deny(event.type)


class Gateway:
    """The API gateway's data path.

    >>> from ramparts.config import default_topology
    >>> gw = Gateway(default_topology(), options=GatewayOptions(plain_upstreams=True))
    >>> sorted(r.prefix for r in gw.build_state(default_topology()).routes)[:2]
    ['/v1/accounts', '/v1/customers']

    Args:
        topology: a :class:`Topology`, or the path of ``ramparts.yaml`` (then
            :meth:`reload` re-reads it).
        emitter: where security events go (the gateway adds a counting sink).
        identity: the gateway's own SVID source (``ramparts.identity``); every
            service is then called over mTLS and must present the SPIFFE ID the
            topology gives it. Contexts follow SVID rotation.
        upstream_tls: per service, an explicit mTLS context and expected SPIFFE
            ID (overrides ``identity`` for that service). A service with
            neither is refused unless ``options.plain_upstreams``.
        server_ssl: the client-facing TLS context; by default built from the
            topology's ``tls_cert``/``tls_key`` unless ``plain_http: true``.
        verifier_factory: builds the JWT verifier from the topology
            (default :func:`default_verifier`); rebuilt on every reload.
        limiter: the rate limiter (default: in-memory); kept across reloads.
        waf: the WAF engine's hook, or None.
        bind / admin_bind: override the topology's listen addresses (tests use port 0).
    """

    def __init__(
        self,
        topology: Topology | str | os.PathLike[str],
        *,
        emitter: EventEmitter | None = None,
        options: GatewayOptions | None = None,
        identity: IdentitySource | None = None,
        upstream_tls: Mapping[str, UpstreamTLS] | None = None,
        server_ssl: ssl.SSLContext | None = None,
        verifier_factory: VerifierFactory | None = None,
        limiter: Limiter | None = None,
        waf: WAFHook | None = None,
        access_log: AccessLog | None = None,
        metrics: GatewayMetrics | None = None,
        bind: tuple[str, int] | None = None,
        admin_bind: tuple[str, int] | None = None,
    ) -> None:
        if isinstance(topology, Topology):
            self.path: Path | None = None
            self._initial = topology
        else:
            self.path = Path(topology)
            self._initial = load_topology(self.path)
        self.options = options or GatewayOptions()
        self.metrics = metrics or GatewayMetrics()
        self.emitter = emitter or EventEmitter(service="gateway")
        self.emitter.add_sink(_DenyCounter(self.metrics))
        self.access_log = access_log or AccessLog()
        self.upstream_tls = dict(upstream_tls or {})
        self.identity = identity
        #: Where the SVID files live, if they are re-read on SIGHUP (set by the CLI).
        self.identity_dir: str | None = None
        self._identity_ctx: ssl.SSLContext | None = None
        self._tls_cache: dict[tuple[str, int], UpstreamTLS] = {}
        self._server_ssl = server_ssl
        self.verifier_factory = verifier_factory or default_verifier
        self.limiter = limiter if limiter is not None else self._default_limiter()
        self.waf = waf
        self._bind = bind
        self._admin_bind = admin_bind
        self._admin_enabled = True
        self._metrics_dir: str | None = None
        self._worker_name = "worker-0"
        self._sweeps = 0
        self.connections: set[ClientConnection] = set()
        self.upstream_connections: set[Any] = set()
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.state: GatewayState = None  # type: ignore[assignment]
        self._generation = 0
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self.metrics.connections = lambda: len(self.connections)
        if identity is not None:
            identity.subscribe(self._on_rotation)

    def _default_limiter(self) -> Limiter:
        return RateLimiter(MemoryBackend(), self.emitter)

    # -- configuration ------------------------------------------------------

    def build_state(self, topology: Topology) -> GatewayState:
        """Compile a topology into a state. Raises ValueError naming what is wrong."""
        spec = topology.gateway
        routes = RouteTable.from_spec(spec)
        trusted = TrustedProxies(spec.trusted_proxies)
        old_pools = self.state.pools if self.state is not None else {}
        pools: dict[str, UpstreamPool] = {}
        for service in sorted({r.service for r in routes}):
            if service not in topology.services:
                raise ValueError(f"route to unknown service {service!r}")
            listen = topology.services[service].listen
            tls = self.upstream_tls.get(service) or self._identity_tls(topology.spiffe_id(service))
            if tls is None and not self.options.plain_upstreams:
                raise ValueError(
                    f"no mTLS context for service {service!r}: pass upstream_tls, or set "
                    "plain_upstreams for local development"
                )
            if tls is not None and tls.spiffe_id != topology.spiffe_id(service):
                raise ValueError(
                    f"upstream_tls for {service!r} expects {tls.spiffe_id}, but the topology "
                    f"names it {topology.spiffe_id(service)}"
                )
            old = old_pools.get(service)
            if old is not None and old.address == (listen.host, listen.port) and old.tls is tls:
                pools[service] = old
            else:
                pools[service] = UpstreamPool(
                    service,
                    listen.host,
                    listen.port,
                    tls=tls,
                    max_idle=self.options.max_idle_per_upstream,
                    max_connections=self.options.max_connections_per_upstream,
                    connect_timeout=self.options.connect_timeout,
                    on_identity_mismatch=self._identity_mismatch,
                )
        limits = self._compile_limits(routes)
        verifier = self.verifier_factory(topology, self.emitter)
        pipeline = build_pipeline(
            trusted=trusted,
            table=routes,
            emitter=self.emitter,
            waf=self.waf,
            verifier=verifier,
            limiter=self.limiter,
            limits=limits,
        )
        return GatewayState(
            generation=self._generation + 1,
            topology=topology,
            routes=routes,
            pipeline=pipeline,
            pools=pools,
            trusted=trusted,
            verifier=verifier,
            limits=limits,
        )

    def _identity_tls(self, spiffe_id: str) -> UpstreamTLS | None:
        """The mTLS settings from the identity source; the same object while the SVID is unchanged.

        Reusing the object keeps pools (and their idle connections) across
        reloads; a rotated SVID gives a new context and so new pools.
        """
        if self.identity is None:
            return None
        ctx = self.identity.client_context()
        key = (spiffe_id, id(ctx))
        tls = self._tls_cache.get(key)
        if tls is None:
            if ctx is not self._identity_ctx:
                self._tls_cache.clear()
                self._identity_ctx = ctx
            tls = self._tls_cache[key] = UpstreamTLS(ctx, spiffe_id)
        return tls

    def _on_rotation(self, _source: object) -> None:
        """A renewed SVID: rebuild the pools so new connections present it."""
        if self.loop is not None and self.state is not None:
            self.loop.call_soon_threadsafe(self.reload, self.state.topology)

    @staticmethod
    def _compile_limits(routes: RouteTable) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        for route in routes:
            spec = route.rate_limit
            if spec is not None:
                limits[route.prefix] = RateLimit(
                    rate=spec.count, per=spec.period_seconds, burst=spec.burst, key=spec.key
                )
        return limits

    def _install(self, state: GatewayState) -> None:
        old = self.state
        self.state = state
        self._generation = state.generation
        self.metrics.generation = state.generation
        if old is not None:
            kept = {id(p) for p in state.pools.values()}
            for pool in old.pools.values():
                if id(pool) not in kept:
                    pool.close()

    def reload(self, topology: Topology | None = None) -> bool:
        """Apply a new topology (or re-read the file); False keeps the old one if it is invalid."""
        ok, _ = self.reload_with_reason(topology)
        return ok

    def reload_with_reason(self, topology: Topology | None = None) -> tuple[bool, str]:
        try:
            if topology is None:
                if self.path is None:
                    raise ValueError("this gateway was not started from a file; pass a topology")
                topology = load_topology(self.path)
            state = self.build_state(topology)
        except Exception as exc:
            reason = str(exc)
            self.metrics.reload("refused")
            self.access_log.log(
                "error", "gateway.reload_refused", reason=reason, generation=self._generation
            )
            return False, f"reload refused, keeping generation {self._generation}: {reason}"
        if self.state is not None and topology.gateway.listen != self.state.topology.gateway.listen:
            self.access_log.log(
                "warning",
                "gateway.listen_change_needs_restart",
                listen=str(topology.gateway.listen),
            )
        self._install(state)
        self.metrics.reload("applied")
        self.access_log.log(
            "info", "gateway.reloaded", generation=state.generation, source=topology.source
        )
        return True, f"generation {state.generation} applied"

    # -- serving ------------------------------------------------------------

    def _client_ssl(self, spec: GatewaySpec) -> ssl.SSLContext | None:
        if self._server_ssl is not None:
            return self._server_ssl
        if spec.plain_http:
            return None
        if not spec.tls_cert or not spec.tls_key:
            raise ValueError("gateway needs tls_cert and tls_key unless plain_http: true")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(spec.tls_cert, spec.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def start(self) -> None:
        """Build the first state and open the listeners. Raises if the topology cannot be served."""
        self.loop = asyncio.get_running_loop()
        self._install(self.build_state(self._initial))
        spec = self._initial.gateway
        ctx = self._client_ssl(spec)
        scheme = "https" if ctx is not None else "http"
        host, port = self._bind or (spec.listen.host, spec.listen.port)
        server = await self.loop.create_server(
            lambda: ClientConnection(self, scheme),
            host,
            port,
            ssl=ctx,
            reuse_port=self.options.reuse_port or None,
            backlog=self.options.backlog,
        )
        self._servers.append(server)
        admin = self._admin_bind or (
            (spec.admin_listen.host, spec.admin_listen.port) if spec.admin_listen else None
        )
        if admin is not None and self._admin_enabled:
            admin_server = await self.loop.create_server(
                lambda: AdminConnection(self.metrics.registry, self.reload_with_reason),
                admin[0],
                admin[1],
                reuse_port=self.options.reuse_port or None,
            )
            self._servers.append(admin_server)
        self._sweeper = self.loop.call_later(self.options.sweep_interval, self._sweep)
        self.access_log.log(
            "info",
            "gateway.started",
            listen=f"{host}:{self.port}",
            scheme=scheme,
            generation=self._generation,
        )

    def share_metrics(self, directory: str, index: int) -> None:
        """Worker ``index`` of several: publish to ``directory``; worker 0 serves the sum."""
        self._metrics_dir = directory
        self._worker_name = f"worker-{index}"
        if index == 0:
            self.metrics.read_peers_from(directory, self._worker_name)

    def disable_admin(self) -> None:
        """Do not open the admin listener (extra worker processes share worker 0's)."""
        self._admin_enabled = False

    @property
    def port(self) -> int:
        return self._servers[0].sockets[0].getsockname()[1]

    @property
    def admin_port(self) -> int | None:
        return self._servers[1].sockets[0].getsockname()[1] if len(self._servers) > 1 else None

    async def close(self) -> None:
        """Stop listening, close connections and pools, flush logs."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self.state is not None:
            for pool in self.state.pools.values():
                pool.close()
        for up in list(self.upstream_connections):
            up.close()
        for server in self._servers:
            await server.wait_closed()
        if self._metrics_dir is not None:
            self._publish_metrics()
        self.access_log.flush()

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in [c for c in self.connections if 0 < c.deadline <= now]:
            conn.on_deadline()
        for up in [u for u in self.upstream_connections if 0 < u.deadline <= now]:
            up.on_deadline(now)
        self.access_log.flush()
        self._sweeps += 1
        if (
            self._metrics_dir is not None
            and self._sweeps * self.options.sweep_interval >= _PUBLISH_EVERY
        ):
            self._sweeps = 0
            self._publish_metrics()
        self._sweeper = self.loop.call_later(self.options.sweep_interval, self._sweep)

    def _publish_metrics(self) -> None:
        try:
            self.metrics.publish(self._metrics_dir, self._worker_name)  # type: ignore[arg-type]
        except OSError as exc:
            self.access_log.log("error", "gateway.metrics_publish_failed", reason=str(exc))

    # -- called by connections ----------------------------------------------

    def observe(self, req: Request) -> None:
        latency = self.loop.time() - req.start
        self.metrics.observe(req, latency)
        self.access_log.record(req, latency)

    def new_correlation_id(self) -> str:
        return new_correlation_id()

    def _deny(self, req: Request, type_: str, reason: str, detail: dict[str, Any]) -> None:
        self.emitter.deny(
            type_,
            reason=reason,
            peer=req.client_ip,
            detail={"method": req.method or None, **detail},
            correlation_id=req.correlation_id or None,
            trace_id=req.trace_id,
        )

    def deny_malformed(self, req: Request, reason: str) -> None:
        self._deny(req, "request.malformed", reason, {})

    def deny_too_large(self, req: Request, limit: int) -> None:
        self._deny(
            req, "request.too_large", f"request body exceeds {limit} bytes", {"limit": limit}
        )

    def deny_timeout(self, req: Request, reason: str) -> None:
        self._deny(req, "request.timeout", reason, {})

    def upstream_error(self, req: Request, status: int, reason: str) -> None:
        service = req.route.service if req.route is not None else "none"
        self.metrics.upstream_error(service, status)
        self.access_log.log(
            "warning",
            "gateway.upstream_error",
            service=service,
            status=status,
            reason=reason,
            correlation_id=req.correlation_id,
        )

    def _identity_mismatch(self, service: str, problem: str) -> None:
        self.emitter.deny(
            "upstream.identity_mismatch",
            reason=f"{service} did not present its SPIFFE ID",
            detail={"service": service, "problem": problem[:300]},
        )

    def log_error(self, message: str, req: Request, err: BaseException) -> None:
        self.access_log.log(
            "error",
            message,
            correlation_id=req.correlation_id,
            error=type(err).__name__,
            trace="".join(traceback.format_exception(err))[-2000:],
        )
