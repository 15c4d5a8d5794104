"""``ramparts jwt verify`` run in-process with CliRunner."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from tests.jwt.jwt_helpers import (
    AUDIENCE,
    ISSUER,
    NOW,
    JWKSServer,
    Keys,
    jwks_of,
    mint,
    write_jwks,
)
from typer.testing import CliRunner

from ramparts.jwt.cli import app

runner = CliRunner()


@pytest.fixture
def jwks_path(tmp_path: Path, keys: Keys) -> Path:
    return write_jwks(tmp_path / "jwks.json", jwks_of(keys.rsa, keys.ec))


def base_args(jwks: str | Path) -> list[str]:
    return [
        "verify",
        "--jwks",
        str(jwks),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--alg",
        "RS256",
        "--alg",
        "ES256",
        "--now",
        str(int(NOW)),
    ]


def test_accepts_tokens_given_as_arguments(jwks_path: Path, keys: Keys) -> None:
    """All good tokens: exit 0 and one accept line each."""
    result = runner.invoke(app, [*base_args(jwks_path), mint(keys.rsa), mint(keys.ec, "ES256")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["0:", "accept"], ["1:", "accept"]]
    assert "subject='alice'" in lines[0]


def test_any_rejection_exits_1_and_names_the_reason(jwks_path: Path, keys: Keys) -> None:
    """One bad token among good ones: exit 1, the reason code is printed."""
    tokens = [mint(keys.rsa), mint(keys.rsa, exp=int(NOW) - 3600)]
    result = runner.invoke(app, [*base_args(jwks_path), *tokens])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].startswith("1: reject expired:")


def test_json_output_never_contains_the_token(jwks_path: Path, keys: Keys) -> None:
    """--json: one object per token, with outcome and reason, never token or signature."""
    good = mint(keys.rsa)
    forged = mint(keys.rsa2, header={"kid": "rsa-1"})
    result = runner.invoke(app, [*base_args(jwks_path), "--json", good, forged])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["index"], r["outcome"], r["reason"]) for r in records] == [
        (0, "accept", None),
        (1, "reject", "bad_signature"),
    ]
    assert records[0]["subject"] == "alice" and records[0]["kid"] == "rsa-1"
    for token in (good, forged):
        for segment in token.split("."):
            assert segment not in result.output


def test_tokens_from_stdin(jwks_path: Path, keys: Keys) -> None:
    """With no token arguments, tokens are read one per line from stdin."""
    stdin = f"{mint(keys.rsa)}\n\n{mint(keys.rsa, aud='other')}\n"
    result = runner.invoke(app, base_args(jwks_path), input=stdin)
    assert result.exit_code == 1
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["accept", "reject"]
    assert "audience_mismatch" in result.stdout


def test_now_accepts_rfc3339(jwks_path: Path, keys: Keys) -> None:
    """--now in RFC 3339 judges time claims at that instant (the token is long expired today)."""
    args = base_args(jwks_path)
    args[args.index("--now") + 1] = "2026-01-01T00:00:00Z"
    result = runner.invoke(app, [*args, mint(keys.rsa)])
    assert result.exit_code == 0, result.output
    later = runner.invoke(app, [*args[:-1], "2026-01-01T01:00:00+00:00", mint(keys.rsa)])
    assert later.exit_code == 1
    assert "expired" in later.stdout


def test_jwks_url(jwks_server: JWKSServer, keys: Keys) -> None:
    """--jwks takes a URL; keys are fetched over HTTP."""
    result = runner.invoke(app, [*base_args(jwks_server.url), mint(keys.rsa)])
    assert result.exit_code == 0, result.output
    assert jwks_server.fetch_count() == 1


def test_unreachable_jwks_rejects(keys: Keys, tmp_path: Path) -> None:
    """No keys: tokens are rejected (fail closed), exit 1."""
    result = runner.invoke(app, [*base_args(tmp_path / "none.json"), mint(keys.rsa)])
    assert result.exit_code == 1
    assert "jwks_unavailable" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a[:1] + a[3:], "--jwks"),
        (lambda a: [*a[:-1], "yesterday"], "--now"),
        (lambda a: [*a[:-4], "--alg", "none", "--now", a[-1]], "none"),
        (lambda a: [*a[:-4], "--alg", "HS256", "--now", a[-1]], "mixes"),
        (lambda a: [*a, "--topology", "x.yaml"], "not both"),
    ],
)
def test_usage_errors_exit_2(jwks_path: Path, keys: Keys, change, message: str) -> None:
    """Bad or missing options are usage errors (exit 2), named in the message."""
    result = runner.invoke(app, [*change(base_args(jwks_path)), mint(keys.rsa)])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_no_tokens_is_a_usage_error(jwks_path: Path) -> None:
    result = runner.invoke(app, base_args(jwks_path), input="")
    assert result.exit_code == 2
    assert "no tokens" in result.output


def _topology(tmp_path: Path, keys: Keys) -> Path:
    text = resources.files("ramparts.config").joinpath("refbank.yaml").read_text()
    assert "https://auth.refbank.local" in text and "jwks: jwks.json" in text
    write_jwks(tmp_path / "jwks.json", jwks_of(keys.rsa))
    path = tmp_path / "ramparts.yaml"
    path.write_text(text.replace("https://auth.refbank.local", ISSUER))
    return path


def test_policy_from_topology(tmp_path: Path, keys: Keys) -> None:
    """--topology takes issuers from ramparts.yaml; a relative JWKS path is beside the file."""
    topology = _topology(tmp_path, keys)
    args = ["verify", "--topology", str(topology), "--now", str(int(NOW))]
    result = runner.invoke(app, [*args, mint(keys.rsa), mint(keys.rsa, aud="x")])
    assert result.exit_code == 1, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["accept", "reject"]


def test_bad_topology_is_an_error(tmp_path: Path, keys: Keys) -> None:
    """An unreadable topology: 'Error: ...' on stderr, exit 1."""
    result = runner.invoke(
        app, ["verify", "--topology", str(tmp_path / "missing.yaml"), mint(keys.rsa)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot use topology")
