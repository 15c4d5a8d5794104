"""`ramparts gateway` command, in-process."""

from __future__ import annotations

from tests.gateway.conftest import topology_text
from typer.testing import CliRunner

from ramparts.gateway.cli import app

runner = CliRunner()


def test_check_accepts_a_valid_topology(tmp_path):
    path = tmp_path / "ramparts.yaml"
    path.write_text(topology_text(7101, 7102))
    result = runner.invoke(
        app, ["run", "--topology", str(path), "--plain-upstreams", "--check", "--access-log", "off"]
    )
    assert result.exit_code == 0, result.output
    assert "4 routes" in result.output


def test_invalid_topology_is_an_error_naming_the_problem(tmp_path):
    path = tmp_path / "ramparts.yaml"
    path.write_text(topology_text(7101, 7102).replace("service: accounts", "service: nosuch", 1))
    result = runner.invoke(app, ["run", "--topology", str(path), "--check", "--access-log", "off"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "nosuch" in result.stderr


def test_plain_upstreams_must_be_asked_for(tmp_path):
    path = tmp_path / "ramparts.yaml"
    path.write_text(topology_text(7101, 7102))
    result = runner.invoke(app, ["run", "--topology", str(path), "--check", "--access-log", "off"])
    assert result.exit_code == 1
    assert "no mTLS context" in result.stderr


def test_missing_file_is_an_error(tmp_path):
    result = runner.invoke(app, ["run", "--topology", str(tmp_path / "nope.yaml"), "--check"])
    assert result.exit_code == 1
    assert "cannot read" in result.stderr


def test_identity_dir_gives_mtls_upstreams(tmp_path):
    """With the gateway's SVID directory, no --plain-upstreams is needed."""
    from ramparts.config import parse_topology
    from ramparts.identity import CertificateAuthority, attest_local

    text = topology_text(7101, 7102)
    ca = CertificateAuthority.in_memory("test.local")
    dirs = attest_local(ca, parse_topology(text), tmp_path / "identity", services=["gateway"])
    path = tmp_path / "ramparts.yaml"
    path.write_text(text)
    result = runner.invoke(
        app,
        ["run", "--topology", str(path), "--identity-dir", str(dirs["gateway"]), "--check",
         "--access-log", "off"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "ramparts.yaml"
        path.write_text(topology_text(7101, 7102).replace("127.0.0.1:8443", f"127.0.0.1:{port}"))
        result = runner.invoke(
            app, ["run", "--topology", str(path), "--plain-upstreams", "--access-log", "off"]
        )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot serve on")
