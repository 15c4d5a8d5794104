"""The development issuer: its tokens pass the gateway's own validator; its key stays private."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ramparts.cli import app
from ramparts.config import default_topology
from ramparts.jwt.cli import app as jwt_app
from ramparts.platform import devissuer


@pytest.fixture
def state(tmp_path: Path) -> Path:
    topo = default_topology()
    (tmp_path / "ramparts.yaml").write_text(topo.text)
    (tmp_path / "run.json").write_text(json.dumps({"topology": str(tmp_path / "ramparts.yaml")}))
    devissuer.ensure(topo, tmp_path / "ramparts.yaml", tmp_path)
    return tmp_path


def test_minted_token_passes_the_gateway_validator(state: Path) -> None:
    token = devissuer.mint(default_topology(), state, subject="ada", scopes=["accounts:read"])
    result = CliRunner().invoke(
        jwt_app, ["verify", "--topology", str(state / "ramparts.yaml"), token]
    )
    assert result.exit_code == 0, result.output
    assert "accept subject='ada'" in result.output


def test_expired_token_is_rejected(state: Path) -> None:
    token = devissuer.mint(
        default_topology(), state, subject="ada", scopes=[], ttl=60, now=1_000_000
    )
    result = CliRunner().invoke(
        jwt_app, ["verify", "--topology", str(state / "ramparts.yaml"), token]
    )
    assert result.exit_code == 1
    assert "reject" in result.output


def test_jwks_holds_only_the_public_key(state: Path) -> None:
    (key,) = json.loads((state / "jwks.json").read_text())["keys"]
    assert "d" not in key and key["kty"] == "EC"
    assert oct((state / "keys" / devissuer.KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_key_is_created_once(state: Path) -> None:
    before = (state / "keys" / devissuer.KEY_FILE).read_bytes()
    devissuer.ensure(default_topology(), state / "ramparts.yaml", state)
    assert (state / "keys" / devissuer.KEY_FILE).read_bytes() == before


def test_readable_key_is_refused(state: Path) -> None:
    (state / "keys" / devissuer.KEY_FILE).chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        devissuer.mint(default_topology(), state, subject="ada", scopes=[])


@pytest.mark.parametrize("ttl", [0, -1, 3601])
def test_ttl_is_bounded(state: Path, ttl: int) -> None:
    with pytest.raises(ValueError, match="ttl must be"):
        devissuer.mint(default_topology(), state, subject="ada", scopes=[], ttl=ttl)


def test_token_command(state: Path) -> None:
    result = CliRunner().invoke(
        app, ["token", "--sub", "ada", "--scope", "a:b", "--state", str(state)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count(".") == 2


def test_token_command_without_up(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["token", "--sub", "ada", "--state", str(tmp_path)])
    assert result.exit_code == 1
    assert "run 'ramparts up' first" in result.output
