"""The admin listener: Prometheus metrics, health, and an explicit reload.

It listens on ``admin_listen`` (loopback in every shipped topology), apart
from client traffic, so metrics are never reachable through the data path.

* ``GET /metrics``: Prometheus text exposition;
* ``GET /healthz``: 200 once the gateway serves;
* ``POST /-/reload``: re-read the topology file; 200 if applied, 409 if refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httptools
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["AdminConnection"]

_MAX_ADMIN_REQUEST = 8192


class AdminConnection(asyncio.Protocol):
    """One admin connection; one small request at a time, no bodies accepted."""

    def __init__(self, registry: CollectorRegistry, reload: Callable[[], tuple[bool, str]]) -> None:
        self.registry = registry
        self.reload = reload
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.received = 0
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > _MAX_ADMIN_REQUEST:
            self._respond(431, b"text/plain", b"request too large\n", close=True)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._respond(400, b"text/plain", b"bad request\n", close=True)

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        self.received = 0
        self.keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        path = self.url.split(b"?", 1)[0]
        if path == b"/metrics" and method in (b"GET", b"HEAD"):
            self._respond(200, CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry))
        elif path == b"/healthz" and method in (b"GET", b"HEAD"):
            self._respond(200, b"text/plain", b"ok\n")
        elif path == b"/-/reload" and method == b"POST":
            ok, message = self.reload()
            body = json.dumps({"applied": ok, "message": message}).encode() + b"\n"
            self._respond(200 if ok else 409, b"application/json", body)
        else:
            self._respond(404, b"text/plain", b"not found\n")

    def _respond(
        self, status: int, content_type: bytes, body: bytes, *, close: bool = False
    ) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        close = close or not self.keep_alive
        head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
            status,
            _PHRASES.get(status, b"Error"),
            content_type,
            len(body),
            b"connection: close\r\n" if close else b"",
        )
        transport.write(head + body)
        if close:
            transport.close()


_PHRASES = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    409: b"Conflict",
    431: b"Request Header Fields Too Large",
}
