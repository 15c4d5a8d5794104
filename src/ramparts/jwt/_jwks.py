"""Where an issuer's keys come from: a JWKS URL (httpx) or a file.

Refresh rules, in one place:

* the first use loads the keys; with no keys known every token fails closed
  (``jwks_unavailable``);
* after ``refresh_interval`` the cached keys are still served while one
  background refresh runs (stale-while-revalidate);
* an unknown ``kid`` asks for a refresh, but at most one fetch starts per
  ``min_refresh_interval`` per issuer, and concurrent callers share the
  fetch in flight, so a flood of tokens with made-up kids cannot turn into a
  flood of requests to the identity provider;
* a failed fetch keeps the previous keys (the endpoint being down must not
  take the gateway down) and records the error for :meth:`JWKSSource.statistics`.

The monotonic clock is injectable (``clock=``) so tests drive the schedule.
This class is not thread-safe: use one per event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ramparts.jwt._errors import JWKSError, KeyResolutionError
from ramparts.jwt._keys import KeyRing, parse_jwks

#: Keys are re-fetched this often even when nothing asks (seconds).
DEFAULT_REFRESH_INTERVAL = 300.0
#: At most one fetch per issuer per this many seconds, whatever tokens arrive.
DEFAULT_MIN_REFRESH_INTERVAL = 30.0
#: A JWKS of 64 RSA-4096 keys is ~60 KiB; 512 KiB bounds a hostile endpoint.
MAX_JWKS_BYTES = 512 * 1024
DEFAULT_FETCH_TIMEOUT = 5.0

KeyRingListener = Callable[[KeyRing | None, KeyRing], None]


@dataclass(frozen=True, slots=True)
class SourceStatistics:
    """A snapshot of one source's counters."""

    location: str
    fetches: int
    failures: int
    generation: int
    keys: int
    last_error: str | None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class JWKSSource:
    """One issuer's JWKS, cached and refreshed under the rules in the module docstring.

    Args:
        location: an ``https://`` URL (``http://`` only to a loopback host) or a file path.
        allow_symmetric: accept HMAC secrets; only ever for files.
        clock: monotonic seconds, injectable for tests.
        transport: an httpx transport, for tests that cannot bind a socket.

    Raises:
        ValueError: for a plain-http URL to a non-loopback host.
    """

    def __init__(
        self,
        location: str,
        *,
        allow_symmetric: bool = False,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
        verify_tls: bool | str = True,
    ) -> None:
        self.location = location
        scheme = urlsplit(location).scheme.lower() if "://" in location else ""
        self.is_url = scheme in ("http", "https")
        if "://" in location and not self.is_url:
            raise ValueError(f"JWKS location {location!r}: only http(s) URLs or file paths")
        if scheme == "http" and not _is_loopback(urlsplit(location).hostname or ""):
            # Keys fetched over plain HTTP can be swapped by anyone on the path.
            raise ValueError(f"JWKS URL {location!r} must use https (plain http only to loopback)")
        # A shared secret served over the network is already leaked.
        self.allow_symmetric = allow_symmetric and not self.is_url
        self.refresh_interval = refresh_interval
        self.min_refresh_interval = min_refresh_interval
        self.fetch_timeout = fetch_timeout
        self._clock = clock
        self._transport = transport
        self._verify_tls = verify_tls
        self._listeners: list[KeyRingListener] = []

        # Global state, changed only by _install.
        self._keyring: KeyRing | None = None
        self._generation = 0
        self._loaded_at: float | None = None
        # Refresh bookkeeping.
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._fetches = 0
        self._failures = 0
        self._last_error: str | None = None

    # -- public surface -------------------------------------------------

    @property
    def keyring(self) -> KeyRing | None:
        """The keys currently trusted, or None before the first successful load."""
        return self._keyring

    @property
    def generation(self) -> int:
        """Bumped every time the set of trusted keys changes."""
        return self._generation

    def add_listener(self, listener: KeyRingListener) -> None:
        """Call ``listener(old, new)`` whenever the trusted keys change."""
        self._listeners.append(listener)

    def statistics(self) -> SourceStatistics:
        return SourceStatistics(
            location=self.location,
            fetches=self._fetches,
            failures=self._failures,
            generation=self._generation,
            keys=len(self._keyring.keys) if self._keyring else 0,
            last_error=self._last_error,
        )

    async def get_keyring(self) -> KeyRing:
        """The trusted keys, loading them on first use.

        Raises:
            KeyResolutionError: ``jwks_unavailable`` when no key has ever loaded.
        """
        ring = self._keyring
        if ring is None:
            await self.refresh()
            ring = self._keyring
            if ring is None:
                raise KeyResolutionError(
                    f"no keys known for JWKS {self.location}: {self._last_error or 'not loaded'}",
                    reason="jwks_unavailable",
                )
            return ring
        loaded_at = self._loaded_at if self._loaded_at is not None else float("-inf")
        if self._clock() - loaded_at >= self.refresh_interval:
            # Serve what we have; refresh in the background (rate limit applies).
            self._start_refresh()
        return ring

    async def refresh(self) -> bool:
        """Fetch now unless a fetch ran less than ``min_refresh_interval`` ago.

        Concurrent callers share one fetch. Returns True if the caller waited
        for a fetch (successful or not), False if the rate limit said no.
        """
        task = self._start_refresh()
        if task is None:
            return False
        # shield: a cancelled request must not cancel the fetch others share.
        await asyncio.shield(task)
        return True

    # -- internals ------------------------------------------------------

    def _start_refresh(self) -> asyncio.Task[None] | None:
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is not None and not task.done() and task.get_loop() is loop:
            return task
        now = self._clock()
        if self._last_attempt is not None and now - self._last_attempt < self.min_refresh_interval:
            return None
        self._last_attempt = now
        task = loop.create_task(self._fetch_and_install(), name=f"jwks-refresh {self.location}")
        self._inflight = task
        return task

    async def _fetch_and_install(self) -> None:
        self._fetches += 1
        try:
            raw = await (self._fetch_url() if self.is_url else self._read_file())
            ring = parse_jwks(raw, source=self.location, allow_symmetric=self.allow_symmetric)
        except Exception as exc:
            # Any failure to obtain keys is an outage of the key source: it is
            # recorded and the previous keys stay in force. It must never
            # surface in a caller's verify path as an unexpected exception.
            self._failures += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            return
        self._last_error = None
        self._install(ring)

    async def _read_file(self) -> bytes:
        path = Path(self.location)
        raw = await asyncio.to_thread(path.read_bytes)
        if len(raw) > MAX_JWKS_BYTES:
            raise JWKSError(f"JWKS file {path} is {len(raw)} bytes, limit {MAX_JWKS_BYTES}")
        return raw

    async def _fetch_url(self) -> bytes:
        async with (
            httpx.AsyncClient(
                timeout=self.fetch_timeout,
                follow_redirects=False,
                transport=self._transport,
                verify=self._verify_tls,
                headers={"accept": "application/jwk-set+json, application/json"},
            ) as client,
            client.stream("GET", self.location) as response,
        ):
            if response.status_code != 200:
                raise JWKSError(f"JWKS URL {self.location} answered HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JWKSError(
                        f"JWKS URL {self.location} sent more than {MAX_JWKS_BYTES} bytes"
                    )
            return bytes(body)

    def _install(self, ring: KeyRing) -> None:
        old = self._keyring
        self._loaded_at = self._clock()
        if old is not None and old.identities == ring.identities:
            return
        self._keyring = ring
        self._generation += 1
        for listener in self._listeners:
            listener(old, ring)
