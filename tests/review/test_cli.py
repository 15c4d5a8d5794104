"""``ramparts review`` in-process: formats, --fail-on, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.review.conftest import deployment
from typer.testing import CliRunner

from ramparts.review.cli import app

runner = CliRunner()


def test_json_to_stdout_and_fail_on(fixtures):
    res = runner.invoke(app, [str(fixtures / "leaky-bank"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["findings"]
    res = runner.invoke(app, [str(fixtures / "leaky-bank"), "--fail-on", "high", "-f", "json"])
    assert res.exit_code == 1


def test_fail_on_threshold_below_findings_passes(tmp_path: Path):
    compose = "services:\n  api: {image: a, ports: ['127.0.0.1:8080:8080']}\n"
    (tmp_path / "docker-compose.yml").write_text(compose)
    res = runner.invoke(app, [str(tmp_path), "--fail-on", "medium"])
    assert res.exit_code == 0, res.output  # only a low finding
    res = runner.invoke(app, [str(tmp_path), "--fail-on", "low"])
    assert res.exit_code == 1


def test_secure_fixture_passes_fail_on_info(fixtures):
    res = runner.invoke(app, [str(fixtures / "secure-bank"), "--fail-on", "info"])
    assert res.exit_code == 0, res.output
    assert "0 finding(s)" in res.stdout


def test_bad_fail_on_is_a_usage_error(fixtures):
    res = runner.invoke(app, [str(fixtures / "secure-bank"), "--fail-on", "severe"])
    assert res.exit_code == 2


def test_malformed_file_errors_on_stderr_and_exit_1(tmp_path: Path):
    (tmp_path / "ok.yaml").write_text(deployment("ledger"))
    (tmp_path / "bad.yaml").write_text("x: [\n")
    res = runner.invoke(app, [str(tmp_path), "-f", "json"])
    assert res.exit_code == 1
    assert "Error:" in res.stderr and "bad.yaml:" in res.stderr and "malformed YAML" in res.stderr
    data = json.loads(res.stdout)
    assert data["findings"] and data["errors"][0]["file"].endswith("bad.yaml")


def test_sarif_to_file_and_topology_option(tmp_path: Path, fixtures):
    out = tmp_path / "review.sarif"
    topo = Path(__file__).parents[2] / "src/ramparts/config/refbank.yaml"
    res = runner.invoke(
        app,
        [
            str(fixtures / "secure-bank"),
            "--format",
            "sarif",
            "-o",
            str(out),
            "--topology",
            str(topo),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_invalid_topology_is_an_error(tmp_path: Path, fixtures):
    bad = tmp_path / "ramparts.yaml"
    bad.write_text("version: 2\n")
    res = runner.invoke(app, [str(fixtures / "secure-bank"), "--topology", str(bad)])
    assert res.exit_code == 1 and "Error:" in res.stderr


def test_mounted_as_a_subcommand_like_the_lead_does(fixtures):
    import typer

    root = typer.Typer()

    @root.command()
    def other() -> None:
        """Another piece, so `review` is a real sub-command."""

    root.add_typer(app, name="review")
    res = runner.invoke(root, ["review", str(fixtures / "leaky-bank"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["findings"]
    res = runner.invoke(root, ["review", "--fail-on", "critical", str(fixtures / "leaky-bank")])
    assert res.exit_code == 0, res.output
