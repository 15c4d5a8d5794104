"""A minimal mTLS ASGI server for the secrets tests (also run as a subprocess).

uvicorn with ``ssl_cert_reqs=CERT_REQUIRED`` against the test CA, plus an HTTP-protocol
subclass that, once the handshake has verified the client chain, wraps the app so each
request scope carries the ASGI TLS extension (``client_cert_chain``, PEM, leaf first): the
contract ``ramparts.identity``'s server fulfils in production. Python 3.11's ``ssl``
exposes only the verified leaf, so the chain holds the leaf alone.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


class _WithTLSExtension:
    def __init__(self, app: Any, chain: list[str]) -> None:
        self.app, self.chain = app, chain

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["extensions"] = {
                **(scope.get("extensions") or {}),
                "tls": {"client_cert_chain": list(self.chain)},
            }
        await self.app(scope, receive, send)


class TLSExtensionH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the verified client leaf put into each scope."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        self.app = _WithTLSExtension(self.app, chain)


class MTLSServer:
    """uvicorn over mTLS in a thread, on an ephemeral 127.0.0.1 port."""

    def __init__(self, app: Any, cert: str, key: str, ca: str, port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            http=TLSExtensionH11Protocol,  # type: ignore[arg-type]
            ssl_certfile=cert,
            ssl_keyfile=key,
            ssl_ca_certs=ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        wait_for(lambda: self.server.started, "server start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def wait_for(cond: Any, what: str, timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll ``cond`` until truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
