"""``ramparts ca``: create the CA, issue SVIDs, print the bundle, rotate, serve the API.

Keys are never printed: ``issue`` writes them 0600 and prints only paths,
the SPIFFE ID and the expiry. A passphrase comes from a 0600 file
(``--passphrase-file``), never from argv or the environment.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ramparts.config import TopologyError, load_topology
from ramparts.events import EventEmitter, JSONLinesSink
from ramparts.identity._attest import attest_local
from ramparts.identity._ca import DEFAULT_CA_TTL, CertificateAuthority
from ramparts.identity._ca_api import CAService
from ramparts.identity._errors import IdentityError
from ramparts.identity._files import Passphrase
from ramparts.identity._svid import DEFAULT_SVID_TTL

app = typer.Typer(
    help="The internal CA: SPIFFE X.509-SVIDs for every workload.", no_args_is_help=True
)

DirOpt = Annotated[Path, typer.Option("--dir", help="CA directory (0700)")]
PassOpt = Annotated[
    Path | None, typer.Option("--passphrase-file", help="0600 file holding the CA key passphrase")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _passphrase(path: Path | None) -> Passphrase | None:
    return Passphrase.from_file(path) if path else None


def _load(directory: Path, passphrase_file: Path | None) -> CertificateAuthority:
    return CertificateAuthority.load(directory, passphrase=_passphrase(passphrase_file))


@app.command()
def init(  # noqa: PLR0917 - typer maps each option to a parameter
    directory: DirOpt,
    trust_domain: Annotated[
        str | None, typer.Option(help="trust domain (default: the topology's)")
    ] = None,
    topology: Annotated[
        Path | None, typer.Option(help="ramparts.yaml to take the trust domain from")
    ] = None,
    passphrase_file: PassOpt = None,
    svid_ttl: Annotated[int, typer.Option(help="SVID lifetime, seconds")] = int(
        DEFAULT_SVID_TTL.total_seconds()
    ),
    ca_ttl_days: Annotated[
        int, typer.Option(help="CA certificate lifetime, days")
    ] = DEFAULT_CA_TTL.days,
) -> None:
    """Create a new CA (ECDSA P-256 key, 0600) in --dir."""
    try:
        td = trust_domain or (load_topology(topology).trust_domain if topology else None)
        if td is None:
            raise typer.BadParameter("give --trust-domain or --topology")
        ca = CertificateAuthority.init(
            directory,
            td,
            passphrase=_passphrase(passphrase_file),
            svid_ttl=dt.timedelta(seconds=svid_ttl),
            ca_ttl=dt.timedelta(days=ca_ttl_days),
        )
    except (IdentityError, TopologyError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"created CA for trust domain {ca.trust_domain} in {directory}")
    typer.echo(
        f"  active CA: generation {ca.active.generation}, expires {ca.active.not_after.isoformat()}"
    )


@app.command()
def issue(
    service: Annotated[list[str], typer.Argument(help="service name(s) from the topology")],
    directory: DirOpt,
    topology: Annotated[Path, typer.Option(help="ramparts.yaml")],
    out: Annotated[
        Path, typer.Option(help="identity directory; each service gets OUT/SERVICE (0700)")
    ],
    passphrase_file: PassOpt = None,
) -> None:
    """Issue a first SVID for SERVICE (local attestation); writes the key 0600, prints no key."""
    try:
        topo = load_topology(topology)
        ca = _load(directory, passphrase_file)
        for name in service:
            try:
                topo.spiffe_id(name)
            except KeyError:
                raise _fail(f"no service named {name!r} in {topology}") from None
        paths = attest_local(ca, topo, out, services=service)
    except (IdentityError, TopologyError, ValueError) as exc:
        if isinstance(exc, IdentityError):
            raise _fail(exc.diagnostics()) from None
        raise _fail(str(exc)) from None
    for name, path in paths.items():
        typer.echo(f"{topo.spiffe_id(name)} -> {path} (svid.pem, svid.key 0600, bundle.json)")


@app.command()
def bundle(
    directory: DirOpt,
    fmt: Annotated[str, typer.Option("--format", help="jwks (SPIFFE bundle) or pem")] = "jwks",
    passphrase_file: PassOpt = None,
) -> None:
    """Print the trust bundle (public certificates only)."""
    if fmt not in ("jwks", "pem"):
        raise typer.BadParameter("--format must be jwks or pem")
    try:
        b = _load(directory, passphrase_file).bundle()
    except IdentityError as exc:
        raise _fail(exc.diagnostics()) from None
    typer.echo(b.to_json() if fmt == "jwks" else b.pem(), nl=fmt == "jwks")


@app.command()
def rotate(
    directory: DirOpt,
    now: Annotated[
        bool, typer.Option("--now", help="publish and activate at once (workloads must re-attest)")
    ] = False,
    activate: Annotated[
        bool, typer.Option("--activate", help="let the published next CA sign")
    ] = False,
    passphrase_file: PassOpt = None,
) -> None:
    """Publish the next CA in the bundle (default), activate it, or both at once."""
    try:
        ca = _load_for_rotation(directory, passphrase_file, force=now)
        if now:
            a = ca.rotate()
            typer.echo(
                f"CA generation {a.generation} now signs; "
                "re-attest workloads (restart `ramparts up`)"
            )
        elif activate:
            a = ca.activate_next()
            typer.echo(
                f"CA generation {a.generation} now signs; "
                "the old CA stays trusted until its leaves expire"
            )
        else:
            a = ca.prepare_rotation()
            typer.echo(
                f"CA generation {a.generation} published in the bundle; activate it with --activate"
            )
        ca.prune()
    except IdentityError as exc:
        raise _fail(exc.diagnostics()) from None


def _load_for_rotation(
    directory: Path, passphrase_file: Path | None, *, force: bool
) -> CertificateAuthority:
    """An expired CA may still be loaded to rotate it away (``--now``), and only for that."""
    if not force:
        return _load(directory, passphrase_file)
    far_past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return CertificateAuthority.load(
        directory, passphrase=_passphrase(passphrase_file), current_time=far_past
    )


@app.command()
def status(directory: DirOpt, passphrase_file: PassOpt = None) -> None:
    """Show the CA generations in the bundle and when they expire."""
    try:
        ca = _load(directory, passphrase_file)
    except IdentityError as exc:
        raise _fail(exc.diagnostics()) from None
    b = ca.bundle()
    typer.echo(
        f"trust domain {ca.trust_domain}, bundle sequence {b.sequence}, "
        f"refresh hint {b.refresh_hint}s"
    )
    for cert in b.authorities:
        cn = cert.subject.rfc4514_string()
        mark = " (active)" if cert == ca.active.cert else ""
        typer.echo(f"  {cn}{mark} expires {cert.not_valid_after_utc.isoformat()}")


@app.command()
def serve(  # noqa: PLR0917 - typer maps each option to a parameter
    directory: DirOpt,
    topology: Annotated[Path, typer.Option(help="ramparts.yaml")],
    events: Annotated[
        Path | None, typer.Option(help="append security events (JSON lines) here")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="listen address (default: topology platform.ca)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="listen port (default: topology platform.ca)")
    ] = None,
    passphrase_file: PassOpt = None,
) -> None:
    """Serve the CA API over mTLS (renewal and bundle) until interrupted."""
    try:
        topo = load_topology(topology)
        emitter = EventEmitter([JSONLinesSink(events)] if events else [], service="ca")
        ca = CertificateAuthority.load(
            directory, passphrase=_passphrase(passphrase_file), emitter=emitter
        )
        service = CAService(ca, emitter=emitter, topology=topo)
    except (IdentityError, TopologyError) as exc:
        raise _fail(exc.diagnostics() if isinstance(exc, IdentityError) else str(exc)) from None
    ep = topo.platform.ca
    host, port = host or ep.host, ep.port if port is None else port
    typer.echo(f"CA API on https://{host}:{port} as {service.spiffe_id}", err=True)
    service.server(host=host, port=port).run()
