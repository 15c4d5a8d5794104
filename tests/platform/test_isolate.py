"""``--isolate`` with real namespaces and real packets: allowed edges connect, the rest drop."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ramparts.config import GATEWAY, default_topology
from ramparts.platform.isolate import IsolationError, Plan, apply, drops, exec_argv, plan, teardown

LISTEN = """
import socket, sys, time
socks = []
for port in sys.argv[2:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(port))); s.listen(); socks.append(s)
print("up", flush=True)
time.sleep(120)
"""

PROBE = """
import asyncio, json, sys
async def one(host, port):
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 0.7)
        w.close(); return True
    except (OSError, asyncio.TimeoutError):
        return False
async def main():
    targets = json.loads(sys.argv[1])
    results = await asyncio.gather(*(one(h, p) for h, p in targets))
    print(json.dumps(results))
asyncio.run(main())
"""


def _can_isolate() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create network namespaces"
    if not shutil.which("nft"):
        return "nft is not installed (the test command installs nftables as root)"
    return None


pytestmark = pytest.mark.skipif(_can_isolate() is not None, reason=str(_can_isolate()))


def test_plan_is_pure_and_derived_from_topology() -> None:
    p = plan(default_topology(), tag="x1")
    assert p.address_of("ledger") == "198.18.3.2:7102"
    assert '"statements -> ledger"' in p.ruleset
    assert '"statements -> payments"' not in p.ruleset
    assert "policy drop" in p.ruleset


@pytest.fixture
def isolated() -> Iterator[Plan]:
    p = plan(default_topology(), tag=secrets.token_hex(2))
    apply(p)
    listeners = []
    try:
        for node in p.nodes.values():
            proc = subprocess.Popen(
                exec_argv(
                    p,
                    node.name,
                    [sys.executable, "-c", LISTEN, str(node.ip), str(node.port), "5432"],
                ),
                stdout=subprocess.PIPE,
                text=True,
            )
            listeners.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        yield p
    finally:
        for proc in listeners:
            proc.kill()
            proc.wait()
        teardown(p)


def _probe(p: Plan, source: str, targets: list[tuple[str, int]]) -> list[bool]:
    argv = [sys.executable, "-c", PROBE, json.dumps(targets)]
    if source != "host":
        argv = exec_argv(p, source, argv)
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def test_only_topology_edges_pass(isolated: Plan) -> None:
    p = isolated
    names = list(p.nodes)
    wrong = []
    for src in names:
        targets = [(str(p.nodes[d].ip), p.nodes[d].port) for d in names if d != src]
        targets += [(str(p.nodes[d].ip), 5432) for d in names if d != src]  # never a database port
        results = _probe(p, src, targets)
        dests = [d for d in names if d != src]
        for dst, ok in zip(dests, results[: len(dests)], strict=True):
            if ok != ((src, dst) in p.edges):
                wrong.append((src, dst, ok))
        assert not any(results[len(dests) :]), f"{src} reached a port 5432"
    assert wrong == []


def test_host_reaches_only_the_gateway(isolated: Plan) -> None:
    p = isolated
    targets = [(str(n.ip), n.port) for n in p.nodes.values()]
    results = dict(zip(p.nodes, _probe(p, "host", targets), strict=True))
    assert results.pop(GATEWAY) is True
    assert not any(results.values()), results


def test_drops_are_counted_with_service_names(isolated: Plan) -> None:
    p = isolated
    _probe(p, "statements", [(str(p.nodes["payments"].ip), p.nodes["payments"].port)])
    seen = {(d.source, d.destination, d.port) for d in drops(p) if d.packets > 0}
    assert ("statements", "payments", p.nodes["payments"].port) in seen


def test_teardown_leaves_nothing() -> None:
    p = plan(default_topology(), tag=secrets.token_hex(2))
    apply(p)
    teardown(p)
    listed = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert p.tag not in listed
    links = subprocess.run(["ip", "link"], capture_output=True, text=True, check=True).stdout
    assert p.host_if not in links


def test_a_second_isolated_system_is_refused_clearly() -> None:
    first = plan(default_topology(), tag=secrets.token_hex(2))
    apply(first)
    try:
        second = plan(default_topology(), tag=secrets.token_hex(2))
        with pytest.raises(IsolationError, match="already routed"):
            apply(second)
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout
        assert second.hub not in listed  # nothing half-made is left behind
    finally:
        teardown(first)
