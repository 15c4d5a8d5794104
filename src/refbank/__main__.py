"""Run one refbank service on the Ramparts SDK.

    python -m refbank SERVICE --topology ramparts.yaml --state .ramparts --database URL

URL is ``sqlite:///STATE/data/SERVICE.db`` in the embedded default, or a
PostgreSQL URL.

The identity comes from ``STATE/identity/SERVICE`` (written by local
attestation before start), never from the command line. The database URL
names a role without a password (local trust, or a leased role once the
secrets broker hands out credentials); the accounts service's PII key is a
0600 file under ``STATE/keys``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ramparts.config import TopologyError, load_topology
from ramparts.events import JSONLinesSink
from ramparts.sdk import ServiceRuntime
from ramparts.telemetry.logging import configure_logging
from refbank._db import open_database
from refbank._pii import PIIVault
from refbank.accounts import app as accounts
from refbank.ledger import app as ledger
from refbank.notifications import app as notifications
from refbank.payments import app as payments
from refbank.statements import app as statements

SERVICES = ("accounts", "ledger", "payments", "notifications", "statements")


def read_key_file(path: Path, size: int = 32) -> bytes:
    """A key from a file that only its owner can read; created on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(size))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SystemExit(
            f"refusing key file {path}: mode {mode:o} lets others read it; chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) != size:
        raise SystemExit(f"key file {path} holds {len(key)} bytes, want {size}")
    return key


def build_app(name: str, runtime: ServiceRuntime, database: str, state: Path) -> Any:
    db = open_database(database)
    if name == "accounts":
        vault = PIIVault(read_key_file(state / "keys" / "accounts-pii.key"))
        return accounts.create_app(db, vault=vault)
    if name == "ledger":
        return ledger.create_app(db)
    if name == "payments":
        return payments.create_app(db, services=runtime.calls)
    if name == "notifications":
        return notifications.create_app(db, egress=runtime.egress())
    return statements.create_app(db, services=runtime.calls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m refbank", description=__doc__.split("\n")[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--topology", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument(
        "--database",
        required=True,
        help="postgresql://role@host/db (no password) or sqlite:///path/to/service.db",
    )
    args = parser.parse_args(argv)
    if urlsplit(args.database).password is not None:
        parser.error("--database must not carry a password; credentials are leased at runtime")
    try:
        topology = load_topology(args.topology)
    except TopologyError as exc:
        sys.exit(f"Error: {exc}")
    events = (
        JSONLinesSink(args.state / "events" / f"{args.service}.jsonl")
        if _mkdir(args.state / "events")
        else None
    )
    runtime = ServiceRuntime.from_state(
        args.service, topology, args.state, sinks=[events] if events else []
    )
    # Masked ECS JSON on stderr (the supervisor collects it) and into the audit log.
    configure_logging(
        args.service, forward=runtime.shipper.submit_json if runtime.shipper else None
    )
    app = build_app(args.service, runtime, args.database, args.state)
    # log_config=None: uvicorn logs through the pipeline above, not handlers of its own.
    asyncio.run(runtime.serve(app, log_config=None))


def _mkdir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return True


if __name__ == "__main__":
    main()
