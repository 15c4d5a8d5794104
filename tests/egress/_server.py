"""A real HTTP/1.1 server on 127.0.0.1 for egress tests, with TLS when asked."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

Handler = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]


@dataclass
class Server:
    port: int
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def http_server(
    handler: Handler, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    """Serve ``handler(method, target, headers)`` until the block ends; record every request."""
    server = Server(port=0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (x.split(":", 1) for x in lines[1:] if x)
                }
                if int(headers.get("content-length", "0")):
                    await reader.readexactly(int(headers["content-length"]))
                server.requests.append((method, target, headers))
                status, out_headers, body = handler(method, target, headers)
                if status == 0:  # a handler that never answers
                    await asyncio.sleep(3600)
                head_out = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\n"
                head_out += "".join(f"{k}: {v}\r\n" for k, v in out_headers.items())
                writer.write(head_out.encode() + b"\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 2)
