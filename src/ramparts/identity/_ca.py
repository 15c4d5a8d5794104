"""The internal certificate authority that issues X.509-SVIDs.

>>> ca = CertificateAuthority.in_memory("example.org")
>>> svid = ca.issue_svid("spiffe://example.org/ns/shop/sa/cart")
>>> svid.spiffe_id
'spiffe://example.org/ns/shop/sa/cart'

Keys are ECDSA P-256: the SPIFFE ecosystem's default (SPIRE, Istio), a 64-byte
signature and a handshake several times cheaper than RSA-2048 on this class of
machine. Ed25519 would be smaller still, but stdlib ``ssl`` clients and many
TLS stacks in the wild still refuse Ed25519 certificate chains.

On disk (``ramparts ca init --dir DIR``)::

    DIR/                    0700
      state.json            which generation is active/next/retired, bundle sequence
      authorities/N.crt     CA certificate of generation N
      authorities/N.key     its key, PKCS#8, 0600, encrypted when a passphrase is given

The CA refuses to start when a key file is readable by group or others.

Rotation. The CA never signs with a key the workloads have not been told to
trust: :meth:`CertificateAuthority.prepare_rotation` creates the next CA and
publishes it in the bundle (sequence + 1); :meth:`activate_next` makes it sign,
and the old CA stays in the bundle as *retired* until the last leaf it could
have signed has expired; :meth:`prune` then drops it. :meth:`maintain` runs this
schedule by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ramparts.events import EventEmitter
from ramparts.identity._bundle import DEFAULT_REFRESH_HINT, TrustBundle
from ramparts.identity._errors import CAStateError, IdentityExpiredError, IssuanceRefused
from ramparts.identity._files import (
    Passphrase,
    check_private,
    ensure_private_dir,
    load_private_key,
    private_key_pem,
    write_private_file,
    write_public_file,
)
from ramparts.identity._spiffe_id import _TRUST_DOMAIN, parse_spiffe_id
from ramparts.identity._svid import (
    CLOCK_SKEW,
    DEFAULT_SVID_TTL,
    X509SVID,
    build_svid_certificate,
    new_private_key,
    utcnow,
)

DEFAULT_CA_TTL = dt.timedelta(days=7)
MAX_SVID_TTL = dt.timedelta(hours=24)
STATE_FILE = "state.json"
LAST_LEAF_SLACK = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Authority:
    """One generation of the CA: its self-signed certificate and key."""

    generation: int
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc


def _new_authority(
    trust_domain: str, generation: int, now: dt.datetime, ttl: dt.timedelta
) -> Authority:
    key = new_private_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            # Each generation has its own subject, so chain building never mixes them up.
            x509.NameAttribute(NameOID.COMMON_NAME, f"ramparts CA {generation}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(generation, cert, key)


class CertificateAuthority:
    """Issues SVIDs for one trust domain, rotates itself, and publishes the bundle.

    Thread-safe: the CA API and a maintenance task may call it concurrently.
    """

    def __init__(
        self,
        trust_domain: str,
        active: Authority,
        *,
        next_authority: Authority | None = None,
        retired: tuple[tuple[Authority, dt.datetime], ...] = (),
        sequence: int = 1,
        svid_ttl: dt.timedelta = DEFAULT_SVID_TTL,
        ca_ttl: dt.timedelta = DEFAULT_CA_TTL,
        refresh_hint: int = DEFAULT_REFRESH_HINT,
        directory: Path | None = None,
        passphrase: Passphrase | None = None,
        emitter: EventEmitter | None = None,
    ) -> None:
        if not _TRUST_DOMAIN.match(trust_domain):
            raise CAStateError(f"invalid trust domain {trust_domain!r}")
        if not dt.timedelta(seconds=1) <= svid_ttl <= MAX_SVID_TTL:
            raise CAStateError(f"svid_ttl must be between 1 s and {MAX_SVID_TTL}, got {svid_ttl}")
        self.trust_domain = trust_domain
        self.svid_ttl = svid_ttl
        self.ca_ttl = ca_ttl
        self.refresh_hint = refresh_hint
        self.directory = directory
        self._passphrase = passphrase
        self._emitter = emitter
        self._lock = threading.RLock()
        self._active = active
        self._next = next_authority
        self._next_published: dt.datetime | None = utcnow() if next_authority else None
        self._retired = list(retired)
        self._sequence = sequence
        # generation -> latest notAfter it has signed, so a retired CA leaves the
        # bundle exactly when its last leaf expires (not a conservative day later).
        self._last_leaf: dict[int, dt.datetime] = {}
        self._persisted_last_leaf: dict[int, dt.datetime] = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def in_memory(
        cls,
        trust_domain: str,
        *,
        svid_ttl: dt.timedelta = DEFAULT_SVID_TTL,
        ca_ttl: dt.timedelta = DEFAULT_CA_TTL,
        refresh_hint: int = DEFAULT_REFRESH_HINT,
        emitter: EventEmitter | None = None,
        current_time: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """A CA whose keys never touch the disk (tests, ephemeral clusters)."""
        now = current_time or utcnow()
        return cls(
            trust_domain,
            _new_authority(trust_domain, 1, now, ca_ttl),
            svid_ttl=svid_ttl,
            ca_ttl=ca_ttl,
            refresh_hint=refresh_hint,
            emitter=emitter,
        )

    @classmethod
    def init(
        cls,
        directory: str | os.PathLike[str],
        trust_domain: str,
        *,
        passphrase: Passphrase | None = None,
        svid_ttl: dt.timedelta = DEFAULT_SVID_TTL,
        ca_ttl: dt.timedelta = DEFAULT_CA_TTL,
        refresh_hint: int = DEFAULT_REFRESH_HINT,
        emitter: EventEmitter | None = None,
    ) -> CertificateAuthority:
        """Create a new CA in ``directory``; refuse if one is already there."""
        d = Path(directory)
        if (d / STATE_FILE).exists():
            raise CAStateError(f"a CA already exists in {d}; refusing to overwrite it")
        ensure_private_dir(d)
        ensure_private_dir(d / "authorities")
        ca = cls.in_memory(
            trust_domain,
            svid_ttl=svid_ttl,
            ca_ttl=ca_ttl,
            refresh_hint=refresh_hint,
            emitter=emitter,
        )
        ca.directory = d
        ca._passphrase = passphrase
        with ca._lock:
            ca._write_authority(ca._active)
            ca._save_state()
        return ca

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        passphrase: Passphrase | None = None,
        emitter: EventEmitter | None = None,
        current_time: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """Open the CA in ``directory``.

        Raises:
            InsecureFileError: a key file is readable by group or others.
            CAStateError: the directory is not a CA.
            IdentityExpiredError: the active CA certificate has expired.
        """
        d = Path(directory)
        try:
            state = json.loads((d / STATE_FILE).read_text())
        except FileNotFoundError:
            raise CAStateError(
                f"no CA in {d} (missing {STATE_FILE}); create one with `ramparts ca init --dir {d}`"
            ) from None
        except ValueError as exc:
            raise CAStateError(f"{d / STATE_FILE} is not valid JSON: {exc}") from exc

        def authority(gen: int) -> Authority:
            crt, key = d / "authorities" / f"{gen}.crt", d / "authorities" / f"{gen}.key"
            check_private(key)
            try:
                cert = x509.load_pem_x509_certificate(crt.read_bytes())
            except (OSError, ValueError) as exc:
                raise CAStateError(f"cannot read CA certificate {crt}: {exc}") from exc
            k = load_private_key(key, passphrase)
            if cert.public_key() != k.public_key():
                raise CAStateError(f"CA key {key} does not match certificate {crt}")
            return Authority(gen, cert, k)

        try:
            td = state["trust_domain"]
            ca = cls(
                td,
                authority(int(state["active"])),
                next_authority=authority(int(state["next"]))
                if state.get("next") is not None
                else None,
                retired=tuple(
                    (authority(int(r["generation"])), dt.datetime.fromisoformat(r["until"]))
                    for r in state.get("retired", [])
                ),
                sequence=int(state["sequence"]),
                svid_ttl=dt.timedelta(seconds=int(state["svid_ttl"])),
                ca_ttl=dt.timedelta(seconds=int(state["ca_ttl"])),
                refresh_hint=int(state["refresh_hint"]),
                directory=d,
                passphrase=passphrase,
                emitter=emitter,
            )
        except (KeyError, TypeError) as exc:
            raise CAStateError(f"{d / STATE_FILE} is missing or has a bad field: {exc}") from exc
        now = current_time or utcnow()
        recorded = {
            int(g): dt.datetime.fromisoformat(t) for g, t in state.get("last_leaf", {}).items()
        }
        ca._persisted_last_leaf = dict(recorded)
        ca._last_leaf = {g: t + LAST_LEAF_SLACK for g, t in recorded.items()}
        if ca._active.not_after <= now:
            if emitter is not None:
                emitter.deny(
                    "ca.expired",
                    service="ca",
                    reason=f"active CA certificate expired at {ca._active.not_after.isoformat()}",
                    detail={"directory": str(d), "generation": ca._active.generation},
                )
            raise IdentityExpiredError(
                f"the active CA certificate in {d} (generation {ca._active.generation}) "
                f"expired at {ca._active.not_after.isoformat()}",
                advice=(
                    "Every SVID it signed has expired too. "
                    "Rotate the CA and re-attest the workloads:\n"
                    f"  ramparts ca rotate --dir {d} --now\n"
                    f"then restart `ramparts up` so each service gets a fresh SVID."
                ),
            )
        return ca

    # ------------------------------------------------------------------ persistence

    def _write_authority(self, a: Authority) -> None:
        if self.directory is None:
            return
        base = self.directory / "authorities"
        write_private_file(base / f"{a.generation}.key", private_key_pem(a.key, self._passphrase))
        write_public_file(
            base / f"{a.generation}.crt", a.cert.public_bytes(serialization.Encoding.PEM)
        )

    def _save_state(self) -> None:
        if self.directory is None:
            return
        state = {
            "trust_domain": self.trust_domain,
            "active": self._active.generation,
            "next": self._next.generation if self._next else None,
            "retired": [
                {"generation": a.generation, "until": u.isoformat()} for a, u in self._retired
            ],
            "sequence": self._sequence,
            "svid_ttl": int(self.svid_ttl.total_seconds()),
            "ca_ttl": int(self.ca_ttl.total_seconds()),
            "refresh_hint": self.refresh_hint,
            "last_leaf": {str(g): t.isoformat() for g, t in self._persisted_last_leaf.items()},
        }
        write_public_file(self.directory / STATE_FILE, json.dumps(state, indent=2).encode())

    def _event(self, type_: str, reason: str, **detail: object) -> None:
        if self._emitter is not None:
            self._emitter.allow(type_, service="ca", reason=reason, detail=detail)

    # ------------------------------------------------------------------ bundle

    @property
    def active(self) -> Authority:
        return self._active

    def bundle(self) -> TrustBundle:
        """Every CA a peer must trust now: retired (until their leaves expire), active, next."""
        with self._lock:
            certs = [a.cert for a, _ in self._retired] + [self._active.cert]
            if self._next is not None:
                certs.append(self._next.cert)
            return TrustBundle(self.trust_domain, tuple(certs), self._sequence, self.refresh_hint)

    # ------------------------------------------------------------------ issuing

    def issue(
        self,
        spiffe_id: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        ttl: dt.timedelta | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Sign a leaf SVID for ``spiffe_id`` over ``public_key``; returns the chain, leaf first."""
        return self.issue_at_time(spiffe_id, public_key, utcnow(), ttl=ttl)

    def issue_at_time(
        self,
        spiffe_id: str,
        public_key: ec.EllipticCurvePublicKey,
        current_time: dt.datetime,
        *,
        ttl: dt.timedelta | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """:meth:`issue` as if the clock read ``current_time`` (tests build expired SVIDs)."""
        td, _ = parse_spiffe_id(spiffe_id)
        if td != self.trust_domain:
            raise IssuanceRefused(
                f"{spiffe_id} is outside this CA's trust domain {self.trust_domain}"
            )
        if (
            not isinstance(public_key, ec.EllipticCurvePublicKey)
            or public_key.curve.name != "secp256r1"
        ):
            raise IssuanceRefused("SVID keys must be ECDSA P-256")
        ttl = ttl or self.svid_ttl
        if not dt.timedelta(0) < ttl <= MAX_SVID_TTL:
            raise IssuanceRefused(
                f"SVID ttl must be positive and at most {MAX_SVID_TTL}, got {ttl}"
            )
        with self._lock:
            signer = self._active
            # X.509 times have whole seconds (RFC 5280 §4.1.2.5); keep the record exact.
            not_after = min(current_time + ttl, signer.not_after).replace(microsecond=0)
            last = self._last_leaf.get(signer.generation)
            self._last_leaf[signer.generation] = max(last, not_after) if last else not_after
            persisted = self._persisted_last_leaf.get(signer.generation)
            if self.directory is not None and (
                persisted is None or not_after > persisted + LAST_LEAF_SLACK
            ):
                # Recorded at most once a minute; load() adds the slack back.
                self._persisted_last_leaf[signer.generation] = not_after
                self._save_state()
        cert = build_svid_certificate(
            spiffe_id=spiffe_id,
            public_key=public_key,
            issuer_cert=signer.cert,
            issuer_key=signer.key,
            not_before=current_time - CLOCK_SKEW,
            not_after=not_after,
        )
        self._event(
            "ca.issued",
            f"issued SVID for {spiffe_id}",
            spiffe_id=spiffe_id,
            serial=format(cert.serial_number, "x"),
            not_after=not_after.isoformat(),
            ca_generation=signer.generation,
        )
        return (cert,)

    def issue_svid(self, spiffe_id: str, *, ttl: dt.timedelta | None = None) -> X509SVID:
        """Generate a key and issue an SVID for it (local attestation, the CA's own identity)."""
        key = new_private_key()
        return X509SVID.from_parts(self.issue(spiffe_id, key.public_key(), ttl=ttl), key)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest,
        spiffe_id: str,
        *,
        ttl: dt.timedelta | None = None,
    ) -> tuple[x509.Certificate, ...]:
        """Sign a workload's own CSR for ``spiffe_id`` (the identity it proved), and no other.

        The CSR must be self-signed by the key it carries; if it names URI SANs
        they must be exactly ``[spiffe_id]``. Whatever else it asks for (other
        SANs, CA flags, extensions) is ignored: the profile comes from the CA.
        """
        if not csr.is_signature_valid:
            raise IssuanceRefused("CSR signature does not verify (proof of key possession failed)")
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
        if san is not None:
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
            if uris and uris != [spiffe_id]:
                raise IssuanceRefused(
                    f"CSR asks for {uris} but the caller proved {spiffe_id}; "
                    "a workload may renew only its own identity"
                )
        return self.issue(spiffe_id, csr.public_key(), ttl=ttl)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ rotation

    def prepare_rotation(self, current_time: dt.datetime | None = None) -> Authority:
        """Create the next CA and publish it in the bundle; it signs nothing yet."""
        now = current_time or utcnow()
        with self._lock:
            if self._next is not None:
                return self._next
            gens = [self._active.generation, *(a.generation for a, _ in self._retired)]
            nxt = _new_authority(self.trust_domain, max(gens) + 1, now, self.ca_ttl)
            self._write_authority(nxt)
            self._next, self._next_published = nxt, now
            self._sequence += 1
            self._save_state()
        self._event(
            "ca.rotation_prepared",
            f"CA generation {nxt.generation} published in the bundle",
            generation=nxt.generation,
            sequence=self._sequence,
        )
        return nxt

    def activate_next(self, current_time: dt.datetime | None = None) -> Authority:
        """Make the published next CA the signer; the old one is retired, still trusted.

        It stays in the bundle until the last leaf it could have signed expires.
        """
        now = current_time or utcnow()
        with self._lock:
            if self._next is None:
                raise CAStateError("no next CA to activate; call prepare_rotation first")
            old = self._active
            # No record means this CA object, which has seen every issuance since
            # it was created or loaded (load() restores the record), signed nothing.
            last = self._last_leaf.get(old.generation, now)
            self._retired.append((old, last))
            self._active, self._next, self._next_published = self._next, None, None
            self._sequence += 1
            self._save_state()
        self._event(
            "ca.rotated",
            f"CA generation {self._active.generation} now signs",
            generation=self._active.generation,
            retired=old.generation,
        )
        return self._active

    def prune(self, current_time: dt.datetime | None = None) -> list[int]:
        """Drop retired CAs whose last possible leaf has expired; returns their generations."""
        now = current_time or utcnow()
        with self._lock:
            gone = [a for a, until in self._retired if until <= now]
            if not gone:
                return []
            self._retired = [(a, u) for a, u in self._retired if u > now]
            self._sequence += 1
            self._save_state()
            if self.directory is not None:
                for a in gone:
                    for suffix in (".key", ".crt"):
                        (self.directory / "authorities" / f"{a.generation}{suffix}").unlink(
                            missing_ok=True
                        )
        return [a.generation for a in gone]

    def rotate(self, current_time: dt.datetime | None = None) -> Authority:
        """Prepare and activate at once; only when workloads re-attest (``ca rotate --now``)."""
        self.prepare_rotation(current_time)
        return self.activate_next(current_time)

    def maintain(self, current_time: dt.datetime | None = None) -> None:
        """Run the rotation schedule: publish the next CA at half the active CA's life,
        let it sign at two thirds (and at least two refresh hints after publishing), prune.
        """
        now = current_time or utcnow()
        with self._lock:
            born = self._active.cert.not_valid_before_utc + CLOCK_SKEW
            life = self._active.not_after - born
            if self._next is None and now >= born + life / 2:
                self.prepare_rotation(now)
            published = self._next_published
            if (
                self._next is not None
                and published is not None
                and now >= born + life * 2 / 3
                and now >= published + dt.timedelta(seconds=2 * self.refresh_hint)
            ):
                self.activate_next(now)
        self.prune(now)
