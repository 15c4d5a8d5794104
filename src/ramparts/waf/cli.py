"""``ramparts waf ...``: check a SecLang rule set before deploying it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ramparts.waf._rules import load_rules

app = typer.Typer(help="The WAF: SecLang rule sets (OWASP CRS and our own).", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """WAF commands."""


@app.command()
def check(
    paths: Annotated[list[Path], typer.Argument(help="SecLang files or folders (their *.conf).")],
) -> None:
    """List everything the rule set uses that the engine does not support.

    Exits 1 if there is anything: the engine refuses such a rule set at load
    rather than silently skipping part of it.
    """
    for p in paths:
        if not p.exists():
            typer.echo(f"Error: no such file or folder: {p}", err=True)
            raise typer.Exit(1)
    ruleset = load_rules(paths, collect_errors=True)
    for err in ruleset.errors:
        typer.echo(f"{err.file}:{err.line}: {err.message}")
    if ruleset.errors:
        typer.echo(f"Error: {len(ruleset.errors)} unsupported item(s)", err=True)
        raise typer.Exit(1)
    rules = sum(1 for r in ruleset.rules if r.marker is None)
    typer.echo(f"OK: {rules} rules from {len(ruleset.files)} file(s), all supported")
