"""``ramparts secrets``: initialise, serve, unseal and inspect the secrets broker.

Key material never passes through argv or environment variables: shares and the
root token are written to a new 0600 file by ``init``, and read back from files
by ``unseal``.
"""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ramparts.config import Topology, TopologyError, default_topology, load_topology
from ramparts.events import EventEmitter, JSONLinesSink, MemorySink
from ramparts.secrets._broker import DEFAULT_ROLE_PREFIX, Broker
from ramparts.secrets._errors import SecretsError
from ramparts.secrets._seal import write_private_file

app = typer.Typer(
    help="The secrets broker: leased PostgreSQL roles and KV over a Vault-compatible API.",
    no_args_is_help=True,
    add_completion=False,
)

StorageOpt = Annotated[Path, typer.Option(help="the broker's encrypted SQLite file")]
TopologyOpt = Annotated[
    Path | None, typer.Option(help="ramparts.yaml (default: the reference bank's)")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _topology(path: Path | None) -> Topology:
    try:
        return load_topology(path) if path else default_topology()
    except TopologyError as exc:
        raise _fail(str(exc)) from None


@app.command()
def init(  # noqa: PLR0917 - typer maps each option to a parameter
    storage: StorageOpt,
    out: Annotated[Path, typer.Option(help="new 0600 file for the unseal shares and root token")],
    shares: Annotated[int, typer.Option(help="number of unseal key shares")] = 5,
    threshold: Annotated[int, typer.Option(help="shares needed to unseal")] = 3,
    key_file: Annotated[
        Path | None,
        typer.Option(help="development: one unseal key in a new 0600 file instead of shares"),
    ] = None,
    topology: TopologyOpt = None,
) -> None:
    """Initialise an empty store. Writes shares (or a key file) and the root token, 0600."""
    if out.exists():
        raise _fail(f"{out} already exists; refusing to overwrite key material")
    broker = Broker(
        storage, _topology(topology), emitter=EventEmitter([MemorySink()], service="secrets")
    )
    try:
        if key_file is not None:
            root = broker.initialize_key_file(key_file)
            doc: dict[str, Any] = {"root_token": root, "unseal_key_file": str(key_file)}
        else:
            parts, root = broker.initialize_shamir(shares, threshold)
            doc = {
                "keys": [p.hex() for p in parts],
                "keys_base64": [base64.b64encode(p).decode() for p in parts],
                "secret_shares": shares,
                "secret_threshold": threshold,
                "root_token": root,
            }
        write_private_file(out, json.dumps(doc, indent=2) + "\n")
    except (SecretsError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    finally:
        broker.close()
    typer.echo(f"initialised {storage}; shares and root token written to {out} (mode 0600)")
    if key_file is None:
        typer.echo(f"give each operator one share; {threshold} of {shares} unseal the store")


@app.command()
def serve(  # noqa: PLR0917 - typer maps each option to a parameter
    storage: StorageOpt,
    identity_dir: Annotated[
        Path,
        typer.Option(help="the broker's SVID and trust bundle (svid.pem, svid.key, bundle.json)"),
    ],
    topology: TopologyOpt = None,
    host: Annotated[str, typer.Option(help="listen address (default: the topology's)")] = "",
    port: Annotated[int, typer.Option(help="listen port (default: the topology's)")] = 0,
    key_file: Annotated[
        Path | None, typer.Option(help="development: unseal at start with this 0600 key file")
    ] = None,
    audit_log: Annotated[
        Path | None, typer.Option(help="append audit events (JSON lines, 0600) here")
    ] = None,
    role_prefix: Annotated[str, typer.Option(help="prefix of the roles this broker owns")] = (
        DEFAULT_ROLE_PREFIX
    ),
) -> None:
    """Serve the broker over mTLS. Starts sealed unless --key-file is given."""
    from ramparts.identity import IdentitySource, build_mtls_server  # noqa: PLC0415

    topo = _topology(topology)
    sink = JSONLinesSink(audit_log) if audit_log else MemorySink()
    emitter = EventEmitter([sink], service="secrets")
    try:
        source = IdentitySource.from_dir(identity_dir)
        broker = Broker(storage, topo, emitter=emitter, role_prefix=role_prefix)
        if key_file is not None:
            broker.unseal_key_file(key_file)
    except (SecretsError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    except Exception as exc:  # identity errors name the file and the problem
        raise _fail(f"{exc.__class__.__name__}: {exc}") from None
    from ramparts.secrets._api import create_app  # noqa: PLC0415

    server = build_mtls_server(
        create_app(broker),
        source=source,
        emitter=emitter,
        host=host or topo.platform.secrets.host,
        port=port or topo.platform.secrets.port,
        service="secrets",
        log_level="info",
    )
    typer.echo(
        f"secrets broker on {server.config.host}:{server.config.port} (sealed: {broker.sealed})"
    )
    server.run()


def _http(
    url: str,
    *,
    identity_dir: Path | None,
    topology: Path | None,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
) -> httpx.Client:
    """An mTLS client: with our SVID (checking the broker's SPIFFE ID), or with PEM files."""
    if identity_dir is not None:
        from ramparts.identity import IdentitySource, service_client_sync  # noqa: PLC0415

        try:
            source = IdentitySource.from_dir(identity_dir)
        except Exception as exc:
            raise _fail(f"{exc.__class__.__name__}: {exc}") from None
        expected = _topology(topology).spiffe_id("secrets")
        return service_client_sync(source, expected, url, timeout=30)
    if not (cert and key and ca):
        raise _fail("give --identity-dir, or --cert, --key and --ca")
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return httpx.Client(base_url=url, verify=ctx, timeout=30)


def _read_shares(path: Path) -> list[str]:
    """Shares from an ``init`` output file (its ``keys``) or one share per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read share file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        return [str(k) for k in doc["keys"]]
    raise _fail(f"share file {path} has no 'keys' list")


IdentityOpt = Annotated[
    Path | None, typer.Option(help="our SVID and trust bundle (the broker's ID is checked)")
]
CertOpt = Annotated[Path | None, typer.Option(help="or: client certificate (PEM)")]
KeyOpt = Annotated[Path | None, typer.Option(help="or: its private key (PEM, 0600)")]
CAOpt = Annotated[Path | None, typer.Option(help="or: CA bundle (PEM) to verify the broker")]
URLOpt = Annotated[str, typer.Option(help="broker URL")]


@app.command()
def unseal(  # noqa: PLR0917 - typer maps each option to a parameter
    share_file: Annotated[Path, typer.Option(help="file with this operator's share(s)")],
    url: URLOpt = "https://127.0.0.1:7001",
    identity_dir: IdentityOpt = None,
    topology: TopologyOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    ca: CAOpt = None,
) -> None:
    """Submit unseal shares from a file until the broker unseals or the file runs out."""
    shares = _read_shares(share_file)
    if not shares:
        raise _fail(f"share file {share_file} holds no share")
    try:
        with _http(
            url, identity_dir=identity_dir, topology=topology, cert=cert, key=key, ca=ca
        ) as c:
            for share in shares:
                r = c.put("/v1/sys/unseal", json={"key": share})
                if r.status_code != 200:
                    raise _fail(
                        f"unseal refused ({r.status_code}): {'; '.join(r.json()['errors'])}"
                    )
                status = r.json()
                if not status["sealed"]:
                    typer.echo("unsealed")
                    return
            typer.echo(f"still sealed: {status['progress']} of {status['t']} shares submitted")
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the broker at {url}: {exc.__class__.__name__}") from None


@app.command()
def status(  # noqa: PLR0917 - typer maps each option to a parameter
    url: URLOpt = "https://127.0.0.1:7001",
    identity_dir: IdentityOpt = None,
    topology: TopologyOpt = None,
    cert: CertOpt = None,
    key: KeyOpt = None,
    ca: CAOpt = None,
) -> None:
    """Print the broker's seal status."""
    try:
        with _http(
            url, identity_dir=identity_dir, topology=topology, cert=cert, key=key, ca=ca
        ) as c:
            s = c.get("/v1/sys/seal-status").json()
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the broker at {url}: {exc.__class__.__name__}") from None
    state = "sealed" if s["sealed"] else "unsealed"
    typer.echo(
        f"initialized={s['initialized']} {state} "
        f"threshold={s['t']}/{s['n']} progress={s['progress']}"
    )
