"""Connections to the services behind the gateway: a keep-alive pool per service.

Each :class:`UpstreamPool` keeps idle HTTP/1.1 connections to one service.
With :class:`UpstreamTLS` the connection is mutual TLS with the gateway's own
SVID, and the service's certificate must carry exactly the SPIFFE ID the
topology gives it (an X.509-SVID has exactly one URI SAN, SPIFFE X509-SVID
section 2); anything else is closed before a byte of the request is sent.
Plain TCP is used only where the gateway was explicitly told so (local
development and tests).

:class:`UpstreamConnection` parses responses with llhttp (httptools) and
hands each event to the client connection it is bound to; the client side
decides how to frame them for its client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools

from ramparts.gateway._http import HOP_BY_HOP
from ramparts.identity import PeerIdentityError, verify_peer

# Response headers the gateway itself sets for the client; a service's copy is dropped
# so the client sees exactly one, the gateway's.
_GATEWAY_OWNED = frozenset({b"x-request-id"})

if TYPE_CHECKING:
    from ramparts.gateway._request import Request

__all__ = ["UpstreamConnection", "UpstreamError", "UpstreamPool", "UpstreamTLS"]

#: A response head larger than this is refused (502); no real service needs it.
MAX_RESPONSE_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamTLS:
    """How to call one service over mTLS: the client context (our SVID) and its SPIFFE ID."""

    context: ssl.SSLContext
    spiffe_id: str
    server_hostname: str | None = None

    def __post_init__(self) -> None:
        if self.context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError(
                f"UpstreamTLS for {self.spiffe_id}: the context must verify the server"
            )
        if not self.spiffe_id.startswith("spiffe://"):
            raise ValueError(
                f"UpstreamTLS.spiffe_id must be a spiffe:// URI, got {self.spiffe_id!r}"
            )


class UpstreamError(Exception):
    """The service could not be reached or misbehaved; ``status`` is 502 or 504."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _check_peer(transport: asyncio.BaseTransport, expected: str) -> str | None:
    """None if the verified peer is ``expected``; else what it presented (for the event).

    The SVID rules live in one place, ``ramparts.identity.verify_peer``.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return "no TLS session"
    trust_domain = expected.removeprefix("spiffe://").partition("/")[0]
    try:
        verify_peer(ssl_object, trust_domain, expected)
    except PeerIdentityError as exc:
        return str(exc)
    return None


class UpstreamPool:
    """Idle keep-alive connections to one service, and how to open new ones."""

    def __init__(
        self,
        service: str,
        host: str,
        port: int,
        *,
        tls: UpstreamTLS | None,
        max_idle: int,
        connect_timeout: float,
        max_connections: int = 1024,
        on_identity_mismatch: Callable[[str, str], None] | None = None,
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.tls = tls
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.on_identity_mismatch = on_identity_mismatch
        self.idle: list[UpstreamConnection] = []
        self.max_connections = max_connections
        # Connections open or being opened. At the cap, a caller waits (up to
        # connect_timeout) for one to be released or closed, so a burst cannot
        # exhaust file descriptors here or overwhelm the service.
        self.open = 0
        self.waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self.closed = False
        self.opened = 0  # connections ever opened, for tests and metrics

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def acquire_idle(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn
        return None

    async def connect(self, registry: set[Any]) -> UpstreamConnection:
        """Open a new connection (and check the service's SPIFFE ID under mTLS).

        Raises:
            UpstreamError: 502 if refused or the identity is wrong, 504 on timeout.
        """
        loop = asyncio.get_running_loop()
        while self.open >= self.max_connections:
            waiter: asyncio.Future[UpstreamConnection | None] = loop.create_future()
            self.waiters.append(waiter)
            try:
                handed = await asyncio.wait_for(waiter, self.connect_timeout)
            except TimeoutError:
                raise UpstreamError(503, f"{self.service}: connection limit reached") from None
            if handed is not None:
                return handed  # a released connection, handed over directly
        self.open += 1
        tls = self.tls
        try:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: UpstreamConnection(self, registry),
                    self.host,
                    self.port,
                    ssl=tls.context if tls else None,
                    server_hostname=(tls.server_hostname or self.host) if tls else None,
                ),
                self.connect_timeout,
            )
        except TimeoutError:
            self.connection_closed()
            raise UpstreamError(504, f"connect to {self.service} timed out") from None
        except ssl.SSLError as exc:
            self.connection_closed()
            raise UpstreamError(
                502, f"TLS handshake with {self.service} failed: {exc.reason}"
            ) from None
        except OSError as exc:
            self.connection_closed()
            raise UpstreamError(
                502, f"connect to {self.service} failed: {exc.strerror or exc}"
            ) from None
        if tls is not None:
            problem = _check_peer(transport, tls.spiffe_id)
            if problem is not None:
                transport.abort()
                if self.on_identity_mismatch is not None:
                    self.on_identity_mismatch(self.service, problem)
                raise UpstreamError(502, f"{self.service} presented an unexpected identity")
        self.opened += 1
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if not self.closed and conn.usable:
            while self.waiters:
                waiter = self.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
        if self.closed or not conn.usable or len(self.idle) >= self.max_idle:
            conn.close()
            return
        self.idle.append(conn)

    def connection_closed(self) -> None:
        """One connection fewer (closed, or failed to open): let one waiter open another."""
        self.open -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close idle connections; busy ones close when released."""
        self.closed = True
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to a service, bound to one exchange at a time."""

    def __init__(self, pool: UpstreamPool, registry: set[Any]) -> None:
        # Global state.
        self.pool = pool
        self.registry = registry
        # Per-connection state.
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.usable = False
        self.reused = False
        # Inactivity deadline: ``timeout`` seconds without progress either way
        # (request bytes written or response bytes read) ends the exchange.
        self.deadline = 0.0
        self.timeout = 0.0
        self.progress = False
        self.corked: list[bytes] | None = None
        self.read_paused = False
        # Per-exchange state.
        self.client: Any = None
        self.req: Request | None = None
        self.chunked_out = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.reason = b""
        self.skipping_interim = False
        self.got_response = False
        self.response_started = False
        self.request_sent = False

    # -- asyncio callbacks --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.usable = True
        self.registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self.registry.discard(self)
        self.pool.connection_closed()
        client, req = self.client, self.req
        self.client = self.req = None
        if client is not None and req is not None:
            client.upstream_failed(
                req,
                502,
                "upstream closed the connection",
                retryable=self.reused and not self.got_response,
            )

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            # Bytes on an idle connection: the service broke framing. Never reuse it.
            self.close()
            return
        self.got_response = True
        self.progress = True
        client.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            reason = cause.reason if isinstance(cause, UpstreamError) else str(exc)
            self._fail(502, f"invalid response from {self.pool.service}: {reason}")
        finally:
            client.uncork()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_reading("upstream")

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_reading("upstream")

    # -- llhttp callbacks ---------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > MAX_RESPONSE_HEAD_BYTES:
            raise UpstreamError(502, "response head too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                # Never asked for (Upgrade is stripped): the stream is no longer HTTP.
                raise UpstreamError(502, "unexpected protocol switch from upstream")
            self.skipping_interim = True
            self.headers = []
            self.reason = b""
            return
        headers = self.headers
        self.headers = []
        tokens: set[bytes] = set()
        content_length = None
        for name, value in headers:
            if name == b"connection":
                tokens.update(t.strip().lower() for t in value.split(b","))
            elif name == b"content-length":
                content_length = value
        drop = (HOP_BY_HOP | tokens if tokens else HOP_BY_HOP) | _GATEWAY_OWNED
        kept = [(n, v) for n, v in headers if n not in drop]
        self.response_started = True
        client, req = self.client, self.req
        client.upstream_head(req, status, self.reason, kept, content_length)
        if req is not None and req.method == "HEAD":
            # llhttp cannot be told that a response to HEAD has no body
            # (RFC 9110 section 9.3.2), so it would wait for Content-Length
            # bytes: the exchange ends here and the connection is not reused.
            self._unbind()
            self.close()
            client.upstream_complete(req)

    def on_body(self, body: bytes) -> None:
        client = self.client
        if client is not None:
            client.upstream_body(self.req, body)

    def on_message_complete(self) -> None:
        if self.skipping_interim:
            self.skipping_interim = False
            return
        client, req = self.client, self.req
        if client is None:
            return
        keep = self.usable and self.parser.should_keep_alive() and self.request_sent
        self._unbind()
        if keep:
            self.deadline = 0.0
            self.pool.release(self)
        else:
            self.close()
        client.upstream_complete(req)

    # -- used by the client side --------------------------------------------

    def begin(self, req: Request, client: Any, head: bytes, now: float, timeout: float) -> None:
        self.req = req
        self.client = client
        self.headers = []
        self.reason = b""
        self.head_bytes = 0
        self.got_response = False
        self.response_started = False
        self.request_sent = False
        self.chunked_out = req.chunked
        self.timeout = timeout
        self.deadline = now + timeout
        self.progress = False
        self.write(head)

    def write(self, data: bytes) -> None:
        corked = self.corked
        if corked is not None:
            corked.append(data)
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def write_body(self, chunk: bytes) -> None:
        self.progress = True
        if self.chunked_out:
            self.write(b"%x\r\n" % len(chunk))
            self.write(chunk)
            self.write(b"\r\n")
        else:
            self.write(chunk)

    def end_body(self) -> None:
        if self.chunked_out:
            self.write(b"0\r\n\r\n")
        self.request_sent = True

    def cork(self) -> None:
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        corked, self.corked = self.corked, None
        if corked and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(corked))

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    def detach(self) -> None:
        """The client gave up on this exchange: the connection cannot be reused."""
        self._unbind()
        self.close()

    def on_deadline(self, now: float) -> None:
        """Called by the sweeper once ``deadline`` passed: extend on progress, else 504."""
        if self.progress or self.read_paused:
            # Data moved, or we are not reading because the client is slow (its
            # own send timeout covers that): a new window starts now.
            self.progress = False
            self.deadline = now + self.timeout
            return
        client, req = self.client, self.req
        self._unbind()
        self.close()
        if client is not None and req is not None:
            client.upstream_failed(
                req, 504, f"{self.pool.service} did not answer in time", retryable=False
            )

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # -- internals ----------------------------------------------------------

    def _unbind(self) -> None:
        if self.read_paused:
            self.resume_reading()
        self.client = None
        self.req = None
        self.deadline = 0.0
        self.reused = True

    def _fail(self, status: int, reason: str) -> None:
        client, req = self.client, self.req
        self._unbind()
        self.close()
        if client is not None and req is not None:
            client.upstream_failed(req, status, reason, retryable=False)
