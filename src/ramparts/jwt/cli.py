"""``ramparts jwt verify``: check tokens against an issuer policy from the command line.

Tokens come as arguments or one per line on stdin (safer: argv is visible to
other users of the machine). Output never contains a token or a signature.
Exit code 0 if every token is accepted, 1 if any is rejected or on an error,
2 for usage errors.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ramparts.config import load_topology
from ramparts.jwt._claims import VerifiedToken
from ramparts.jwt._errors import JWTError
from ramparts.jwt._policy import DEFAULT_LEEWAY_SECONDS, IssuerPolicy, policy_from_config
from ramparts.jwt._validator import JWTValidator

app = typer.Typer(
    name="jwt",
    help="JWT tools: verify tokens the way the gateway does.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """JWT tools: verify tokens the way the gateway does."""


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def parse_instant(text: str) -> float:
    """Epoch seconds from ``--now``: an RFC 3339 timestamp or a number of seconds.

    Raises:
        typer.BadParameter: naming the accepted forms.
    """
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither RFC 3339 (2026-01-31T12:00:00Z) nor epoch seconds",
            param_hint="--now",
        ) from None
    if when.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no UTC offset (add Z or +00:00)", param_hint="--now"
        )
    return when.timestamp()


def _policies_from_topology(path: Path) -> list[IssuerPolicy]:
    topology = load_topology(path)
    issuers = tuple(topology.gateway.issuers)
    if not issuers:
        raise ValueError(f"{path}: gateway.issuers is empty")
    return [policy_from_config(cfg, base_dir=path.parent) for cfg in issuers]


def _read_tokens(tokens: list[str] | None) -> list[str]:
    if tokens:
        return tokens
    if sys.stdin is None:
        return []
    return [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]


def _report(index: int, result: VerifiedToken | JWTError, as_json: bool) -> None:
    if isinstance(result, VerifiedToken):
        record = {
            "index": index,
            "outcome": "accept",
            "reason": None,
            "message": "token verified",
            "subject": result.subject,
            "issuer": result.issuer,
            "kid": result.kid,
            "expires_at": result.expiry.isoformat(),
            "scopes": sorted(result.scopes),
        }
        text = (
            f"{index}: accept subject={result.subject!r} kid={result.kid!r} "
            f"expires={record['expires_at']}"
        )
    else:
        record = {
            "index": index,
            "outcome": "reject",
            "reason": result.reason,
            "message": result.message,
        }
        text = f"{index}: reject {result.reason}: {result.message}"
    typer.echo(json.dumps(record, sort_keys=True) if as_json else text)


@app.command("verify")
def verify(  # noqa: PLR0917 - typer maps each CLI option to one parameter
    tokens: Annotated[
        list[str] | None, typer.Argument(help="Tokens to check; if none, one per line on stdin.")
    ] = None,
    jwks: Annotated[str | None, typer.Option("--jwks", help="JWKS file or https URL.")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Expected iss.")] = None,
    audience: Annotated[
        list[str] | None, typer.Option("--audience", help="Accepted aud (repeatable).")
    ] = None,
    alg: Annotated[
        list[str] | None, typer.Option("--alg", help="Allowed algorithm (repeatable).")
    ] = None,
    leeway: Annotated[
        int, typer.Option("--leeway", help="Clock-skew allowance, seconds.")
    ] = DEFAULT_LEEWAY_SECONDS,
    topology: Annotated[
        Path | None,
        typer.Option("--topology", help="Take issuer policies from this ramparts.yaml."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Judge time claims at this instant (RFC 3339 or epoch)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token.")] = False,
) -> None:
    """Verify JWTs; print accept or reject (with the reason) per token."""
    instant = parse_instant(now) if now is not None else None
    if topology is not None:
        if jwks or issuer or audience or alg:
            raise typer.BadParameter("use --topology or --jwks/--issuer/--audience/--alg, not both")
        try:
            policies = _policies_from_topology(topology)
        except Exception as exc:
            raise _fail(f"cannot use topology {topology}: {exc}") from None
    else:
        given = {"--jwks": jwks, "--issuer": issuer, "--audience": audience, "--alg": alg}
        missing = [flag for flag, value in given.items() if not value]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or give --topology)")
        try:
            policies = [
                IssuerPolicy(
                    issuer=issuer or "",
                    audiences=tuple(audience or ()),
                    algorithms=tuple(alg or ()),
                    jwks=jwks or "",
                    leeway_seconds=leeway,
                )
            ]
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    items = _read_tokens(tokens)
    if not items:
        raise typer.BadParameter("no tokens given (as arguments or on stdin)")
    try:
        validator = JWTValidator(policies, cache_size=0)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    results = validator.verify_many_at_time_sync(items, instant)
    for index, result in enumerate(results):
        _report(index, result, as_json)
    if any(isinstance(r, JWTError) for r in results):
        raise typer.Exit(1)
