"""``ramparts audit``: keys, the log server, the witness, and the offline verifier.

Private keys are read from 0600 files named on the command line, never from
arguments or the environment. Public keys (vkeys) may be given inline or as
files.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn

from ramparts.audit.keys import load_cosigner, load_signer, write_private_key
from ramparts.audit.log import AuditLog
from ramparts.audit.note import Cosigner, KeyFormatError, NoteError, Signer, Verifier, parse_vkey
from ramparts.audit.server import WitnessEndpoint, create_app
from ramparts.audit.store import StoreError, open_store
from ramparts.audit.verify import verify_log
from ramparts.audit.witness import Witness, WitnessState, create_witness_app
from ramparts.config import TopologyError, load_topology
from ramparts.events import EventEmitter
from ramparts.identity import (
    AuthorizationMiddleware,
    IdentityError,
    IdentitySource,
    build_mtls_server,
)
from ramparts.telemetry.logging import QUIET_LIBRARIES

app = typer.Typer(help="Tamper-evident audit log.", no_args_is_help=True)

DEFAULT_ORIGIN = "ramparts.local/audit"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _vkey(value: str) -> Verifier:
    """Accept a vkey inline or the path of a file holding one."""
    path = Path(value)
    text = path.read_text() if "+" not in value and path.is_file() else value
    try:
        return parse_vkey(text)
    except KeyFormatError as exc:
        raise _fail(str(exc)) from None


@app.command()
def keygen(
    *,
    name: Annotated[
        str, typer.Option(help="Key name; for a log, its origin (e.g. audit.example/log).")
    ],
    out: Annotated[Path, typer.Option(help="Private key file to create (mode 0600).")],
    witness: Annotated[
        bool, typer.Option(help="Make a witness cosigning key (type 0x04).")
    ] = False,
) -> None:
    """Create a signing key; print its public vkey."""
    try:
        signer = (Cosigner if witness else Signer).generate(name)
        write_private_key(out, signer)
    except (KeyFormatError, OSError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(signer.verifier().vkey)


@app.command()
def verify(
    *,
    db: Annotated[str, typer.Option(help="SQLite path or postgresql:// DSN of the log store.")],
    log_key: Annotated[list[str], typer.Option(help="The log's vkey (inline or file).")],
    witness_key: Annotated[
        list[str] | None, typer.Option(help="A witness vkey whose cosignature is required.")
    ] = None,
    trusted_checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A signed checkpoint held outside the log (e.g. from the witness)."),
    ] = None,
    witness_url: Annotated[
        list[str] | None,
        typer.Option(
            help="A witness monitoring URL: its latest checkpoint of this log is trusted."
        ),
    ] = None,
) -> None:
    """Recompute the tree from the stored entries and check every checkpoint and cosignature.

    Checkpoints held outside the log (files, or fetched from witnesses) catch a
    rollback to an older, self-consistent copy and a forked view.
    """
    if not db.startswith(("postgresql://", "postgres://")) and not Path(db).is_file():
        raise _fail(f"no log store at {db}")
    log_keys = [_vkey(k) for k in log_key]
    witness_keys = [_vkey(k) for k in witness_key or []]
    trusted = []
    for path in trusted_checkpoint or []:
        try:
            trusted.append(path.read_bytes())
        except OSError as exc:
            raise _fail(f"cannot read trusted checkpoint {path}: {exc}") from None
    for url in witness_url or []:
        trusted.extend(_fetch_witness_checkpoints(url, log_keys))
    try:
        with open_store(db, read_only=True) as store:
            report = verify_log(store, log_keys, witness_keys, trusted)
    except (StoreError, OSError) as exc:
        raise _fail(f"cannot read the log store: {exc}") from None
    for f in report.findings:
        prefix = "Error" if f.severity == "error" else "Warning"
        typer.echo(f"{prefix}: [{f.kind}] {f.message}", err=True)
    if not report.ok:
        errors = sum(f.severity == "error" for f in report.findings)
        typer.echo(
            f"FAILED: {errors} problem(s) in {report.entries} entries and "
            f"{report.checkpoints} checkpoints",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"OK: {report.entries} entries, {report.checkpoints} checkpoints verified")


def _fetch_witness_checkpoints(url: str, log_keys: list[Verifier]) -> list[bytes]:
    """GET <url>/<sha256(origin) hex>/checkpoint for each log key (tlog-witness monitoring)."""
    found = []
    for key in log_keys:
        origin_hash = hashlib.sha256(key.name.encode()).hexdigest()
        try:
            response = httpx.get(f"{url.rstrip('/')}/{origin_hash}/checkpoint", timeout=10)
        except httpx.HTTPError as exc:
            raise _fail(f"cannot reach witness {url}: {exc}") from None
        if response.status_code == 404:
            typer.echo(f"Warning: witness {url} has no checkpoint of {key.name}", err=True)
            continue
        if response.status_code != 200:
            raise _fail(f"witness {url} answered {response.status_code} for {key.name}")
        found.append(response.content)
    return found


@app.command()
def serve(
    *,
    data: Annotated[
        Path | None,
        typer.Option(help="Data folder: audit.db and log.key inside, the key made on first run."),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="SQLite path or postgresql:// DSN (default DATA/audit.db).")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="The log's private key file, 0600 (default DATA/log.key).")
    ] = None,
    origin: Annotated[
        str, typer.Option(help="Log name for a key made in --data.")
    ] = DEFAULT_ORIGIN,
    host: str = "127.0.0.1",
    port: int = 8470,
    checkpoint_every: int = 1000,
    checkpoint_interval_ms: int = 500,
    witness: Annotated[
        list[str] | None, typer.Option(help="Witness as URL=VKEY; repeat for several.")
    ] = None,
    masking: Annotated[bool, typer.Option(help="Re-mask entries at ingest.")] = True,
    leaf_index: Annotated[
        bool, typer.Option(help="Index leaf hashes for proofs by hash (slower appends).")
    ] = True,
    identity_dir: Annotated[
        Path | None,
        typer.Option(help="Serve mTLS with this SVID (svid.pem, svid.key, bundle.json)."),
    ] = None,
    topology: Annotated[
        Path | None,
        typer.Option(help="ramparts.yaml: who may ship, and the default listen address."),
    ] = None,
) -> None:
    """Run the log server: mTLS with --identity-dir and --topology, else plain HTTP on loopback."""
    logging.basicConfig(level=logging.INFO)
    for chatty in QUIET_LIBRARIES:  # one line per witness request is noise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    db, key_file = _resolve_data(data, db, key_file, origin)
    endpoints = []
    for spec in witness or []:
        url, sep, vkey = spec.partition("=")
        if not sep:
            raise _fail(f"--witness must be URL=VKEY, got {spec!r}")
        endpoints.append(WitnessEndpoint(url, _vkey(vkey)))
    try:
        signer = load_signer(key_file)
        audit_log = AuditLog(open_store(db, leaf_index=leaf_index), signer)
    except (KeyFormatError, StoreError, OSError) as exc:
        raise _fail(str(exc)) from None
    application = create_app(
        audit_log,
        checkpoint_every=checkpoint_every,
        checkpoint_interval=checkpoint_interval_ms / 1000,
        witnesses=endpoints,
        masker="auto" if masking else None,
    )
    if identity_dir is None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise _fail("plain HTTP is for loopback only; give --identity-dir and --topology")
        uvicorn.run(application, host=host, port=port, log_level="warning")
        return
    if topology is None:
        raise _fail("--identity-dir needs --topology (it says which workloads may ship)")
    _serve_mtls(application, identity_dir, topology)


def _serve_mtls(application: Any, identity_dir: Path, topology_path: Path) -> None:
    """Serve on the topology's audit address; only its workloads may ship."""
    try:
        topo = load_topology(topology_path)
        source = IdentitySource.from_dir(identity_dir)
    except (TopologyError, IdentityError) as exc:
        raise _fail(str(exc)) from None
    emitter = EventEmitter([], service="audit")
    guarded = AuthorizationMiddleware(
        application, topology=topo, service="audit", emitter=emitter, emit_allowed=False
    )
    ep = topo.platform.audit
    typer.echo(f"audit log on https://{ep} as {source.spiffe_id}", err=True)
    build_mtls_server(guarded, source=source, emitter=emitter, host=ep.host, port=ep.port).run()


def _resolve_data(
    data: Path | None, db: str | None, key_file: Path | None, origin: str
) -> tuple[str, Path]:
    """Fill --db and --key-file from --data; make the log key there on first run."""
    if data is None:
        if db is None or key_file is None:
            typer.echo("Error: give --data, or both --db and --key-file", err=True)
            typer.echo("Try 'ramparts audit serve --help' for help.", err=True)
            raise typer.Exit(2)
        return db, key_file
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file = key_file or data / "log.key"
        if not key_file.exists():
            signer = Signer.generate(origin)
            write_private_key(key_file, signer)
            # The public half, for verifiers and witnesses; it is not a secret.
            (data / "log.vkey").write_text(signer.verifier().vkey + "\n")
            logging.getLogger("ramparts.audit.cli").info(
                "created log key %s; vkey %s", key_file, signer.verifier().vkey
            )
    except (OSError, KeyFormatError) as exc:
        raise _fail(f"cannot prepare data folder {data}: {exc}") from None
    return db or str(data / "audit.db"), key_file


@app.command(name="witness")
def witness_command(
    *,
    state: Annotated[Path, typer.Option(help="SQLite file holding the witness's state.")],
    key_file: Annotated[Path, typer.Option(help="The witness's private key file (0600).")],
    log: Annotated[list[str], typer.Option(help="A log to witness, as ORIGIN=VKEY; repeatable.")],
    host: str = "127.0.0.1",
    port: int = 8471,
) -> None:
    """Run a tlog-witness for the given logs."""
    logs: dict[str, list[Verifier]] = {}
    for spec in log:
        origin, sep, vkey = spec.partition("=")
        if not sep:
            raise _fail(f"--log must be ORIGIN=VKEY, got {spec!r}")
        logs.setdefault(origin, []).append(_vkey(vkey))
    try:
        w = Witness(load_cosigner(key_file), logs, WitnessState(state))
    except (NoteError, OSError) as exc:
        raise _fail(str(exc)) from None
    uvicorn.run(create_witness_app(w), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    app()
