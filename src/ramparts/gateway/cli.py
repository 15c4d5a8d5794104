"""``ramparts gateway``: run the API gateway.

    ramparts gateway run --topology ramparts.yaml [--workers 2] [--watch]

Upstream calls use mTLS; ``--plain-upstreams`` (local development only)
reaches services over plain TCP instead.
"""

from __future__ import annotations

import functools
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ramparts.config import TopologyError, load_topology
from ramparts.events import EventEmitter, JSONLinesSink
from ramparts.gateway._gateway import Gateway, GatewayOptions
from ramparts.gateway._observe import AccessLog
from ramparts.gateway._serve import serve, serve_workers
from ramparts.identity import IdentityError, IdentitySource
from ramparts.ratelimit import RateLimiter, RedisBackend
from ramparts.waf import WafEngine
from ramparts.waf.hook import WafGatewayHook

app = typer.Typer(
    help="Run the API gateway (the data path).", no_args_is_help=True, add_completion=False
)


@app.callback()
def main() -> None:
    """Run the API gateway (the data path)."""


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def run(  # noqa: PLR0917 - typer maps each option to a parameter
    topology: Annotated[Path, typer.Option("--topology", "-t", help="The ramparts.yaml to serve.")],
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    watch: Annotated[bool, typer.Option(help="Reload when the topology file changes.")] = False,
    plain_upstreams: Annotated[
        bool, typer.Option(help="Reach services over plain TCP (local development only).")
    ] = False,
    access_log: Annotated[
        str, typer.Option(help="Where access log lines go: '-' (stdout), 'off', or a file path.")
    ] = "-",
    events: Annotated[
        Path | None, typer.Option(help="Append security events (JSON lines) here.")
    ] = None,
    identity_dir: Annotated[
        Path | None,
        typer.Option(
            help="The gateway's SVID directory (svid.pem, svid.key, bundle.json); "
            "default <state_dir>/identity/gateway when it exists."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Validate and build the configuration, then exit.")
    ] = False,
) -> None:
    """Serve the gateway described by the topology file until SIGTERM; SIGHUP reloads it."""
    try:
        topo = load_topology(topology)
    except TopologyError as exc:
        _fail(str(exc))
    if identity_dir is None:
        candidate = Path(topo.platform.state_dir) / "identity" / "gateway"
        identity_dir = candidate if candidate.is_dir() else None
    build = functools.partial(
        _build,
        str(topology),
        identity_dir=str(identity_dir) if identity_dir else None,
        plain_upstreams=plain_upstreams,
        access_log=access_log,
        events=str(events) if events else None,
        reuse_port=workers > 1,
    )
    try:
        gateway = build(0)
        gateway.build_state(topo)
    except (ValueError, OSError, IdentityError) as exc:
        _fail(str(exc))
    if check:
        typer.echo(f"ok: {len(topo.gateway.routes)} routes, listen {topo.gateway.listen}")
        return
    if workers == 1:
        try:
            serve(lambda: gateway, watch=watch)
        except OSError as exc:  # the listen address is taken or not ours
            _fail(f"cannot serve on {topo.gateway.listen}: {exc.strerror or exc}")
        return
    metrics_dir = tempfile.mkdtemp(prefix="ramparts-gateway-metrics-")
    try:
        shared = functools.partial(build, metrics_dir=metrics_dir)
        code = serve_workers(functools.partial(_worker, shared, watch), workers)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    raise typer.Exit(code)


def _worker(build: functools.partial, watch: bool, index: int) -> None:  # type: ignore[type-arg]
    # Stopped while still starting (before the event loop takes over the
    # signal): leave quietly, as a started worker would.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(lambda: build(index), watch=watch)


def _limiter(path: str, emitter: EventEmitter) -> RateLimiter | None:
    """Shared limits in Redis when the topology says so (None: the gateway's in-memory one)."""
    spec = load_topology(path).gateway.ratelimit
    if spec.backend == "memory":
        return None
    assert spec.redis_url is not None  # checked when the topology was loaded
    backend = RedisBackend.from_url(spec.redis_url, prefix=spec.prefix)
    return RateLimiter(backend, emitter, on_backend_error=spec.on_backend_error)


def _waf(path: str, emitter: EventEmitter) -> WafGatewayHook | None:
    """The WAF the topology asks for (on by default, with the built-in rules)."""
    spec = load_topology(path).gateway.waf
    if not spec.enabled:
        return None
    here = Path(path).parent
    crs = here / spec.crs_path if spec.crs_path else None
    engine = WafEngine.load(
        [here / r for r in spec.rules],
        paranoia_level=spec.paranoia_level,
        crs_path=crs,
        inbound_threshold=spec.inbound_threshold,
        outbound_threshold=spec.outbound_threshold,
        emitter=emitter,
    )
    return WafGatewayHook(engine)


def _build(
    path: str,
    index: int,
    *,
    identity_dir: str | None,
    metrics_dir: str | None = None,
    plain_upstreams: bool,
    access_log: str,
    events: str | None,
    reuse_port: bool,
):  # type: ignore[no-untyped-def]
    if access_log == "off":
        log = AccessLog(enabled=False)
    elif access_log == "-":
        log = AccessLog(sys.stdout)
    else:
        log = AccessLog(open(access_log, "a", encoding="utf-8"))  # noqa: SIM115 - lives as long as the process
    emitter = EventEmitter([JSONLinesSink(events)] if events else [], service="gateway")
    options = GatewayOptions(
        plain_upstreams=plain_upstreams, identity_over_plain=plain_upstreams, reuse_port=reuse_port
    )
    identity = IdentitySource.from_dir(identity_dir) if identity_dir else None
    waf = _waf(path, emitter)
    gateway = Gateway(
        path,
        emitter=emitter,
        options=options,
        access_log=log,
        identity=identity,
        waf=waf,
        limiter=_limiter(path, emitter),
    )
    gateway.identity_dir = identity_dir
    if metrics_dir is not None:
        gateway.share_metrics(metrics_dir, index)
    if index > 0:
        gateway.disable_admin()
    return gateway
