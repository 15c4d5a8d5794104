"""``ramparts egress check``, in-process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ramparts.egress.cli import app

runner = CliRunner()


def test_urls_as_arguments() -> None:
    result = runner.invoke(
        app,
        [
            "check",
            "--service",
            "notifications",
            "--no-resolve",
            "http://169.254.169.254/latest/meta-data/",
            "https://hooks.refbank-partners.example/x",
        ],
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "block\thttp://169.254.169.254/latest/meta-data/\t169.254.169.254 is cloud metadata"
    )
    assert lines[1].startswith("allow\thttps://hooks.refbank-partners.example/x")


def test_urls_on_stdin_as_json() -> None:
    stdin = "http://[::ffff:10.0.0.1]/\nhttps://hooks.refbank-partners.example/ok\n"
    result = runner.invoke(
        app, ["check", "-s", "notifications", "--json", "--no-resolve"], input=stdin
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["outcome"] for r in rows] == ["block", "allow"]
    assert "IPv6 form of 10.0.0.1" in rows[0]["reason"]
    assert result.exit_code == 1


def test_all_allowed_exits_zero() -> None:
    result = runner.invoke(
        app,
        ["check", "-s", "notifications", "--no-resolve", "https://hooks.refbank-partners.example/"],
    )
    assert result.exit_code == 0, result.output


def test_service_without_egress_blocks_everything() -> None:
    result = runner.invoke(
        app, ["check", "-s", "ledger", "--no-resolve", "https://hooks.refbank-partners.example/"]
    )
    assert result.exit_code == 1
    assert "not in ledger's egress allow-list" in result.output


def test_unknown_service_is_an_error() -> None:
    result = runner.invoke(app, ["check", "-s", "ledgr", "http://x.example/"])
    assert result.exit_code == 1
    assert "no service 'ledgr'" in result.output
