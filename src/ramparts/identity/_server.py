"""Serve an ASGI app over mTLS with uvicorn, handing the app the verified peer.

>>> # serve_mtls(app, "127.0.0.1", 7102, source, emitter=emitter)   # runs until stopped

Why a wrapper: no ASGI server we can install fills the ASGI TLS extension
(``scope["extensions"]["tls"]``) with the verified client certificate.
uvicorn 0.54 (installed) does not: encode/uvicorn PR #1119 and #3132 are
still open, #3043 was closed. Hypercorn does not (pgjones/hypercorn issue #62
is open; the maintainer waits for the spec, see django/asgiref issue #466).
Granian verifies client certificates but does not pass them on
(emmett-framework/granian issue #788, PR #854 open). uvicorn also hides
handshake failures (asyncio logs them at debug level only) and loads one
``SSLContext`` for the life of the server. uvicorn is what the rest of
Ramparts runs on, so we wrap it.

So uvicorn serves plain TCP and this module's protocol does TLS itself:

1. on accept, pause reading (asyncio's loop honours this; uvloop starts reading
   after ``connection_made`` regardless, so the asyncio loop is required) and
   run ``loop.start_tls`` with the context the :class:`IdentitySource` holds
   *now* (rotation: new connections get new certificates, established ones
   keep theirs);
2. a failed handshake (no client certificate, unknown CA, expired, TLS 1.2)
   is caught here and becomes one ``mtls.rejected`` event;
3. after the handshake the leaf must pass the SPIFFE checks, or the
   connection is dropped before a single HTTP byte is parsed;
4. uvicorn's own HTTP protocol takes over the TLS transport, with the app
   wrapped so every request scope carries the TLS extension of its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ramparts.events import EventEmitter
from ramparts.identity._errors import PeerIdentityError
from ramparts.identity._source import IdentitySource
from ramparts.identity._tls import asgi_tls_extension, leaf_pem, verify_peer

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Options:
    source: IdentitySource
    emitter: EventEmitter
    service: str
    handshake_timeout: float


class _WithTLSExtension:
    """Per-connection app wrapper that puts the connection's TLS extension into each scope."""

    __slots__ = ("app", "tls")

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            # A fresh copy per request: an app that mutates its scope cannot
            # change what the next request on this connection sees.
            tls = dict(self.tls, client_cert_chain=list(self.tls["client_cert_chain"]))
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
        await self.app(scope, receive, send)


def describe_handshake_error(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """A reason for the event and details without secrets, from a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate rejected: {exc.verify_message}", {
            "verify_code": exc.verify_code,
            "verify_message": exc.verify_message,
        }
    if isinstance(exc, ssl.SSLError):
        code = exc.reason or exc.__class__.__name__
        reasons = {
            "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no client certificate",
            "UNSUPPORTED_PROTOCOL": "TLS version not allowed (TLS 1.3 only)",
            "TLSV1_ALERT_PROTOCOL_VERSION": "TLS version not allowed (TLS 1.3 only)",
            "NO_SHARED_CIPHER": "no shared cipher",
            "CERTIFICATE_VERIFY_FAILED": "client certificate failed verification",
        }
        return reasons.get(code, f"TLS handshake failed: {code}"), {"ssl_reason": code}
    # asyncio reports its handshake timeout as ConnectionAbortedError("... taking longer ...").
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or "taking longer" in str(exc):
        return "TLS handshake timed out", {}
    if isinstance(exc, OSError | EOFError):
        return f"connection lost during TLS handshake ({exc.__class__.__name__})", {}
    return f"TLS handshake aborted by a server error ({exc.__class__.__name__})", {}


class MTLSHandshakeProtocol(asyncio.Protocol):
    """Runs the server side of the mTLS handshake, then hands over to uvicorn's HTTP protocol."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        options: _Options,
    ) -> None:
        # Global state
        self._config, self._server_state, self._app_state = config, server_state, app_state
        self._loop = _loop or asyncio.get_event_loop()
        self._opts = options
        # Per-connection state, until uvicorn's protocol takes over
        self._tls_started = False
        self._pre_tls_data = False
        self._early: list[bytes] = []
        self._eof = False
        self._lost = False
        self._remote = ""

    # -- callbacks from the raw TCP transport, then from the TLS transport until hand-over

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Nothing is read until start_tls owns the socket.
        transport.pause_reading()  # type: ignore[attr-defined]
        peer = transport.get_extra_info("peername")
        self._remote = f"{peer[0]}:{peer[1]}" if peer else ""
        task = self._loop.create_task(self._handshake(transport))  # type: ignore[arg-type]
        tasks = getattr(self._server_state, "tasks", None)
        if tasks is not None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def data_received(self, data: bytes) -> None:
        if not self._tls_started:
            # Plaintext before start_tls owns the socket means the event loop
            # ignored pause_reading (uvloop does); those bytes were the
            # ClientHello and cannot be put back. Fail closed.
            self._pre_tls_data = True
            return
        # asyncio's SSL protocol may deliver application data right after the
        # handshake, before _handshake resumes: keep it for uvicorn.
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True

    # -- the handshake

    async def _client_speaks(self, transport: asyncio.Transport) -> bool:
        """Wait until the client sends its first byte (True) or closes without one (False).

        Reading stays paused; the byte is only peeked at, so start_tls still sees the
        whole ClientHello. A client that stays silent is left to the handshake timeout.
        """
        sock = transport.get_extra_info("socket")
        if sock is None:
            return True
        # The public add_reader refuses a descriptor a transport owns; the selector
        # loop's own _add_reader is what transports use, and this one is paused.
        add_reader = getattr(self._loop, "_add_reader", None)
        remove_reader = getattr(self._loop, "_remove_reader", None)
        if add_reader is None or remove_reader is None:
            return True
        fd = sock.fileno()
        readable = self._loop.create_future()
        add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await asyncio.wait_for(readable, self._opts.handshake_timeout)
        except TimeoutError:
            return True
        finally:
            remove_reader(fd)
        with socket.socket(sock.family, sock.type, fileno=os.dup(fd)) as peek:
            try:
                return bool(peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False

    async def _handshake(self, transport: asyncio.Transport) -> None:
        opts = self._opts
        if self._pre_tls_data:
            opts.emitter.deny(
                "mtls.rejected",
                service=opts.service,
                reason="bytes arrived before the TLS handshake (event loop ignored pause_reading)",
                detail={"remote": self._remote},
            )
            transport.abort()
            return
        if not await self._client_speaks(transport):
            # Closed before sending a byte: a TCP health probe (supervisor, kubelet,
            # load balancer), not a TLS attempt, so it is no security event.
            transport.abort()
            return
        try:
            ctx = opts.source.server_context()
            server_pem = leaf_pem(opts.source.svid)
            self._tls_started = True
            tls_transport = await self._loop.start_tls(
                transport, self, ctx, server_side=True, ssl_handshake_timeout=opts.handshake_timeout
            )
        except Exception as exc:  # every failure closes the connection with one event
            reason, detail = describe_handshake_error(exc)
            opts.emitter.deny(
                "mtls.rejected",
                service=opts.service,
                reason=reason,
                detail={"remote": self._remote, **detail},
            )
            transport.abort()
            return
        if tls_transport is None:  # pragma: no cover - the peer vanished mid-handshake
            transport.abort()
            return
        ssl_object = tls_transport.get_extra_info("ssl_object")
        try:
            # The app reads the identity back with peer_spiffe_id(scope).
            verify_peer(ssl_object, opts.source.trust_domain)
        except PeerIdentityError as exc:
            opts.emitter.deny(
                "mtls.rejected",
                service=opts.service,
                reason=f"client certificate is not a valid SVID: {exc}",
                detail={"remote": self._remote},
            )
            tls_transport.abort()
            return
        tls = asgi_tls_extension(ssl_object, server_pem)
        inner = AutoHTTPProtocol(  # type: ignore[call-arg]
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
        )
        inner.app = _WithTLSExtension(inner.app, tls)
        tls_transport.set_protocol(inner)
        inner.connection_made(tls_transport)  # type: ignore[arg-type]
        for chunk in self._early:
            inner.data_received(chunk)
        self._early.clear()
        if self._lost:
            inner.connection_lost(None)
        elif self._eof:
            inner.eof_received()


def build_mtls_server(
    app: ASGIApp,
    *,
    source: IdentitySource,
    emitter: EventEmitter,
    host: str = "127.0.0.1",
    port: int = 0,
    service: str | None = None,
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    timeout_keep_alive: int = 30,
    log_level: str = "warning",
    **uvicorn_options: Any,
) -> uvicorn.Server:
    """A uvicorn server whose every connection is mTLS with ``source``'s identity.

    ``service`` names this server in events (default: the emitter's service,
    else the last segment of our SPIFFE ID).
    """
    opts = _Options(
        source=source,
        emitter=emitter,
        service=service or emitter.service or source.spiffe_id.rsplit("/", 1)[-1],
        handshake_timeout=handshake_timeout,
    )

    def protocol_factory(
        config: uvicorn.Config, server_state: Any, app_state: dict[str, Any], _loop: Any = None
    ) -> MTLSHandshakeProtocol:
        return MTLSHandshakeProtocol(config, server_state, app_state, _loop, options=opts)

    loop = uvicorn_options.pop("loop", "asyncio")
    if loop != "asyncio":
        raise ValueError(
            "mTLS serving needs loop='asyncio': uvloop starts reading right after "
            "connection_made, so the ClientHello would reach the plain protocol before start_tls"
        )
    config = uvicorn.Config(
        app,
        loop="asyncio",
        host=host,
        port=port,
        http=protocol_factory,  # type: ignore[arg-type]
        ws="none",
        lifespan=uvicorn_options.pop("lifespan", "auto"),
        # Identity comes from the certificate; X-Forwarded-* from a peer is never trusted.
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level=log_level,
        timeout_keep_alive=timeout_keep_alive,
        **uvicorn_options,
    )
    return uvicorn.Server(config)


async def serve_mtls(
    app: ASGIApp,
    host: str,
    port: int,
    source: IdentitySource,
    *,
    emitter: EventEmitter,
    sockets: list[socket.socket] | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` over mTLS until the server is told to exit (or the task is cancelled)."""
    if type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
        raise RuntimeError(
            "serve_mtls needs the asyncio event loop, not uvloop (see module docstring)"
        )
    server = build_mtls_server(app, source=source, emitter=emitter, host=host, port=port, **options)
    await server.serve(sockets=sockets)


class ServerThread:
    """Runs a uvicorn server on its own event loop in a daemon thread (tests, benches, tools).

    >>> # with ServerThread(build_mtls_server(app, source=src, emitter=em)) as port: ...
    """

    def __init__(self, server: uvicorn.Server, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, name=f"mtls-server-{self.port}", daemon=True
        )

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> int:
        self._thread.start()
        pause = threading.Event()  # never set: a sleep that reads as a bounded wait
        for _ in range(int(timeout / 0.01)):
            if self.server.started:
                return self.port
            if not self._thread.is_alive():
                break
            pause.wait(0.01)
        raise RuntimeError(f"server on port {self.port} did not start within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> int:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
