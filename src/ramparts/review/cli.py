"""``ramparts review``: scan a deployment for lateral-movement risks (R1..R6).

Exit codes: 0 no finding at or above ``--fail-on`` (and every file read),
1 a finding at or above ``--fail-on`` or a file that could not be read,
2 usage error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ramparts.review.context import DEFAULT_ISTIO_ROOT
from ramparts.review.findings import Severity
from ramparts.review.report import print_human, to_json, to_sarif
from ramparts.review.scanner import scan

app = typer.Typer(
    help="Find lateral-movement risks in Kubernetes manifests and docker-compose files.",
    add_completion=False,
    # One command, written as a callback so it mounts as `ramparts review PATHS`; no sub-commands.
    subcommand_metavar="",
)


def _error(message: str) -> None:
    from rich.console import Console  # noqa: PLC0415 - imported on use
    from rich.markup import escape  # noqa: PLC0415

    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]Error:[/] {escape(message)}", highlight=False
    )


class Format(StrEnum):
    human = "human"
    json = "json"
    sarif = "sarif"


def _fail_on(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback(invoke_without_command=True, context_settings={"allow_interspersed_args": True})
def review(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Manifest files or directories (k8s YAML, Helm/Kustomize output, compose)."
        ),
    ],
    *,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.human,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when any finding is at or above this severity "
            "(info, low, medium, high, critical).",
        ),
    ] = None,
    topology: Annotated[
        Path | None,
        typer.Option(
            "--topology",
            "-t",
            help="ramparts.yaml to compare reachability with (default: one found in PATHS).",
        ),
    ] = None,
    istio_root: Annotated[
        str, typer.Option(help="Istio root namespace (mesh-wide PeerAuthentication).")
    ] = DEFAULT_ISTIO_ROOT,
) -> None:
    """Scan PATHS and report findings grouped by risk (R1..R6)."""
    threshold = _fail_on(fail_on)
    topo = None
    if topology is not None:
        from ramparts.config import TopologyError, load_topology  # noqa: PLC0415 - start-up cost

        try:
            topo = load_topology(topology)
        except TopologyError as exc:
            _error(str(exc))
            raise typer.Exit(1) from None
    result = scan(paths, topology=topo, istio_root=istio_root)
    for e in result.errors:
        _error(str(e))
    if fmt is Format.human:
        # rich is imported on use: JSON and SARIF runs in CI skip its start-up cost.
        from rich.console import Console  # noqa: PLC0415

        with contextlib.ExitStack() as stack:
            file = stack.enter_context(output.open("w", encoding="utf-8")) if output else None
            print_human(result, Console(file=file))
    else:
        text = (
            to_json(result)
            if fmt is Format.json
            else json.dumps(to_sarif(result, base=Path.cwd()), indent=2)
        )
        if output:
            output.write_text(text + "\n", encoding="utf-8")
        else:
            sys.stdout.write(text + "\n")
    failed = threshold is not None and any(f.severity >= threshold for f in result.findings)
    if failed or result.errors:
        raise typer.Exit(1)
