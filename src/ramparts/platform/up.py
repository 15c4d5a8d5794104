"""``ramparts up``: the whole system as local processes, from one topology.

The embedded default needs nothing but Python: the internal CA, each service
on SQLite in the state directory, each with its own identity. State lives in
``.ramparts/`` (0700) and is reused by the next run: the CA, the data, the
keys. Every run attests fresh SVIDs before starting the services.

State layout::

    .ramparts/ramparts.yaml     the built-in topology, when no --topology is given
    .ramparts/run.json          which topology file this state was started with
    .ramparts/ca/               the CA (keys 0600)
    .ramparts/identity/NAME/    each workload's SVID, key and trust bundle
    .ramparts/data/NAME.db      each service's own SQLite database
    .ramparts/keys/             service data keys (0600)
    .ramparts/events/NAME.jsonl security events, also shipped to the audit log
    .ramparts/spool/NAME/       each service's on-disk buffer for the audit log
    .ramparts/audit/            the audit log: entries, Merkle tree, log key (+ log.vkey)
    .ramparts/witness/          the witness's state and cosigning key (+ witness.vkey)
    .ramparts/logs/NAME.log     each component's masked output
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from ramparts.audit.keys import write_private_key
from ramparts.audit.note import Cosigner, Signer
from ramparts.config import GATEWAY, Topology, parse_topology
from ramparts.identity import CertificateAuthority, attest_local, ca_spiffe_id
from ramparts.platform import devissuer, isolate
from ramparts.platform.supervisor import ComponentSpec, Supervisor, tcp_ready

TOPOLOGY_FILE = "ramparts.yaml"
RUN_FILE = "run.json"


def _record_run(state: Path, topology_file: Path) -> None:
    (state / RUN_FILE).write_text(json.dumps({"topology": str(topology_file)}) + "\n")


def topology_of(state: Path) -> Path:
    """The topology file the last ``up`` in ``state`` used."""
    try:
        return Path(json.loads((state / RUN_FILE).read_text())["topology"])
    except (OSError, ValueError, KeyError) as exc:
        raise UpError(
            f"{state} holds no 'ramparts up' state ({exc}); run 'ramparts up' first"
        ) from None


class UpError(RuntimeError):
    """``up`` cannot start; the message says why and what to do."""


def prepare_state(topology: Topology, state: Path, topology_path: Path | None) -> Path:
    """Create or reuse the state directory, the CA and this run's identities.

    Returns the topology file the components will read.
    """
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    state.chmod(0o700)
    if topology_path is None:
        topology_path = state / TOPOLOGY_FILE
        topology_path.write_text(topology.text, encoding="utf-8")
    topology_path = topology_path.resolve()
    # Tools run later against this state (ramparts token, drill) read which topology it was.
    _record_run(state, topology_path)
    ca_dir = state / "ca"
    if ca_dir.is_dir() and any(ca_dir.iterdir()):
        ca = CertificateAuthority.load(ca_dir)
        if ca.trust_domain != topology.trust_domain:
            raise UpError(
                f"{ca_dir} holds a CA for trust domain {ca.trust_domain}, but the topology "
                f"says {topology.trust_domain}; use another --state directory"
            )
    else:
        ca = CertificateAuthority.init(ca_dir, topology.trust_domain)
    ca.maintain()
    attest_local(ca, topology, state / "identity", services=[*topology.services, GATEWAY, "audit"])
    for sub in ("data", "keys", "events", "logs", "spool", "audit"):
        (state / sub).mkdir(exist_ok=True, mode=0o700)
    devissuer.ensure(topology, topology_path, state)
    _ensure_audit_keys(state)
    return topology_path


LOG_ORIGIN = "ramparts.local/audit"
WITNESS_NAME = "ramparts.local/witness"


def _ensure_audit_keys(state: Path) -> None:
    """The log's signing key and the witness's cosigning key, made once (0600),
    with their public vkeys beside them for verifiers."""
    for folder, name, kind in (("audit", LOG_ORIGIN, Signer), ("witness", WITNESS_NAME, Cosigner)):
        directory = state / folder
        directory.mkdir(exist_ok=True, mode=0o700)
        key = directory / ("log.key" if folder == "audit" else "witness.key")
        if not key.exists():
            signer = kind.generate(name)
            write_private_key(key, signer)
            key.with_suffix(".vkey").write_text(signer.verifier().vkey + "\n")


def _vkey(state: Path, folder: str, stem: str) -> str:
    return (state / folder / f"{stem}.vkey").read_text().strip()


def components(
    topology: Topology,
    state: Path,
    topology_path: Path,
    *,
    isolation: isolate.Plan | None = None,
) -> list[ComponentSpec]:
    """What ``up`` runs, in the order the topology implies (each in its own network
    namespace when ``isolation`` is given)."""
    specs = _components(topology, state, topology_path)
    if isolation is None:
        return specs
    return [
        dataclasses.replace(
            spec,
            argv=tuple(isolate.exec_argv(isolation, spec.name, spec.argv)),
            ready=_hub_ready(isolation, spec.name),
        )
        for spec in specs
    ]


def _hub_ready(p: isolate.Plan, name: str) -> Callable[[], Awaitable[bool]]:
    """Readiness seen from the hub: from the host, only the gateway is reachable."""
    node = p.nodes[name]
    argv = isolate.probe_argv(p, str(node.ip), node.port)

    async def check() -> bool:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        return await proc.wait() == 0

    return check


def _components(topology: Topology, state: Path, topology_path: Path) -> list[ComponentSpec]:
    py = sys.executable
    ca = topology.platform.ca
    specs = [
        ComponentSpec(
            name="ca",
            argv=(py, "-m", "ramparts", "ca", "serve", "--dir", str(state / "ca"),
                  "--topology", str(topology_path), "--events", str(state / "events" / "ca.jsonl")),
            ready=tcp_ready(ca.host, ca.port),
            url=f"https://{ca}",
            identity=ca_spiffe_id(topology.trust_domain),
        )
    ]  # fmt: skip
    witness = topology.platform.witness
    specs.append(
        ComponentSpec(
            name="witness",
            argv=(
                py,
                "-m",
                "ramparts",
                "audit",
                "witness",
                "--state",
                str(state / "witness" / "state.db"),
                "--key-file",
                str(state / "witness" / "witness.key"),
                "--log",
                f"{LOG_ORIGIN}={_vkey(state, 'audit', 'log')}",
                "--host",
                witness.host,
                "--port",
                str(witness.port),
            ),
            ready=tcp_ready(witness.host, witness.port),
            url=f"http://{witness}",
            identity=WITNESS_NAME,
        )
    )
    audit = topology.platform.audit
    specs.append(
        ComponentSpec(
            name="audit",
            argv=(py, "-m", "ramparts", "audit", "serve", "--data", str(state / "audit"),
                  "--identity-dir", str(state / "identity" / "audit"),
                  "--topology", str(topology_path),
                  "--witness", f"http://{witness}={_vkey(state, 'witness', 'witness')}"),
            ready=tcp_ready(audit.host, audit.port),
            depends_on=("ca", "witness"),
            url=f"https://{audit}",
            identity=topology.spiffe_id("audit"),
        )
    )  # fmt: skip
    for name, svc in topology.services.items():
        specs.append(
            ComponentSpec(
                name=name,
                argv=(py, "-m", "refbank", name, "--topology", str(topology_path),
                      "--state", str(state), "--database", f"sqlite:///{state / 'data' / name}.db"),
                ready=tcp_ready(svc.listen.host, svc.listen.port),
                depends_on=("ca", "audit", *svc.calls),
                url=f"https://{svc.listen}",
                identity=svc.spiffe_id,
            )
        )  # fmt: skip
    gw = topology.gateway.listen
    specs.append(
        ComponentSpec(
            name=GATEWAY,
            argv=(py, "-m", "ramparts", "gateway", "run", "--topology", str(topology_path),
                  "--identity-dir", str(state / "identity" / GATEWAY),
                  "--events", str(state / "events" / "gateway.jsonl"),
                  "--access-log", str(state / "logs" / "gateway-access.log")),
            ready=tcp_ready(gw.host, gw.port),
            depends_on=("audit", *topology.services),
            url=("http" if topology.gateway.plain_http else "https") + f"://{gw}",
            identity=topology.spiffe_id(GATEWAY),
        )
    )  # fmt: skip
    return specs


ISOLATED_TOPOLOGY = "isolated.yaml"


def _isolate(topology: Topology, state: Path) -> tuple[isolate.Plan, Topology, Path]:
    """Namespaces and rules for ``topology``; the components read the moved addresses."""
    isolate.check_permitted()
    plan = isolate.plan(topology, tag="rp")
    isolate.teardown(plan)  # whatever a killed earlier run left behind
    isolate.apply(plan)
    path = (state / ISOLATED_TOPOLOGY).resolve()
    path.write_text(isolate.isolated_topology_text(topology, plan), encoding="utf-8")
    _record_run(state, path)
    moved = parse_topology(path.read_text(), source=str(path))
    devissuer.ensure(moved, path, state)  # its JWKS beside the file the gateway reads
    return plan, moved, path


def _status_lines(sup: Supervisor) -> list[str]:
    width = max(len(n) for n in sup.components)
    return [
        f"  {name.ljust(width)}  {run.state.value:<10}  {run.spec.url:<26}  {run.spec.identity}"
        for name, run in sup.components.items()
    ]


async def run(
    topology: Topology,
    state: Path,
    *,
    topology_path: Path | None = None,
    say: Callable[[str], None] = print,
    ready: Callable[[Supervisor], None] | None = None,
    isolated: bool = False,
) -> int:
    """Start everything, report, and run until SIGINT/SIGTERM or a component gives up."""
    path = prepare_state(topology, state, topology_path)
    plan = None
    if isolated:
        plan, topology, path = _isolate(topology, state)
        say(f"isolated: one network namespace per component; {plan.hub} routes, nftables decide")
    sup = Supervisor(
        components(topology, state, path, isolation=plan),
        log_dir=state / "logs",
        on_line=lambda name, line: say(f"{name:>13} | {line}"),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sup.start()
        say("ramparts is up:\n" + "\n".join(_status_lines(sup)))
        say(f"state in {state}; Ctrl-C to stop")
        if ready is not None:
            ready(sup)
        failed = asyncio.create_task(sup.failed.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for task in (failed, stopped):
            task.cancel()
        if sup.failed.is_set():
            bad = [n for n, r in sup.components.items() if r.state.value == "failed"]
            say(f"giving up: {', '.join(bad)} kept failing; see {state / 'logs'}")
            return 1
        return 0
    finally:
        say("stopping...")
        await sup.stop()
        if plan is not None:
            isolate.teardown(plan)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        say("stopped")
