"""``ramparts alerts``: check rule files, replay events through the rules.

    $ ramparts alerts check rules/            # validate; errors name file and line
    $ ramparts alerts test default events.jsonl --topology ramparts.yaml

``test`` runs the engine offline: time comes from the events, de-duplication
windows are flushed at the end, and each alert is printed (``--json`` for one
JSON object a line). ``default`` (or no path for ``check``) means the built-in
rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from ramparts.alerts._engine import AlertEngine
from ramparts.alerts._errors import RuleError
from ramparts.alerts._rules import RuleSet, default_rules_dir, load_rules
from ramparts.config import TopologyError, load_topology
from ramparts.events import SecurityEvent

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Sigma rules over security events: check rules, replay events.",
)

BUILTIN = "default"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _load(paths: list[str]) -> RuleSet:
    resolved = [default_rules_dir() if p == BUILTIN else Path(p) for p in paths]
    return load_rules(*resolved)


def _events(path: Path) -> Iterator[SecurityEvent]:
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{path}: cannot open ({exc.strerror})") from None
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                yield SecurityEvent.from_dict(data)
            except (ValueError, TypeError) as exc:
                raise _fail(f"{path}:{n}: not a security event: {exc}") from None


@app.command()
def check(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Rule files or directories ('default' = the built-in rules)."),
    ] = None,
) -> None:
    """Validate rule files: Sigma syntax, supported features, references."""
    targets = paths or [BUILTIN]
    try:
        rules = _load(targets)
    except RuleError as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"OK: {len(rules.detections)} detection and {len(rules.correlations)} correlation "
        f"rules in {', '.join(targets)}"
    )


@app.command()
def test(  # noqa: PLR0917 - typer maps parameters to arguments and options
    rules: Annotated[str, typer.Argument(help="Rule file or directory, or 'default'.")],
    events: Annotated[Path, typer.Argument(help="Security events, one JSON object a line.")],
    topology: Annotated[
        Path | None, typer.Option(help="ramparts.yaml, for expected edges and identities.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert a line.")] = False,
    dedup: Annotated[float, typer.Option(help="De-duplication window, seconds.")] = 300.0,
    silence_after: Annotated[
        float, typer.Option(help="Report a service silent after this many seconds (0 = off).")
    ] = 0.0,
) -> None:
    """Replay EVENTS through RULES and print the alerts they raise."""
    try:
        ruleset = _load([rules])
        topo = load_topology(topology) if topology is not None else None
    except (RuleError, TopologyError) as exc:
        raise _fail(str(exc)) from None
    engine = AlertEngine(
        ruleset, topology=topo, dedup_window=dedup, silence_after=silence_after or None
    )
    count = 0
    for alert in engine.replay(_events(events)):
        count += 1
        if as_json:
            typer.echo(json.dumps(alert.to_dict(), sort_keys=True, default=str))
        else:
            again = " (update)" if alert.update else ""
            typer.echo(
                f"[{alert.level}] {alert.rule}: {alert.summary()} count={alert.count}{again}"
            )
    if not as_json:
        typer.echo(f"{count} alerts from {engine.events} events", err=True)
