"""The SSRF-safe outbound HTTP client.

For every hop (the first request and each redirect) the client parses the URL
once, checks it against the service's allow-list, resolves the host itself,
checks every address, and then connects to the address it checked: the
connection is *pinned*, so there is no second DNS lookup for a rebinding
attack to win. TLS is still verified against the host name.

Pinning uses httpcore with a network backend that ignores the host httpcore
asks for and dials the address the guard checked for that host and port; with
no checked address for it, the backend refuses to dial at all.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpcore

from ramparts.egress._addresses import IPAddress
from ramparts.egress._policy import EgressBlocked, EgressPolicy
from ramparts.egress._url import DEFAULT_PORTS, ParsedURL
from ramparts.events import EventEmitter

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that must not follow a redirect to another origin.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

_pin: contextvars.ContextVar[tuple[str, int, str] | None] = contextvars.ContextVar(
    "ramparts_egress_pin", default=None
)


class EgressError(Exception):
    """The request was allowed but failed: time-out, oversized response, network error."""


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve with the system resolver, every address family, deduplicated in order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(sockaddr[0]), None)
    return list(seen)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _pin.get()
        if pin is None or (pin[0], pin[1]) != (host, port):
            raise httpcore.ConnectError(f"no checked address pinned for {host}:{port}")
        return await self._inner.connect_tcp(pin[2], port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True, slots=True)
class EgressResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    url: str  # the final URL after redirects
    redirects: int

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


class EgressClient:
    """HTTP client for calls leaving the system. One per service; reuse it.

    Args:
        policy: the service's egress policy (``EgressPolicy.from_topology``).
        emitter: where ``egress.blocked`` events go.
        resolver: async ``(host, port) -> [addresses]``; the system resolver by default.
        ssl_context: trust store for TLS; the system default if omitted.
        max_redirects, max_response_bytes, timeout: bounds on each request.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        emitter: EventEmitter,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        max_redirects: int = 3,
        max_response_bytes: int = 1 << 20,
        timeout: float = 10.0,
    ) -> None:
        self.policy = policy
        self.emitter = emitter
        self.resolver = resolver
        self.max_redirects = max_redirects
        self.max_response_bytes = max_response_bytes
        self.timeout = timeout
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            network_backend=_PinnedBackend(),
            max_connections=20,
            keepalive_expiry=30.0,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> EgressClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def check(self, url: str) -> tuple[ParsedURL, IPAddress]:
        """Run the whole parse-allow-resolve-check path without connecting.

        Raises :class:`EgressBlocked` (and emits ``egress.blocked``) when refused.
        """
        try:
            decision = self.policy.check_url(url)
            addrs = (
                [decision.url.address]
                if decision.url.address is not None
                else await self.resolver(decision.url.host, decision.url.port)
            )
            return decision.url, self.policy.check_addresses(decision, addrs)
        except EgressBlocked as exc:
            self.emitter.deny(
                "egress.blocked",
                reason=exc.reason,
                service=self.policy.service,
                detail={"destination": exc.destination},
            )
            raise

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
    ) -> EgressResponse:
        """Send one request, following at most ``max_redirects`` checked redirects."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._follow(method.upper(), url, dict(headers or {}), content)
        except TimeoutError:
            raise EgressError(f"egress request timed out after {self.timeout}s") from None

    async def _follow(
        self, method: str, url: str, headers: dict[str, str], content: bytes
    ) -> EgressResponse:
        redirects = 0
        while True:
            parsed, addr = await self.check(url)
            status, resp_headers, body = await self._send(method, parsed, addr, headers, content)
            location = _header(resp_headers, "location")
            if status not in REDIRECT_STATUSES or location is None:
                return EgressResponse(status, resp_headers, body, str(parsed), redirects)
            if redirects >= self.max_redirects:
                raise EgressError(f"more than {self.max_redirects} redirects")
            redirects += 1
            next_url = urljoin(str(parsed), location)
            if status in (301, 302, 303) and method != "HEAD":
                method, content = "GET", b""
            if not next_url.startswith(parsed.origin + "/"):
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            url = next_url

    async def _send(
        self,
        method: str,
        url: ParsedURL,
        addr: IPAddress,
        headers: dict[str, str],
        content: bytes,
    ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        host = url.host
        authority = f"[{host}]" if url.host_kind == "ipv6" else host
        if url.port != DEFAULT_PORTS[url.scheme]:
            authority += f":{url.port}"
        sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        sent["Host"] = authority
        token = _pin.set((host, url.port, str(addr)))
        try:
            target = httpcore.URL(scheme=url.scheme, host=host, port=url.port, target=url.target)
            async with self._pool.stream(
                method, target, headers=list(sent.items()), content=content
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_stream():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise EgressError(
                            f"response from {url.origin} exceeds {self.max_response_bytes} bytes"
                        )
                resp_headers = tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers
                )
                return response.status, resp_headers, bytes(body)
        except httpcore.TimeoutException as exc:
            raise EgressError(f"timed out talking to {url.origin}") from exc
        except httpcore.NetworkError as exc:
            raise EgressError(f"network error talking to {url.origin}: {exc}") from exc
        except httpcore.ProtocolError as exc:
            raise EgressError(f"protocol error from {url.origin}: {exc}") from exc
        finally:
            _pin.reset(token)


def _header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)
