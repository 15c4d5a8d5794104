"""The ``ramparts`` command.

Each piece owns its own sub-command in ``ramparts/<piece>/cli.py``; this module
only mounts them. Errors go to stderr as ``Error: ...`` with exit code 1, usage
errors exit 2.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ramparts import __version__
from ramparts.config import Topology, TopologyError, default_topology, load_topology
from ramparts.platform import StartupError, devissuer, k8s
from ramparts.platform import drill as platform_drill
from ramparts.platform import up as platform_up
from ramparts.platform.isolate import IsolationError
from ramparts.platform.k8s import DEFAULT_IMAGE

app = typer.Typer(
    name="ramparts",
    help="Zero-trust security for fintech microservices: one gateway, mTLS between every "
    "pair of services, leased credentials, a tamper-evident audit log.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
render_app = typer.Typer(help="Render the topology for another platform.", no_args_is_help=True)
app.add_typer(render_app, name="render")
topology_app = typer.Typer(
    help="Check and explain a topology file (ramparts.yaml).", no_args_is_help=True
)
app.add_typer(topology_app, name="topology")


def _out() -> Console:
    # Built per call so the width and colour follow the terminal (and NO_COLOR) of this run.
    return Console()


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


# (command name, module holding a typer app named ``app``). One table, in the
# order `--help` lists them.
PIECES: tuple[tuple[str, str], ...] = (
    ("ca", "ramparts.identity.cli"),
    ("gateway", "ramparts.gateway.cli"),
    ("jwt", "ramparts.jwt.cli"),
    ("mask", "ramparts.masking.cli"),
    ("audit", "ramparts.audit.cli"),
    ("secrets", "ramparts.secrets.cli"),
    ("egress", "ramparts.egress.cli"),
    ("alerts", "ramparts.alerts.cli"),
    ("review", "ramparts.review.cli"),
    ("waf", "ramparts.waf.cli"),
)


def _mount_pieces() -> None:
    for name, module in PIECES:
        app.add_typer(importlib.import_module(module).app, name=name)


def _version(value: bool) -> None:
    if value:
        _out().print(f"ramparts {__version__}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Zero-trust security for fintech microservices."""


TopologyArg = Annotated[
    Path | None,
    typer.Argument(help="Topology file; the reference bank's built-in topology if omitted."),
]


def _load(path: Path | None) -> Topology:
    try:
        return load_topology(path) if path else default_topology()
    except TopologyError as exc:
        _err().print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None


@topology_app.command("check")
def topology_check(path: TopologyArg = None) -> None:
    """Validate a topology file; print every problem with its line, or a one-line summary."""
    topo = _load(path)
    _out().print(
        f"[green]ok[/] {escape(topo.source)}: {len(topo.services)} services, "
        f"{len(topo.edges)} allowed edges, {len(topo.gateway.routes)} gateway routes",
        highlight=False,
    )


@topology_app.command("show")
def topology_show(path: TopologyArg = None) -> None:
    """Show the services, their identities and who may call whom."""
    topo = _load(path)
    table = Table(title=f"{topo.source} — trust domain {topo.trust_domain}")
    for col in ("service", "identity", "listen", "database", "may call", "callers", "egress"):
        table.add_column(col)
    for name, svc in topo.services.items():
        callers = sorted(c for c, callee in topo.edges if callee == name)
        table.add_row(
            name,
            svc.spiffe_id,
            str(svc.listen),
            svc.database or "-",
            ", ".join(svc.calls) or "-",
            ", ".join(callers) or "-",
            ", ".join(str(e) for e in svc.egress) or "-",
        )
    _out().print(table)


@app.command("up")
def up(
    topology: Annotated[
        Path | None, typer.Option(help="ramparts.yaml; the reference bank's if omitted.")
    ] = None,
    state: Annotated[Path, typer.Option(help="State directory, reused by the next run.")] = Path(
        ".ramparts"
    ),
    isolate: Annotated[
        bool,
        typer.Option(
            "--isolate",
            help="Each component in its own network namespace; nftables allow only topology "
            "edges (Linux, root or CAP_NET_ADMIN).",
        ),
    ] = False,
) -> None:
    """Run the whole system locally: CA and every service with its own identity and database."""
    topo = _load(topology)
    console = _err()
    try:
        code = asyncio.run(
            platform_up.run(
                topo,
                state,
                topology_path=topology,
                say=lambda s: console.print(s, markup=False, highlight=False),
                isolated=isolate,
            )
        )
    except (platform_up.UpError, StartupError, IsolationError) as exc:
        _err().print(f"[bold red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command("drill")
def drill(
    state: Annotated[Path, typer.Option(help="The state directory of 'ramparts up'.")] = Path(
        ".ramparts"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Attack the running system; exit 1 unless every scenario was blocked, with proof."""
    try:
        scenarios = platform_drill.run_drill(state)
    except (platform_up.UpError, TopologyError, OSError) as exc:
        _err().print(f"[bold red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps({"scenarios": [s.to_dict() for s in scenarios]}, indent=2))
    else:
        table = Table(title="ramparts drill")
        for col in ("scenario", "result", "evidence", "alerts", "detail"):
            table.add_column(col)
        for s in scenarios:
            verdict = "[green]blocked[/]" if s.blocked else "[bold red]NOT BLOCKED[/]"
            alerts = escape(", ".join(s.alerts)) or "-"
            evidence = f"{len(s.events)} events"
            table.add_row(escape(s.name), verdict, evidence, alerts, escape(s.detail))
        _out().print(table)
    raise typer.Exit(0 if all(s.blocked for s in scenarios) else 1)


@app.command("token")
def token(
    subject: Annotated[str, typer.Option("--sub", help="The token's subject (a customer id).")],
    scope: Annotated[list[str] | None, typer.Option(help="A scope; repeat for more.")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds (at most 3600).")] = 900,
    state: Annotated[Path, typer.Option(help="The state directory of 'ramparts up'.")] = Path(
        ".ramparts"
    ),
) -> None:
    """Mint a development token from the issuer 'ramparts up' created (never for production)."""
    try:
        topo = load_topology(platform_up.topology_of(state))
        print(devissuer.mint(topo, state, subject=subject, scopes=scope or [], ttl=ttl))
    except (OSError, ValueError, TopologyError, platform_up.UpError) as exc:
        _err().print(f"[bold red]Error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


@render_app.command("k8s")
def render_k8s(
    path: TopologyArg = None,
    mesh: Annotated[str, typer.Option(help="istio, linkerd or none.")] = "istio",
    image: Annotated[str, typer.Option(help="Container image of the services.")] = DEFAULT_IMAGE,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write; stdout if omitted.")
    ] = None,
) -> None:
    """Kubernetes manifests: workloads, NetworkPolicies, mesh mTLS and authorisation."""
    if mesh not in ("istio", "linkerd", "none"):
        _err().print(
            f"[bold red]Error:[/] --mesh must be istio, linkerd or none, got {escape(mesh)!r}"
        )
        raise typer.Exit(2)
    manifests = k8s.render(_load(path), image=image, mesh=mesh)  # type: ignore[arg-type]
    if out is None:
        k8s.dump_all(manifests, sys.stdout)
        return
    with out.open("w", encoding="utf-8") as f:
        k8s.dump_all(manifests, f)
    _err().print(f"wrote {len(manifests)} objects to {escape(str(out))}")


def main() -> None:
    _mount_pieces()
    try:
        app()
    except KeyboardInterrupt:
        _err().print("interrupted")
        sys.exit(130)
