"""Gateway test rig: a real gateway on 127.0.0.1 in its own thread and event loop,
and a real upstream server (h11, an independent HTTP implementation) that
records exactly what it received."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h11
import pytest
import uvloop

from ramparts.config import Topology, parse_topology
from ramparts.events import EventEmitter, MemorySink
from ramparts.gateway import AccessLog, Gateway, GatewayOptions

DEADLINE = 10.0


def wait_for(
    predicate: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until truthy, failing after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Received:
    """One request as the upstream saw it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    connection: int

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.lower()]
        assert len(values) <= 1, f"header {name} appears {len(values)} times"
        return values[0] if values else None

    def names(self) -> set[str]:
        return {n for n, _ in self.headers}


Handler = Callable[[Received], tuple[int, list[tuple[str, str]], bytes]]


def default_handler(req: Received) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"ok": True, "path": req.target, "len": len(req.body)}).encode()
    return 200, [("content-type", "application/json"), ("content-length", str(len(body)))], body


@dataclass
class RecordingUpstream:
    """A threaded HTTP/1.1 server parsing with h11; every request and raw byte is kept."""

    handler: Handler = default_handler
    requests: list[Received] = field(default_factory=list)
    raw: dict[int, bytearray] = field(default_factory=dict)
    connections: int = 0
    count_body_only: bool = False  # for huge bodies: keep only the length
    body_lengths: list[int] = field(default_factory=list)
    ssl_context: Any = None  # serve TLS (mTLS when the context demands a client cert)
    stream_delay: float = 0.2
    peer_certs: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                cid = self.connections
                self.raw[cid] = bytearray()
            threading.Thread(target=self._serve, args=(conn, cid), daemon=True).start()

    def _serve(self, conn: socket.socket, cid: int) -> None:
        h = h11.Connection(h11.SERVER)
        if self.ssl_context is not None:
            try:
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
            except (OSError, ValueError):
                conn.close()
                return
            self.peer_certs.append(conn.getpeercert(True))
        try:
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    data = conn.recv(65536)
                    if not self.count_body_only:
                        self.raw[cid] += data
                    h.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    body = bytearray()
                    size = 0
                    while True:
                        ev = h.next_event()
                        if ev is h11.NEED_DATA:
                            data = conn.recv(1 << 20)
                            if not self.count_body_only:
                                self.raw[cid] += data
                            h.receive_data(data)
                            if not data:
                                return
                        elif isinstance(ev, h11.Data):
                            size += len(ev.data)
                            if not self.count_body_only:
                                body += ev.data
                        elif isinstance(ev, h11.EndOfMessage):
                            break
                    rec = Received(
                        event.method.decode(),
                        event.target.decode(),
                        [(n.decode(), v.decode("latin-1")) for n, v in event.headers],
                        bytes(body),
                        cid,
                    )
                    with self._lock:
                        self.requests.append(rec)
                        self.body_lengths.append(size)
                    status, headers, payload = self.handler(rec)
                    out = h.send(h11.Response(status_code=status, headers=headers))
                    if isinstance(payload, list):
                        # A slow stream: one piece every `stream_delay` seconds.
                        conn.sendall(out)
                        for piece in payload:
                            time.sleep(self.stream_delay)
                            conn.sendall(h.send(h11.Data(data=piece)))
                        out = b""
                    elif payload and rec.method != "HEAD":
                        out += h.send(h11.Data(data=payload))
                    out += h.send(h11.EndOfMessage())
                    conn.sendall(out)
                    if h.our_state is h11.MUST_CLOSE:
                        return
                    h.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (h11.RemoteProtocolError, OSError):
            return
        finally:
            conn.close()

    def last(self) -> Received:
        wait_for(lambda: self.requests, what="a request at the upstream")
        return self.requests[-1]

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def topology_text(
    upstream_port: int,
    payments_port: int | None = None,
    *,
    routes: str | None = None,
    gateway_extra: str = "",
) -> str:
    """Accounts (and the /v1/big route) on ``upstream_port``, payments on ``payments_port``."""
    if payments_port is None:
        payments_port = _free_port()
    routes = (
        routes
        or """
    - prefix: /v1/accounts
      service: accounts
      auth: none
    - prefix: /v1/payments
      service: payments
      auth: none
      methods: [GET, POST]
      max_body_bytes: 1000
    - prefix: /v1/big
      service: accounts
      auth: none
      max_body_bytes: 100000000
    - prefix: /v1/slow
      service: payments
      auth: none
      timeout_seconds: 0.5
"""
    )
    return f"""
version: 1
trust_domain: test.local
namespace: test
services:
  accounts:
    listen: 127.0.0.1:{upstream_port}
  payments:
    listen: 127.0.0.1:{payments_port}
gateway:
  listen: 127.0.0.1:8443
  plain_http: true
{gateway_extra}
  routes:
{routes}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayRunner:
    """A Gateway served by a uvloop event loop in a background thread."""

    def __init__(self, topology: Topology, **kwargs: Any) -> None:
        self.sink = MemorySink()
        self.log = io.StringIO()
        kwargs.setdefault("options", GatewayOptions(plain_upstreams=True, identity_over_plain=True))
        kwargs.setdefault("emitter", EventEmitter([self.sink], service="gateway"))
        kwargs.setdefault("access_log", AccessLog(self.log))
        kwargs.setdefault("bind", ("127.0.0.1", 0))
        kwargs.setdefault("admin_bind", ("127.0.0.1", 0))
        self.loop = uvloop.new_event_loop()
        self.gateway = Gateway(topology, **kwargs)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(DEADLINE):
            raise AssertionError("gateway did not start")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.gateway.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    @property
    def port(self) -> int:
        return self.gateway.port

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the gateway's loop and return its result."""
        fut = asyncio.run_coroutine_threadsafe(_as_coro(fn), self.loop)
        return fut.result(DEADLINE)

    def log_lines(self) -> list[dict[str, Any]]:
        self.call(self.gateway.access_log.flush)
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]

    def access_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("event") == "access"]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gateway.close(), self.loop).result(DEADLINE)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)
        self.loop.close()


async def _as_coro(fn: Callable[[], Any]) -> Any:
    return fn()


@pytest.fixture
def upstream() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream()
    yield up
    up.close()


@pytest.fixture
def upstream2() -> Iterator[RecordingUpstream]:
    up = RecordingUpstream()
    yield up
    up.close()


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., GatewayRunner]]:
    runners: list[GatewayRunner] = []

    def make(topology: Topology | str, **kwargs: Any) -> GatewayRunner:
        topo = parse_topology(topology) if isinstance(topology, str) else topology
        runner = GatewayRunner(topo, **kwargs)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.stop()


@pytest.fixture
def gateway(
    upstream: RecordingUpstream,
    upstream2: RecordingUpstream,
    make_gateway: Callable[..., GatewayRunner],
) -> GatewayRunner:
    return make_gateway(topology_text(upstream.port, upstream2.port))


def raw_request(port: int, data: bytes, *, timeout: float = DEADLINE) -> bytes:
    """Send raw bytes, half-close, read everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response[9:12])


def response_headers(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    out: dict[str, str] = {}
    for line in head:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return out


class Client:
    """A raw keep-alive client: it writes requests itself; h11 parses each response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        """Read exactly one response (bytes after it are kept for the next call)."""
        h = h11.Connection(h11.CLIENT)
        h.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        h.send(h11.EndOfMessage())
        if self.buf:
            h.receive_data(self.buf)
            self.buf = b""
        status, headers, body = 0, {}, bytearray()
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                h.receive_data(self.sock.recv(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {n.decode(): v.decode("latin-1") for n, v in event.headers}
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.buf = h.trailing_data[0]
                return status, headers, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                raise AssertionError("connection closed before a full response")

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {target} HTTP/1.1", "host: gw.test"]
        lines += [f"{n}: {v}" for n, v in headers or []]
        if body:
            lines.append(f"content-length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        return self.read_response(method)

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
