"""``ramparts waf check``: lists what a rule set uses that the engine does not support."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ramparts.waf import builtin_rules_dir
from ramparts.waf.cli import app

runner = CliRunner()


def test_check_passes_on_crs_and_our_rules(crs_dir: Path) -> None:
    res = runner.invoke(
        app, ["check", str(crs_dir / "crs-setup.conf.example"), str(crs_dir / "rules")]
    )
    assert res.exit_code == 0, res.output
    assert "all supported" in res.stdout
    res = runner.invoke(app, ["check", str(builtin_rules_dir())])
    assert res.exit_code == 0, res.output


def test_check_lists_every_unsupported_item_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text(
        'SecRule ARGS "@rx a" "id:1,pass,t:rot13"\n'
        "SecGeoLookupDb /x.dat\n"
        'SecRule ARGS "@inspectFile /x.sh" "id:2,pass"\n'
    )
    res = runner.invoke(app, ["check", str(bad)])
    assert res.exit_code == 1
    lines = res.stdout.strip().splitlines()
    assert lines == [
        f"{bad}:1: unsupported transformation t:rot13",
        f"{bad}:2: unsupported directive SecGeoLookupDb",
        f"{bad}:3: unsupported operator @inspectFile",
    ]
    assert "Error: 3 unsupported item(s)" in res.stderr


def test_check_missing_path(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", str(tmp_path / "nope.conf")])
    assert res.exit_code == 1
    assert "Error: no such file" in res.stderr
