"""Local attestation and the ``ramparts ca`` CLI, run in-process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from spiffe import X509Svid
from typer.testing import CliRunner

from ramparts.events import EventEmitter, MemorySink, SecurityEvent
from ramparts.identity import (
    CertificateAuthority,
    IdentitySource,
    SVIDRotator,
    TrustBundle,
    attest_local,
)
from ramparts.identity.cli import app

runner = CliRunner()


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class TestAttestLocal:
    def test_writes_each_services_first_svid_privately(self, tmp_path, topo) -> None:
        ca = CertificateAuthority.in_memory(topo.trust_domain)
        out = tmp_path / "identity"
        paths = attest_local(ca, topo, out)
        assert set(paths) == set(topo.services)
        assert _mode(out) == 0o700
        for name, d in paths.items():
            assert _mode(d) == 0o700
            assert _mode(d / "svid.key") == 0o600
            svid = X509Svid.load(str(d / "svid.pem"), str(d / "svid.key"), encoding=Encoding.PEM)
            assert str(svid.spiffe_id) == topo.spiffe_id(name)
            src = IdentitySource.from_dir(d)
            assert src.spiffe_id == topo.spiffe_id(name)
            assert src.bundle == ca.bundle()

    def test_platform_components_can_be_attested(self, tmp_path, topo) -> None:
        ca = CertificateAuthority.in_memory(topo.trust_domain)
        paths = attest_local(ca, topo, tmp_path, services=["gateway"])
        assert IdentitySource.from_dir(paths["gateway"]).spiffe_id == topo.spiffe_id("gateway")

    def test_unknown_service_and_wrong_trust_domain_are_refused(self, tmp_path, topo) -> None:
        with pytest.raises(KeyError, match="nope"):
            attest_local(
                CertificateAuthority.in_memory(topo.trust_domain), topo, tmp_path, services=["nope"]
            )
        with pytest.raises(ValueError, match="trust domain"):
            attest_local(CertificateAuthority.in_memory("other.local"), topo, tmp_path)


@pytest.fixture
def topology_file(tmp_path):
    from importlib.resources import files

    path = tmp_path / "ramparts.yaml"
    path.write_text(files("ramparts.config").joinpath("refbank.yaml").read_text())
    return path


class TestCLI:
    def test_init_issue_bundle_status_rotate(self, tmp_path, topology_file) -> None:
        ca_dir = tmp_path / "ca"
        r = runner.invoke(app, ["init", "--dir", str(ca_dir), "--topology", str(topology_file)])
        assert r.exit_code == 0, r.output
        assert "refbank.local" in r.output
        assert _mode(ca_dir / "authorities" / "1.key") == 0o600

        out = tmp_path / "id"
        r = runner.invoke(
            app,
            [
                "issue",
                "ledger",
                "payments",
                "--dir",
                str(ca_dir),
                "--topology",
                str(topology_file),
                "--out",
                str(out),
            ],
        )
        assert r.exit_code == 0, r.output
        assert "spiffe://refbank.local/ns/refbank/sa/ledger" in r.output
        assert "PRIVATE KEY" not in r.output
        assert (out / "payments" / "svid.key").exists()

        r = runner.invoke(app, ["bundle", "--dir", str(ca_dir)])
        assert r.exit_code == 0
        assert "PRIVATE" not in r.output
        bundle = TrustBundle.from_jwks("refbank.local", json.loads(r.output))
        assert len(bundle.authorities) == 1

        assert runner.invoke(app, ["rotate", "--dir", str(ca_dir)]).exit_code == 0
        r = runner.invoke(app, ["status", "--dir", str(ca_dir)])
        assert r.exit_code == 0
        assert r.output.count("ramparts CA") == 2
        assert runner.invoke(app, ["rotate", "--dir", str(ca_dir), "--activate"]).exit_code == 0
        assert CertificateAuthority.load(ca_dir).active.generation == 2

        r = runner.invoke(app, ["bundle", "--dir", str(ca_dir), "--format", "pem"])
        assert r.output.count("BEGIN CERTIFICATE") == 2

    def test_insecure_key_is_a_clear_error(self, tmp_path) -> None:
        ca_dir = tmp_path / "ca"
        assert (
            runner.invoke(
                app, ["init", "--dir", str(ca_dir), "--trust-domain", "x.local"]
            ).exit_code
            == 0
        )
        os.chmod(ca_dir / "authorities" / "1.key", 0o644)
        r = runner.invoke(app, ["bundle", "--dir", str(ca_dir)])
        assert r.exit_code == 1
        assert "Error:" in r.stderr
        assert "chmod 600" in r.stderr

    def test_passphrase_file(self, tmp_path) -> None:
        pw = tmp_path / "pw"
        pw.write_text("s3cret\n")
        os.chmod(pw, 0o600)
        ca_dir = tmp_path / "ca"
        args = ["--dir", str(ca_dir), "--passphrase-file", str(pw)]
        assert runner.invoke(app, ["init", "--trust-domain", "x.local", *args]).exit_code == 0
        assert runner.invoke(app, ["bundle", *args]).exit_code == 0
        r = runner.invoke(app, ["bundle", "--dir", str(ca_dir)])
        assert r.exit_code == 1 and "Error:" in r.stderr

    def test_unknown_service(self, tmp_path, topology_file) -> None:
        ca_dir = tmp_path / "ca"
        runner.invoke(app, ["init", "--dir", str(ca_dir), "--topology", str(topology_file)])
        r = runner.invoke(
            app,
            [
                "issue",
                "nope",
                "--dir",
                str(ca_dir),
                "--topology",
                str(topology_file),
                "--out",
                str(tmp_path / "o"),
            ],
        )
        assert r.exit_code == 1
        assert "no service named 'nope'" in r.stderr

    def test_init_needs_a_trust_domain(self, tmp_path) -> None:
        r = runner.invoke(app, ["init", "--dir", str(tmp_path / "ca")])
        assert r.exit_code == 2


def test_ca_serve_renews_over_mtls_end_to_end(tmp_path, topology_file, topo) -> None:
    """`ramparts ca serve` in its own process: a workload renews through it; events land on disk."""
    ca_dir = tmp_path / "ca"
    assert (
        runner.invoke(
            app, ["init", "--dir", str(ca_dir), "--topology", str(topology_file)]
        ).exit_code
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from ramparts.identity.cli import app; app()",
            "serve", "--dir", str(ca_dir), "--topology", str(topology_file),
            "--port", str(port), "--events", str(events),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "ca serve did not start listening"
                time.sleep(0.05)
        ca = CertificateAuthority.load(ca_dir)
        src = IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle())
        first = src.svid.leaf.serial_number
        rotator = SVIDRotator(
            src, f"https://127.0.0.1:{port}", emitter=EventEmitter([MemorySink()], service="ledger")
        )
        asyncio.run(rotator.renew_once())
        assert src.svid.leaf.serial_number != first
    finally:
        proc.terminate()
        proc.wait(10)
    issued = [SecurityEvent.from_dict(json.loads(line)) for line in events.read_text().splitlines()]
    assert any(
        e.type == "ca.issued" and e.detail["spiffe_id"] == topo.spiffe_id("ledger") for e in issued
    )


def test_source_picks_up_files_rotated_by_an_external_agent(tmp_path, topo) -> None:
    """The SPIRE/spiffe-helper path: another process rewrites the files; the source follows."""
    ca = CertificateAuthority.in_memory(topo.trust_domain)
    d = attest_local(ca, topo, tmp_path, services=["ledger"])["ledger"]
    src = IdentitySource.from_dir(d)
    assert src.refresh_from_dir(d) is False
    before = src.server_context()
    ca.prepare_rotation()
    IdentitySource(ca.issue_svid(topo.spiffe_id("ledger")), ca.bundle()).save(d)
    assert src.refresh_from_dir(d) is True
    assert src.bundle.sequence == ca.bundle().sequence
    assert src.server_context() is not before
