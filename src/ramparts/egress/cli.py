"""``ramparts egress check``: the guard's decision for URLs, without connecting."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ramparts.config import TopologyError, default_topology, load_topology
from ramparts.egress._client import EgressClient, system_resolver
from ramparts.egress._policy import EgressBlocked, EgressPolicy
from ramparts.events import EventEmitter, MemorySink

app = typer.Typer(
    help="The egress guard: which outbound URLs a service may reach.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """The egress guard: which outbound URLs a service may reach."""


async def _no_resolve(host: str, port: int) -> list:  # type: ignore[type-arg]
    raise _Unresolved


class _Unresolved(Exception):
    pass


@app.command("check")
def check(
    service: Annotated[str, typer.Option("--service", "-s", help="The calling service.")],
    urls: Annotated[
        list[str] | None, typer.Argument(help="URLs; one per line on stdin if none.")
    ] = None,
    topology: Annotated[
        Path | None, typer.Option(help="ramparts.yaml; the built-in one if omitted.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
    resolve: Annotated[
        bool, typer.Option(help="Resolve host names and check every address.")
    ] = True,
) -> None:
    """Print ``allow`` or ``block`` and the reason for each URL; exit 1 if any is blocked."""
    try:
        topo = load_topology(topology) if topology else default_topology()
        policy = EgressPolicy.from_topology(topo, service)
    except (TopologyError, KeyError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    sink = MemorySink()
    client = EgressClient(
        policy, EventEmitter([sink]), resolver=system_resolver if resolve else _no_resolve
    )
    items = urls if urls else (line.rstrip("\n") for line in sys.stdin)
    blocked = asyncio.run(_check_all(client, items, as_json))
    raise typer.Exit(1 if blocked else 0)


async def _check_all(client: EgressClient, urls: object, as_json: bool) -> int:
    blocked = 0
    for url in urls:  # type: ignore[attr-defined]
        if not url:
            continue
        try:
            parsed, addr = await client.check(url)
            outcome, reason, dest = "allow", f"{parsed.host}:{parsed.port} -> {addr}", parsed.origin
        except _Unresolved:
            decision = client.policy.check_url(url)
            outcome, reason, dest = "allow", "in allow-list (not resolved)", decision.url.origin
        except EgressBlocked as exc:
            outcome, reason, dest = "block", exc.reason, exc.destination
            blocked += 1
        if as_json:
            typer.echo(
                json.dumps({"url": url, "outcome": outcome, "destination": dest, "reason": reason})
            )
        else:
            typer.echo(f"{outcome}\t{url}\t{reason}")
    await client.aclose()
    return blocked
