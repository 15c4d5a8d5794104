"""``ramparts up --isolate``: the bank across network namespaces, with real packets.

A customer is onboarded through the gateway (host -> gateway ns -> accounts ns,
each hop allowed by nftables); the host's direct attempt on a service is
dropped and counted with both ends named; Ctrl-C removes every namespace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.platform._up import start_up, stop_up, topology_file

from ramparts.config import load_topology
from ramparts.platform import isolate

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None,
    reason="needs root and nftables (the test command installs nftables as root)",
)


def test_up_isolated(tmp_path: Path) -> None:
    topology, _ = topology_file(tmp_path)
    state = tmp_path / "state"
    proc = start_up(topology, state, "--isolate")
    try:
        moved = load_topology(state / "isolated.yaml")
        gateway = f"http://{moved.gateway.listen}"
        token = subprocess.run(
            [sys.executable, "-m", "ramparts", "token", "--sub", "ngozi",
             "--scope", "accounts:write", "--state", str(state)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        body = {"name": "Ngozi", "bvn": "22255566677", "nin": "77766655544"}
        r = httpx.post(
            f"{gateway}/v1/customers", json=body, headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )  # fmt: skip
        assert r.status_code == 201, r.text

        accounts = moved.services["accounts"].listen
        with pytest.raises(OSError):
            socket.create_connection((accounts.host, accounts.port), timeout=1).close()
        plan = isolate.plan(load_topology(topology), tag="rp")
        seen = {(d.source, d.destination) for d in isolate.drops(plan) if d.packets}
        assert ("host", "accounts") in seen
    finally:
        stop_up(proc)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert "rp-" not in listed.stdout
