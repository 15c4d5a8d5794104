"""The top-level command, run in-process."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ramparts.cli import app

runner = CliRunner()


def test_help_lists_topology() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "topology" in result.output


def test_topology_check_builtin() -> None:
    result = runner.invoke(app, ["topology", "check"])
    assert result.exit_code == 0, result.output
    assert "5 services" in result.output


def test_topology_check_reports_line(tmp_path: Path) -> None:
    bad = tmp_path / "ramparts.yaml"
    bad.write_text("version: 1\ntrust_domain: x\nservices: {}\ngateway: {listen: '127.0.0.1:1'}\n")
    result = runner.invoke(app, ["topology", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3: services:" in result.output


def test_topology_show_lists_identities() -> None:
    result = runner.invoke(app, ["topology", "show"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "spiffe://refbank.local/ns/refbank/sa/statements" in result.output


def test_render_k8s_writes_manifests(tmp_path: Path) -> None:
    out = tmp_path / "refbank.yaml"
    result = runner.invoke(app, ["render", "k8s", "--mesh", "linkerd", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "kind: NetworkPolicy" in text
    assert "policy.linkerd.io" in text


def test_render_k8s_rejects_unknown_mesh() -> None:
    result = runner.invoke(app, ["render", "k8s", "--mesh", "consul"])
    assert result.exit_code == 2


def test_every_piece_is_mounted() -> None:
    """The installed command lists every piece's sub-command (a broken import fails here)."""
    import subprocess
    import sys

    from ramparts.cli import PIECES

    out = subprocess.run(
        [sys.executable, "-m", "ramparts", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    ).stdout
    for name, _module in PIECES:
        assert f" {name} " in out, name
