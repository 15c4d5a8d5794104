"""``ramparts up --isolate``: each service in its own network namespace, nftables in between.

Layout (Linux, root or CAP_NET_ADMIN)::

    host ns ──veth── hub ns ──veth── svc ns (one per service, and the gateway)
                      │
                      └ nftables forward chain: default drop; only the
                        topology's edges, each on the callee's port; the host
                        reaches the gateway's port and nothing else

Addresses come from 198.18.0.0/15, the block RFC 2544 reserves for network
benchmarking: never routed on the internet, so a lab address cannot be
confused with anyone else's. Service ``i`` gets 198.18.i.0/30 (hub .1,
service .2); the host link is 198.19.255.0/30.

Every drop is counted per (source, destination, port) in an nftables set, so
the platform can turn drops into events naming both services.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from ramparts.config import GATEWAY, Topology
from ramparts.config._topology import PLATFORM_SERVICES_FOR_WORKLOADS

BASE = ipaddress.IPv4Network("198.18.0.0/16")
HOST_LINK = ipaddress.IPv4Network("198.19.255.0/30")
NFT_TABLE = "ramparts"


class IsolationError(RuntimeError):
    """Isolation cannot be set up here; the message says why and what to do instead."""


@dataclass(frozen=True)
class Node:
    name: str
    netns: str
    hub_if: str  # hub side of the veth
    node_if: str  # the namespace's side
    hub_ip: ipaddress.IPv4Address
    ip: ipaddress.IPv4Address
    port: int


@dataclass(frozen=True)
class Plan:
    tag: str  # short, unique per run: every name we create carries it
    hub: str
    nodes: dict[str, Node]
    edges: tuple[tuple[str, str], ...]
    egress: tuple[
        tuple[str, str, int], ...
    ]  # (service, address range, port) with literal addresses
    host_if: str
    hub_host_if: str
    ruleset: str = field(repr=False)

    def address_of(self, name: str) -> str:
        node = self.nodes[name]
        return f"{node.ip}:{node.port}"

    def name_of(self, ip: str) -> str | None:
        return next((n.name for n in self.nodes.values() if str(n.ip) == ip), None)


def plan(topology: Topology, *, tag: str = "rp") -> Plan:
    """Compute names, addresses and the nftables ruleset; touches nothing."""
    if not tag.isalnum() or len(tag) > 6:
        raise ValueError(
            f"tag must be 1-6 letters or digits (interface names are short), got {tag!r}"
        )
    workloads = [GATEWAY, *topology.services]
    names = [*workloads, *PLATFORM_SERVICES_FOR_WORKLOADS, "witness"]
    if len(names) > 250:
        raise ValueError("at most 250 isolated workloads")
    nodes: dict[str, Node] = {}
    for i, name in enumerate(names, start=1):
        subnet = ipaddress.IPv4Network(f"198.18.{i}.0/30")
        if name == GATEWAY:
            port = topology.gateway.listen.port
        elif name in topology.services:
            port = topology.services[name].listen.port
        else:
            port = getattr(topology.platform, name).port
        nodes[name] = Node(
            name=name,
            netns=f"{tag}-{name}",
            hub_if=f"{tag}h{i}",
            node_if=f"{tag}n{i}",
            hub_ip=subnet.network_address + 1,
            ip=subnet.network_address + 2,
            port=port,
        )
    # Workloads reach the platform endpoints (identity renewal, leases, audit shipping).
    platform_edges = {(w, c) for w in workloads for c in PLATFORM_SERVICES_FOR_WORKLOADS}
    # The log asks its witness to cosign; workloads renew at the CA and ship to the log.
    platform_edges |= {("audit", "witness"), ("audit", "ca"), ("secrets", "ca")}
    edges = tuple(sorted(topology.edges | platform_edges))
    egress = tuple(
        (name, str(rule.network), rule.port)
        for name, svc in topology.services.items()
        for rule in svc.egress
        if rule.network is not None
    )
    p = Plan(
        tag=tag,
        hub=f"{tag}-hub",
        nodes=nodes,
        edges=edges,
        egress=egress,
        host_if=f"{tag}host",
        hub_host_if=f"{tag}hub0",
        ruleset="",
    )
    return Plan(**{**p.__dict__, "ruleset": _ruleset(p)})


def _ruleset(p: Plan) -> str:
    host_ip = HOST_LINK.network_address + 1
    lines = [
        f"table inet {NFT_TABLE} {{",
        "  set drops {",
        "    type ipv4_addr . ipv4_addr . inet_service",
        "    flags dynamic",
        "    counter",
        "    size 65536",
        "  }",
        "  chain forward {",
        "    type filter hook forward priority 0; policy drop;",
        "    ct state established,related accept",
        "    ct state invalid drop",
    ]
    for caller, callee in p.edges:
        src, dst = p.nodes[caller], p.nodes[callee]
        lines.append(
            f"    ip saddr {src.ip} ip daddr {dst.ip} tcp dport {dst.port} ct state new accept"
            f' comment "{caller} -> {callee}"'
        )
    for name, network, port in p.egress:
        lines.append(
            f"    ip saddr {p.nodes[name].ip} ip daddr {network} tcp dport {port}"
            f' ct state new accept comment "{name} egress"'
        )
    gw = p.nodes[GATEWAY]
    lines.append(
        f"    ip saddr {host_ip} ip daddr {gw.ip} tcp dport {gw.port} ct state new accept"
        ' comment "host -> gateway"'
    )
    lines += [
        "    meta l4proto tcp add @drops { ip saddr . ip daddr . tcp dport }",
        "    meta l4proto udp add @drops { ip saddr . ip daddr . udp dport }",
        "    counter drop",
        "  }",
        "  chain input {",
        # The hub itself offers nothing to the namespaces.
        "    type filter hook input priority 0; policy drop;",
        "    ct state established,related accept",
        "    iif lo accept",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def check_permitted() -> None:
    """Raise IsolationError with advice unless we can create namespaces and load nftables."""
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            raise IsolationError(
                f"'{tool}' is not installed (apt-get install iproute2 nftables); "
                "or run 'ramparts up' without --isolate"
            )
    probe = _call(["ip", "netns", "add", "rp-probe-perm"], check=False)
    if probe.returncode != 0:
        raise IsolationError(
            "cannot create network namespaces here (needs root or CAP_NET_ADMIN): "
            f"{probe.stderr.strip()}; run 'ramparts up' without --isolate"
        )
    _call(["ip", "netns", "del", "rp-probe-perm"], check=False)


def _call(
    argv: Sequence[str], *, input_text: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The one place this module runs a command: ``ip`` or ``nft`` by absolute path."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise IsolationError(f"'{argv[0]}' is not installed (apt-get install iproute2 nftables)")
    # Arguments are names and addresses derived from the validated topology.
    res = subprocess.run(  # noqa: S603
        [exe, *argv[1:]], input=input_text, capture_output=True, text=True, check=False
    )
    if check and res.returncode != 0:
        raise IsolationError(f"{' '.join(argv)} failed: {res.stderr.strip()}")
    return res


def _run(argv: Sequence[str], *, input_text: str | None = None) -> None:
    _call(argv, input_text=input_text)


def _ns(netns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


def apply(p: Plan) -> None:
    """Create namespaces, links, routes and the ruleset. Undo with :func:`teardown`."""
    check_permitted()
    # One isolated system per host: the lab block and the host link are fixed.
    held = _call(["ip", "route", "show", str(BASE)], check=False).stdout.strip()
    if held:
        raise IsolationError(
            f"{BASE} is already routed ({held}): another isolated run, or a crashed one, "
            "holds it; stop it, or remove its link with 'ip link del <dev>'"
        )
    try:
        _run(["ip", "netns", "add", p.hub])
        _run(_ns(p.hub, "ip", "link", "set", "lo", "up"))
        _run(_ns(p.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        for node in p.nodes.values():
            _run(["ip", "netns", "add", node.netns])
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    node.hub_if,
                    "netns",
                    p.hub,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    node.node_if,
                    "netns",
                    node.netns,
                ]
            )
            _run(_ns(p.hub, "ip", "addr", "add", f"{node.hub_ip}/30", "dev", node.hub_if))
            _run(_ns(p.hub, "ip", "link", "set", node.hub_if, "up"))
            _run(_ns(node.netns, "ip", "link", "set", "lo", "up"))
            _run(_ns(node.netns, "ip", "addr", "add", f"{node.ip}/30", "dev", node.node_if))
            _run(_ns(node.netns, "ip", "link", "set", node.node_if, "up"))
            _run(_ns(node.netns, "ip", "route", "add", "default", "via", str(node.hub_ip)))
        host_ip, hub_ip = HOST_LINK.network_address + 1, HOST_LINK.network_address + 2
        _run(
            [
                "ip",
                "link",
                "add",
                p.host_if,
                "type",
                "veth",
                "peer",
                "name",
                p.hub_host_if,
                "netns",
                p.hub,
            ]
        )
        _run(["ip", "addr", "add", f"{host_ip}/30", "dev", p.host_if])
        _run(["ip", "link", "set", p.host_if, "up"])
        _run(_ns(p.hub, "ip", "addr", "add", f"{hub_ip}/30", "dev", p.hub_host_if))
        _run(_ns(p.hub, "ip", "link", "set", p.hub_host_if, "up"))
        # The whole lab block goes to the hub, so nothing the host sends to a lab
        # address can leave the machine; the hub's ruleset decides what passes.
        _run(["ip", "route", "add", str(BASE), "via", str(hub_ip)])
        _run(_ns(p.hub, "nft", "-f", "-"), input_text=p.ruleset)
    except IsolationError:
        teardown(p)
        raise


def teardown(p: Plan) -> None:
    """Remove everything :func:`apply` created; safe to call twice or after a partial apply."""
    _call(["ip", "link", "del", p.host_if], check=False)
    for node in p.nodes.values():
        _call(["ip", "netns", "del", node.netns], check=False)
    _call(["ip", "netns", "del", p.hub], check=False)


@dataclass(frozen=True)
class Drop:
    source: str  # service name, "host" or the address
    destination: str
    port: int
    packets: int


def drops(p: Plan) -> list[Drop]:
    """Dropped flows so far, with both ends named by the topology."""
    res = _call(_ns(p.hub, "nft", "-j", "list", "set", "inet", NFT_TABLE, "drops"))
    out: list[Drop] = []
    host = str(HOST_LINK.network_address + 1)

    def name(ip: str) -> str:
        return "host" if ip == host else p.name_of(ip) or ip

    for item in json.loads(res.stdout)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            e = elem.get("elem", elem)
            src, dst, port = e["val"]["concat"]
            packets = e.get("counter", {}).get("packets", 0)
            out.append(Drop(name(src), name(dst), int(port), int(packets)))
    return out


def isolated_topology_text(topology: Topology, p: Plan) -> str:
    """The topology with every listen address moved to its namespace's address."""
    text = topology.text
    for name, node in p.nodes.items():
        if name == GATEWAY:
            old = str(topology.gateway.listen)
        elif name in topology.services:
            old = str(topology.services[name].listen)
        else:
            old = str(getattr(topology.platform, name))
        text = _replace_listen(text, old, f"{node.ip}:{node.port}", name)
    return text


def _replace_listen(text: str, old: str, new: str, name: str) -> str:
    if old in text:
        return text.replace(old, new)
    # A platform endpoint left at its default is not in the file: add it.
    block = "platform:\n" if "platform:\n" in text else None
    line = f"  {name}: {new}\n"
    return text.replace(block, block + line) if block else text + f"platform:\n{line}"


def probe_argv(p: Plan, host: str, port: int) -> list[str]:
    """A TCP connect from inside the hub (the host may not reach services at all)."""
    return _ns(p.hub, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}")


def exec_argv(p: Plan, name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside ``name``'s namespace."""
    return _ns(p.nodes[name].netns, *argv)
