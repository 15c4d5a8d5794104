"""Service-to-service HTTP clients over mTLS that check *who* answered, not only who signed.

>>> # ledger = topology.spiffe_id("ledger")
>>> # async with service_client(source, ledger, "https://127.0.0.1:7102") as c:
>>> #     await c.get("/v1/accounts/1/balance")

How the server's SPIFFE ID is checked before any request byte is sent: httpx
hands TLS to httpcore, which calls ``start_tls`` on a network stream and then
writes the request. These clients plug a network backend into httpcore's
connection pool whose streams (1) use the context the
:class:`IdentitySource` holds *now* (so rotated certificates and bundles apply
to new connections while pooled ones live on) and (2) after the handshake,
read the peer certificate of that very connection from its ``SSLObject`` and
check the SPIFFE rules and the expected ID. On mismatch the stream is closed
and :class:`PeerIdentityError` raised from ``start_tls``: httpcore never gets a
stream to write the request to. Connections are pooled and reused (keep-alive),
so the check costs once per connection.

httpx offers no public hook for a network backend, so the transports below
build the pool themselves after ``HTTPTransport.__init__`` (which keeps
httpx's request/response and error mapping); this is pinned to httpx < 1.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from ramparts.events import EventEmitter
from ramparts.identity._errors import PeerIdentityError
from ramparts.identity._source import IdentitySource
from ramparts.identity._tls import verify_peer

DEFAULT_KEEPALIVE_EXPIRY = 20.0  # below serve_mtls's 30 s keep-alive, so the client closes first


class _PeerCheck:
    """The one SPIFFE check both clients run on a fresh TLS connection."""

    def __init__(self, source: IdentitySource, expected: str, emitter: EventEmitter | None) -> None:
        self.source, self.expected, self.emitter = source, expected, emitter

    def __call__(self, ssl_object: Any) -> None:
        try:
            verify_peer(ssl_object, self.source.trust_domain, self.expected)
        except PeerIdentityError as exc:
            if self.emitter is not None:
                self.emitter.deny(
                    "mtls.rejected",
                    service=self.emitter.service or self.source.spiffe_id.rsplit("/", 1)[-1],
                    peer=None,
                    reason=f"server identity rejected: {exc}",
                    detail={"side": "client", "expected": self.expected},
                )
            raise


# ---------------------------------------------------------------------- async


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, check: _PeerCheck) -> None:
        self._inner, self._check = inner, check

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # httpx's ssl_context is ignored on purpose: the source's current one is used.
        tls = await self._inner.start_tls(
            self._check.source.client_context(), server_hostname, timeout
        )
        try:
            self._check(tls.get_extra_info("ssl_object"))
        except PeerIdentityError:
            await tls.aclose()
            raise
        return tls

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, check: _PeerCheck) -> None:
        self._inner, self._check = httpcore.AnyIOBackend(), check

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        s = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _AsyncStream(s, self._check)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("mTLS service clients connect over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pool_options(source: IdentitySource, limits: httpx.Limits) -> dict[str, Any]:
    """The connection-pool settings both transports share (HTTP/1.1, our TLS context)."""
    return {
        "ssl_context": source.client_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": True,
        "http2": False,
    }


def _require_https(base_url: str) -> None:
    if not base_url.startswith("https://"):
        raise ValueError(f"service calls must use https://, got {base_url!r}")


class AsyncSPIFFETransport(httpx.AsyncHTTPTransport):
    """An httpx transport that speaks mTLS as ``source`` and accepts only ``expected_spiffe_id``."""

    def __init__(
        self,
        source: IdentitySource,
        expected_spiffe_id: str,
        *,
        emitter: EventEmitter | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(keepalive_expiry=DEFAULT_KEEPALIVE_EXPIRY)
        super().__init__(verify=source.client_context(), limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_options(source, limits),
            network_backend=_AsyncBackend(_PeerCheck(source, expected_spiffe_id, emitter)),
        )


def service_client(
    source: IdentitySource,
    expected_spiffe_id: str,
    base_url: str,
    *,
    emitter: EventEmitter | None = None,
    timeout: float = 10.0,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for calls to one service over mTLS, with connection reuse."""
    _require_https(base_url)
    return httpx.AsyncClient(
        base_url=base_url,
        transport=AsyncSPIFFETransport(source, expected_spiffe_id, emitter=emitter),
        timeout=timeout,
        follow_redirects=False,
        **client_options,
    )


# ---------------------------------------------------------------------- sync


class _SyncStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, check: _PeerCheck) -> None:
        self._inner, self._check = inner, check

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(self._check.source.client_context(), server_hostname, timeout)
        try:
            self._check(tls.get_extra_info("ssl_object"))
        except PeerIdentityError:
            tls.close()
            raise
        return tls

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _SyncBackend(httpcore.NetworkBackend):
    def __init__(self, check: _PeerCheck) -> None:
        self._inner, self._check = httpcore.SyncBackend(), check

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _SyncStream(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options), self._check
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("mTLS service clients connect over TCP only")


class SPIFFETransport(httpx.HTTPTransport):
    """The blocking twin of :class:`AsyncSPIFFETransport`."""

    def __init__(
        self,
        source: IdentitySource,
        expected_spiffe_id: str,
        *,
        emitter: EventEmitter | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(keepalive_expiry=DEFAULT_KEEPALIVE_EXPIRY)
        super().__init__(verify=source.client_context(), limits=limits)
        self._pool = httpcore.ConnectionPool(
            **_pool_options(source, limits),
            network_backend=_SyncBackend(_PeerCheck(source, expected_spiffe_id, emitter)),
        )


def service_client_sync(
    source: IdentitySource,
    expected_spiffe_id: str,
    base_url: str,
    *,
    emitter: EventEmitter | None = None,
    timeout: float = 10.0,
    **client_options: Any,
) -> httpx.Client:
    """The blocking twin of :func:`service_client`."""
    _require_https(base_url)
    return httpx.Client(
        base_url=base_url,
        transport=SPIFFETransport(source, expected_spiffe_id, emitter=emitter),
        timeout=timeout,
        follow_redirects=False,
        **client_options,
    )
