"""``ramparts secrets`` in-process: init writes 0600 key material, unseal over mTLS, status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ramparts.events import EventEmitter, MemorySink
from ramparts.secrets import Broker, create_app
from ramparts.secrets.cli import app

from ._mtls import MTLSServer
from .conftest import PKI, make_topology

runner = CliRunner()


def test_init_writes_shares_0600_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "init.json"
    r = runner.invoke(app, ["init", "--storage", str(tmp_path / "s.db"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(out.read_text())
    assert len(doc["keys"]) == 5 and doc["secret_threshold"] == 3
    assert doc["root_token"].startswith("hvs.")
    assert doc["root_token"] not in r.output and doc["keys"][0] not in r.output
    again = runner.invoke(app, ["init", "--storage", str(tmp_path / "s.db"), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    other = tmp_path / "other.json"
    twice = runner.invoke(app, ["init", "--storage", str(tmp_path / "s.db"), "--out", str(other)])
    assert twice.exit_code == 1 and "already initialized" in twice.output
    assert not other.exists()


def test_init_with_key_file(tmp_path: Path) -> None:
    out, key = tmp_path / "init.json", tmp_path / "unseal.key"
    r = runner.invoke(
        app,
        ["init", "--storage", str(tmp_path / "s.db"), "--out", str(out), "--key-file", str(key)],
    )
    assert r.exit_code == 0, r.output
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert "keys" not in json.loads(out.read_text())


def test_unseal_and_status_over_mtls(pki: PKI, tmp_path: Path) -> None:
    broker = Broker(
        tmp_path / "s.db",
        make_topology({"svc-a": "unused-a", "svc-b": "unused-b"}),
        emitter=EventEmitter([MemorySink()], service="secrets"),
        role_prefix="rptcli_",
    )
    shares, _ = broker.initialize_shamir(5, 3)
    leaf, op = pki.leaves["server"], pki.leaves["operator"]
    server = MTLSServer(create_app(broker), str(leaf.cert), str(leaf.key), str(pki.ca_cert))
    server.start()
    tls = [
        "--cert",
        str(op.cert),
        "--key",
        str(op.key),
        "--ca",
        str(pki.ca_cert),
        "--url",
        server.url,
    ]
    try:
        mine = tmp_path / "share-1.txt"
        mine.write_text(shares[0].hex() + "\n" + shares[3].hex() + "\n")
        r = runner.invoke(app, ["unseal", "--share-file", str(mine), *tls])
        assert r.exit_code == 0, r.output
        assert "2 of 3" in r.output and broker.sealed
        s = runner.invoke(app, ["status", *tls])
        assert "sealed" in s.output and "progress=2" in s.output
        bad = tmp_path / "bad.txt"
        bad.write_text("zz-not-a-share\n")
        refused = runner.invoke(app, ["unseal", "--share-file", str(bad), *tls])
        assert refused.exit_code == 1 and "Error: unseal refused (400)" in refused.output
        last = tmp_path / "share-3.txt"
        last.write_text(shares[4].hex() + "\n")
        done = runner.invoke(app, ["unseal", "--share-file", str(last), *tls])
        assert done.exit_code == 0 and "unsealed" in done.output
        assert not broker.sealed
    finally:
        server.stop()


def test_unseal_reports_unreachable_broker(pki: PKI, tmp_path: Path) -> None:
    share = tmp_path / "s.txt"
    share.write_text("00ff\n")
    op = pki.leaves["operator"]
    r = runner.invoke(
        app,
        [
            "unseal",
            "--share-file",
            str(share),
            "--cert",
            str(op.cert),
            "--key",
            str(op.key),
            "--ca",
            str(pki.ca_cert),
            "--url",
            "https://127.0.0.1:1",
        ],
    )
    assert r.exit_code == 1 and "cannot reach the broker" in r.output


def test_serve_starts_sealed_and_unseals_end_to_end(tmp_path: Path) -> None:
    """``ramparts secrets serve`` as a process behind the identity module's mTLS server."""
    import signal
    import socket
    import subprocess
    import sys

    from ramparts import identity
    from ramparts.secrets.client import SecretsClient, SecretsClientError

    from .conftest import sid, topology_text, wait_for

    topo = tmp_path / "ramparts.yaml"
    topo.write_text(topology_text({"svc-a": "unused-a", "svc-b": "unused-b"}))
    ca = identity.CertificateAuthority.in_memory("test.local")
    bundle = ca.bundle()
    dirs = {}
    for name, spiffe in (
        ("secrets", sid("secrets", "ramparts")),
        ("operator", sid("console", "ramparts")),
        ("svc-a", sid("svc-a")),
    ):
        dirs[name] = tmp_path / f"id-{name}"
        identity.IdentitySource(ca.issue_svid(spiffe), bundle).save(dirs[name])
    storage, out = tmp_path / "s.db", tmp_path / "init.json"
    r = runner.invoke(
        app, ["init", "--storage", str(storage), "--out", str(out), "--topology", str(topo)]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from ramparts.secrets.cli import app; app(sys.argv[1:])",
            "serve",
            "--storage",
            str(storage),
            "--identity-dir",
            str(dirs["secrets"]),
            "--topology",
            str(topo),
            "--port",
            str(port),
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    common = ["--url", url, "--identity-dir", str(dirs["operator"]), "--topology", str(topo)]
    try:
        wait_for(
            lambda: (
                runner.invoke(app, ["status", *common]).exit_code == 0 or proc.poll() is not None
            ),
            "the broker to listen",
            timeout=30,
        )
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert " sealed " in runner.invoke(app, ["status", *common]).output
        shares = tmp_path / "three.txt"
        shares.write_text("\n".join(doc["keys"][:3]) + "\n")
        done = runner.invoke(app, ["unseal", "--share-file", str(shares), *common])
        assert done.exit_code == 0 and "unsealed" in done.output, done.output
        source = identity.IdentitySource.from_dir(dirs["svc-a"])
        client = SecretsClient.for_workload(source, url, sid("secrets", "ramparts"))
        with pytest.raises(SecretsClientError) as err:
            client.read_kv("svc-a/none")
        assert err.value.status == 404  # logged in, allowed, nothing there
        client.close()
        # a client expecting a different broker identity refuses to talk
        wrong = SecretsClient.for_workload(source, url, sid("svc-b"))
        with pytest.raises(Exception, match=r"expected spiffe://test\.local/ns/tst/sa/svc-b"):
            wrong.read_kv("svc-a/none")
        wrong.close()
        events = (tmp_path / "audit.jsonl").read_text()
        assert '"secrets.request"' in events and doc["keys"][0] not in events
        assert oct((tmp_path / "audit.jsonl").stat().st_mode & 0o777) == "0o600"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
