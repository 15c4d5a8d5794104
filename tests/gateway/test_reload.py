"""Hot reload: new routes and limits without dropping connections; bad config refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

from tests.gateway.conftest import Client, topology_text, wait_for

from ramparts.config import parse_topology

NEW_ROUTE = """
    - prefix: /v1/accounts
      service: accounts
      auth: none
    - prefix: /v2/accounts
      service: accounts
      auth: none
"""


def test_reload_adds_routes_without_dropping_connections(upstream, upstream2, make_gateway):
    gw = make_gateway(topology_text(upstream.port, upstream2.port))
    c = Client(gw.port)
    assert c.request("GET", "/v2/accounts")[0] == 404
    new = parse_topology(topology_text(upstream.port, upstream2.port, routes=NEW_ROUTE))
    assert gw.call(lambda: gw.gateway.reload(new)) is True
    # The same client connection, and the same pooled upstream connection, keep working.
    assert c.request("GET", "/v2/accounts")[0] == 200
    assert c.request("GET", "/v1/accounts")[0] == 200
    assert c.request("GET", "/v1/payments")[0] == 404  # route removed
    assert upstream.connections == 1
    assert gw.gateway.state.generation == 2


def test_invalid_reload_is_refused_and_old_config_kept(upstream, upstream2, make_gateway, tmp_path):
    path = tmp_path / "ramparts.yaml"
    path.write_text(topology_text(upstream.port, upstream2.port))
    gw = make_gateway(parse_topology(path.read_text(), source=str(path)))
    gw.gateway.path = path
    path.write_text(
        topology_text(upstream.port, upstream2.port).replace("service: accounts", "service: nosuch")
    )
    ok, message = gw.call(gw.gateway.reload_with_reason)
    assert ok is False
    assert "nosuch" in message
    assert gw.gateway.state.generation == 1
    c = Client(gw.port)
    assert c.request("GET", "/v1/accounts")[0] == 200
    refused = [x for x in gw.log_lines() if x.get("event") == "gateway.reload_refused"]
    assert len(refused) == 1
    assert "nosuch" in refused[0]["reason"]


def test_admin_reload_endpoint_and_metrics(upstream, upstream2, make_gateway, tmp_path):
    path = tmp_path / "ramparts.yaml"
    path.write_text(topology_text(upstream.port, upstream2.port))
    gw = make_gateway(parse_topology(path.read_text(), source=str(path)))
    gw.gateway.path = path
    c = Client(gw.port)
    assert c.request("GET", "/v1/accounts")[0] == 200
    assert c.request("GET", "/v1/none")[0] == 404
    admin = f"http://127.0.0.1:{gw.gateway.admin_port}"
    metrics = urllib.request.urlopen(f"{admin}/metrics", timeout=5).read().decode()
    assert 'ramparts_gateway_requests_total{route="/v1/accounts",status="200"} 1.0' in metrics
    assert 'ramparts_gateway_denies_total{type="route.unknown"} 1.0' in metrics
    assert "ramparts_gateway_request_duration_seconds_bucket" in metrics
    assert "ramparts_gateway_client_connections 1.0" in metrics
    path.write_text(topology_text(upstream.port, upstream2.port, routes=NEW_ROUTE))
    req = urllib.request.Request(f"{admin}/-/reload", method="POST", data=b"")
    body = json.loads(urllib.request.urlopen(req, timeout=5).read())
    assert body["applied"] is True
    assert c.request("GET", "/v2/accounts")[0] == 200
    path.write_text("version: 1\n")
    req = urllib.request.Request(f"{admin}/-/reload", method="POST", data=b"")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("expected 409")
    except urllib.error.HTTPError as exc:
        assert exc.code == 409
        assert json.loads(exc.read())["applied"] is False
    metrics = urllib.request.urlopen(f"{admin}/metrics", timeout=5).read().decode()
    assert 'ramparts_gateway_reloads_total{result="refused"} 1.0' in metrics
    # The data path never serves the admin endpoints.
    assert c.request("GET", "/metrics")[0] == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_and_sighup_reloads(upstream, upstream2, tmp_path):
    """`ramparts gateway run` in a real process; SIGHUP applies a new file, a bad one is refused."""
    port, admin = _free_port(), _free_port()

    def text(routes=None):
        return topology_text(upstream.port, upstream2.port, routes=routes).replace(
            "listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{port}\n  admin_listen: 127.0.0.1:{admin}"
        )

    path = tmp_path / "ramparts.yaml"
    path.write_text(text())
    log = tmp_path / "access.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ramparts.gateway.cli import app; app()",
            "run",
            "--topology",
            str(path),
            "--plain-upstreams",
            "--access-log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def up():
            try:
                return (
                    urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1).status
                    == 200
                )
            except OSError:
                return False

        wait_for(up, what="gateway process to serve")
        c = Client(port)
        assert c.request("GET", "/v2/accounts")[0] == 404
        path.write_text(text(NEW_ROUTE))
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(
            lambda: Client(port).request("GET", "/v2/accounts")[0] == 200, what="reload applied"
        )
        assert c.request("GET", "/v2/accounts")[0] == 200  # same connection survived
        path.write_text("not: [valid")
        os.kill(proc.pid, signal.SIGHUP)
        wait_for(lambda: "gateway.reload_refused" in log.read_text(), what="refusal logged")
        assert c.request("GET", "/v2/accounts")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_cli_workers_share_port_and_metrics(upstream, upstream2, tmp_path):
    """Two worker processes on one port (SO_REUSEPORT); /metrics counts both workers' requests."""
    port, admin = _free_port(), _free_port()
    path = tmp_path / "ramparts.yaml"
    path.write_text(
        topology_text(upstream.port, upstream2.port).replace(
            "listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{port}\n  admin_listen: 127.0.0.1:{admin}"
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ramparts.gateway.cli import app; app()", "run",
         "--topology", str(path), "--plain-upstreams", "--access-log", "off", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def metrics() -> str:
            try:
                return (
                    urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=1)
                    .read()
                    .decode()
                )
            except OSError:
                return ""

        wait_for(lambda: "ramparts_gateway_workers 2.0" in metrics(), timeout=30,
                 what="both gateway workers to serve")  # fmt: skip
        # 20 fresh connections: the kernel spreads them over both workers (the
        # chance that all land on one is 2 in a million), so the total below
        # is only right if worker 0 adds worker 1's published counts.
        total = 20
        for _ in range(total):
            c = Client(port)
            assert c.request("GET", "/v1/accounts")[0] == 200
            c.close()
        line = (
            f'ramparts_gateway_requests_total{{route="/v1/accounts",status="200"}} {float(total)}'
        )
        wait_for(lambda: line in metrics(), timeout=10, what="metrics from both workers")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_cli_watch_reloads_on_file_change(upstream, upstream2, tmp_path):
    """``--watch``: saving a new topology applies it without a signal."""
    port = _free_port()

    def text(routes=None):
        return topology_text(upstream.port, upstream2.port, routes=routes).replace(
            "listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{port}"
        )

    path = tmp_path / "ramparts.yaml"
    path.write_text(text())
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ramparts.gateway.cli import app; app()", "run", "--topology",
         str(path), "--plain-upstreams", "--access-log", "off", "--watch"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def status(target: str) -> int:
            try:
                return Client(port).request("GET", target)[0]
            except OSError:
                return 0

        wait_for(lambda: status("/v1/accounts") == 200, timeout=30, what="gateway to serve")
        assert status("/v2/accounts") == 404
        path.write_text(text(NEW_ROUTE))
        wait_for(lambda: status("/v2/accounts") == 200, timeout=15, what="file change applied")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
