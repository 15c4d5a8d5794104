"""Helpers for identity tests: an echo app, a raw TLS client, waiting for events."""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ramparts.events import MemorySink, SecurityEvent
from ramparts.identity import peer_spiffe_id


async def _whoami(request: Request) -> JSONResponse:
    tls = request.scope.get("extensions", {}).get("tls", {})
    return JSONResponse(
        {
            "peer": peer_spiffe_id(request.scope),
            "caller": request.scope.get("state", {}).get("ramparts_caller"),
            "method": request.method,
            "path": request.url.path,
            "tls_version": tls.get("tls_version"),
            "cipher_suite": tls.get("cipher_suite"),
            "chain_len": len(tls.get("client_cert_chain", [])),
        }
    )


def whoami_app() -> Starlette:
    """Echoes the verified peer and the TLS extension facts of each request."""
    return Starlette(routes=[Route("/{path:path}", _whoami, methods=["GET", "POST"])])


def wait_for_event(sink: MemorySink, type_: str, timeout: float = 5.0) -> SecurityEvent:
    """The first event of ``type_``, waiting (bounded) because servers emit from their thread."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sink.of_type(type_)
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(
        f"no {type_} event within {timeout} s; got {[e.type for e in sink.events]}"
    )


def raw_get(port: int, ctx: ssl.SSLContext, path: str = "/") -> bytes:
    """One HTTP/1.1 GET over a TLS socket made with ``ctx``; returns the raw response.

    With TLS 1.3 a client learns that the server rejected its certificate only
    when it reads, so errors surface here as ssl.SSLError / ConnectionError / b"".
    """
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        out = b""
        while chunk := tls.recv(65536):
            out += chunk
        return out


def client_ctx(
    cert_chain_pem: bytes | None,
    key_pem: bytes | None,
    trust_pem: str,
    *,
    tls12: bool = False,
) -> ssl.SSLContext:
    """A plain stdlib client context with whatever certificate a test wants to present."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=trust_pem)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert_chain_pem is not None and key_pem is not None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.pem")
            with open(path, "wb") as f:
                f.write(cert_chain_pem + key_pem)
            ctx.load_cert_chain(path)
    return ctx
