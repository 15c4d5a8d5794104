"""Workload-side rotation: renew the SVID at half its lifetime through the CA's mTLS API.

>>> # rotator = SVIDRotator(source, "https://127.0.0.1:7000", emitter=emitter)
>>> # asyncio.create_task(rotator.run())

The workload proves who it is with the SVID it holds (a fresh mTLS connection
per renewal, so the CA sees a certificate valid *now*) and sends a CSR for a
new key; the CA signs it for the identity it verified. The bundle comes back
with every renewal and is polled at ``spiffe_refresh_hint`` in between, so a
newly published CA is trusted before it signs anything.

A CA that stays down past the SVID's expiry strands the workload: an expired
certificate cannot authenticate to renew. :meth:`SVIDRotator.run` then emits
``svid.expired`` and raises :class:`IdentityExpiredError` whose
``diagnostics()`` says what expired, since when the CA failed, and how to recover.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Callable

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ramparts.events import EventEmitter
from ramparts.identity._bundle import TrustBundle
from ramparts.identity._ca_api import ca_spiffe_id
from ramparts.identity._client import service_client
from ramparts.identity._errors import IdentityError, IdentityExpiredError
from ramparts.identity._source import IdentitySource
from ramparts.identity._svid import X509SVID, new_private_key, utcnow

MIN_RETRY = 0.2
MAX_RETRY = 30.0


class SVIDRotator:
    """Keeps one :class:`IdentitySource` renewed against the CA API."""

    def __init__(
        self,
        source: IdentitySource,
        ca_url: str,
        *,
        emitter: EventEmitter,
        ca_id: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        recovery_hint: str | None = None,
    ) -> None:
        self.source = source
        self.ca_url = ca_url.rstrip("/")
        self.ca_id = ca_id or ca_spiffe_id(source.trust_domain)
        self.emitter = emitter
        self.clock = clock
        self.service = emitter.service or source.spiffe_id.rsplit("/", 1)[-1]
        self.recovery_hint = recovery_hint
        self.renewals = 0
        self.last_error: BaseException | None = None
        self.failing_since: dt.datetime | None = None
        self._last_bundle_fetch = clock()

    def _client(self) -> httpx.AsyncClient:
        return service_client(self.source, self.ca_id, self.ca_url, emitter=self.emitter)

    async def renew_once(self) -> X509SVID:
        """Ask the CA for a fresh SVID over a new connection; install it (and the bundle)."""
        key = new_private_key()
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(self.source.spiffe_id)]
                ),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        async with self._client() as client:
            resp = await client.post(
                "/v1/svid",
                content=csr.public_bytes(serialization.Encoding.PEM),
                headers={"content-type": "application/pkcs10"},
            )
        if resp.status_code != 200:
            raise IdentityError(
                f"CA refused renewal of {self.source.spiffe_id}: "
                f"HTTP {resp.status_code} {resp.text[:200]}"
            )
        data = resp.json()
        chain = x509.load_pem_x509_certificates(data["cert_chain"].encode())
        svid = X509SVID.from_parts(chain, key)
        if svid.spiffe_id != self.source.spiffe_id:
            raise IdentityError(
                f"CA returned an SVID for {svid.spiffe_id}, expected {self.source.spiffe_id}"
            )
        bundle = TrustBundle.from_jwks(self.source.trust_domain, data["bundle"])
        self.source.update(svid=svid, bundle=bundle)
        self._last_bundle_fetch = self.clock()
        self.renewals += 1
        self.emitter.allow(
            "svid.renewed",
            service=self.service,
            reason=f"renewed {svid.spiffe_id} until {svid.not_after.isoformat()}",
            detail={
                "serial": format(svid.leaf.serial_number, "x"),
                "bundle_sequence": bundle.sequence,
            },
        )
        return svid

    async def refresh_bundle(self) -> TrustBundle:
        async with self._client() as client:
            resp = await client.get("/v1/bundle")
        if resp.status_code != 200:
            raise IdentityError(f"CA refused the bundle: HTTP {resp.status_code}")
        bundle = TrustBundle.from_jwks(self.source.trust_domain, resp.content)
        self.source.update(bundle=bundle)
        self._last_bundle_fetch = self.clock()
        return bundle

    def _stranded(self) -> IdentityExpiredError:
        svid = self.source.svid
        since = self.failing_since.isoformat() if self.failing_since else "unknown"
        err = (
            f"{self.last_error.__class__.__name__}: {self.last_error}"
            if self.last_error
            else "none recorded"
        )
        message = (
            f"SVID {svid.spiffe_id} expired at {svid.not_after.isoformat()} without renewal; "
            f"the CA at {self.ca_url} has failed since {since} (last error: {err})"
        )
        advice = self.recovery_hint or (
            "An expired SVID cannot authenticate to the CA, "
            "so this workload cannot renew by itself.\n"
            "1. Start the CA (`ramparts ca serve`, or `ramparts up` which starts it) "
            f"and check {self.ca_url}.\n"
            "2. Re-attest this workload: `ramparts ca issue SERVICE --dir CA_DIR "
            "--topology ramparts.yaml --out IDENTITY_DIR` (or restart `ramparts up`), "
            "then restart the service."
        )
        self.emitter.deny(
            "svid.expired",
            service=self.service,
            reason=message,
            detail={
                "spiffe_id": svid.spiffe_id,
                "not_after": svid.not_after.isoformat(),
                "ca_url": self.ca_url,
            },
        )
        return IdentityExpiredError(message, advice=advice)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Renew forever (until ``stop`` is set). Raises IdentityExpiredError when stranded."""
        stop = stop or asyncio.Event()
        retry = MIN_RETRY
        while not stop.is_set():
            now = self.clock()
            svid = self.source.svid
            if now >= svid.not_after:
                raise self._stranded()
            bundle_due = self._last_bundle_fetch + dt.timedelta(
                seconds=self.source.bundle.refresh_hint
            )
            due = min(svid.renew_at, bundle_due) if self.failing_since is None else now
            wait = (due - now).total_seconds()
            if wait > 0:
                # Never sleep past the expiry: wake to report a stranded workload on time.
                wait = min(wait, max((svid.not_after - now).total_seconds(), 0.01))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                    return
                except TimeoutError:
                    continue
            try:
                if self.clock() >= svid.renew_at or self.failing_since is not None:
                    await self.renew_once()
                else:
                    await self.refresh_bundle()
            except (OSError, httpx.HTTPError, IdentityError, ValueError, KeyError) as exc:
                self.last_error = exc
                self.failing_since = self.failing_since or self.clock()
                self.emitter.deny(
                    "svid.renewal_failed",
                    service=self.service,
                    reason=f"renewal of {svid.spiffe_id} failed: {exc.__class__.__name__}: {exc}",
                    detail={"ca_url": self.ca_url, "expires": svid.not_after.isoformat()},
                )
                left = (svid.not_after - self.clock()).total_seconds()
                delay = min(retry, max(left, 0.01)) * random.uniform(0.8, 1.2)
                retry = min(retry * 2, MAX_RETRY)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    return
                except TimeoutError:
                    continue
            else:
                self.failing_since, self.last_error, retry = None, None, MIN_RETRY
