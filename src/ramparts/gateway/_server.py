"""The client-facing HTTP/1.1 protocol: parse, check framing, run the pipeline, proxy.

One :class:`ClientConnection` per client connection, a raw asyncio Protocol
over llhttp (httptools), no framework on the hot path.

Framing is checked before anything else, and a request whose framing is
ambiguous is answered 400 and the connection closed, never forwarded:
llhttp (strict by default; no lenient flag is set) refuses Content-Length
with Transfer-Encoding, duplicate or invalid Content-Length, bad chunking,
obs-fold, bare CR or LF, whitespace before the colon, invalid names and
NUL/CR/LF in values; this module adds what llhttp lets through:
Transfer-Encoding other than exactly ``chunked`` (llhttp accepts
``gzip, chunked``), Transfer-Encoding on HTTP/1.0 (RFC 9112 section 6.1),
HTTP versions other than 1.0 and 1.1, a missing or repeated Host on
HTTP/1.1 (RFC 9112 section 3.2), protocol upgrades and CONNECT, and limits on
the head size, header count and the time to receive the head.

The gateway re-serialises every request (its own request line, lowercase
header names, its own framing), so whatever llhttp tolerated in spelling
never reaches a service byte for byte.

Flow control: reading from the client pauses while the service's socket
buffer is full, while a body waits for the pipeline and while a pipelined
request waits its turn; reading from the service pauses while the client's
socket buffer is full.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httptools

from ramparts.gateway._http import Reply, status_line
from ramparts.gateway._pipeline import run_pipeline, start, start_eager
from ramparts.gateway._request import Request
from ramparts.gateway._upstream import UpstreamConnection, UpstreamError, UpstreamPool

if TYPE_CHECKING:
    from ramparts.gateway._gateway import Gateway, GatewayState

__all__ = ["ClientConnection"]

# Body bytes held while the pipeline decides (or a pipelined request waits)
# before reading from the client pauses.
_BODY_BUFFER_LIMIT = 64 * 1024
_MAX_PIPELINED = 64
# Largest response held back for the WAF's outbound rules; larger ones stream on.
_HELD_RESPONSE_LIMIT = 1 << 20


@dataclass
class _HeldResponse:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    content_length: bytes | None
    body: bytearray = field(default_factory=bytearray)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BODYLESS_STATUS = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_ERROR_NAMES = {
    408: "request_timeout",
    414: "uri_too_long",
    431: "header_fields_too_large",
    501: "not_implemented",
    505: "http_version_not_supported",
}
# Header values the gateway itself sets downstream: visible ASCII and space only.
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def _header_value(text: str) -> bytes:
    if _HEADER_SAFE.fullmatch(text):
        return text.encode("ascii")
    return quote(text, safe=" !#$&'()*+,/:;=?@[]~").encode("ascii")


class _Special:
    """Dispatch codes for the request headers the parser looks at."""

    HOST = 1
    TE = 2
    CONNECTION = 3
    XFF = 4
    XFP = 5
    REQUEST_ID = 6
    TRACEPARENT = 7
    TRACESTATE = 8
    AUTHORIZATION = 9
    EXPECT = 10
    CONTENT_LENGTH = 11
    API_KEY = 12


_SPECIAL = {
    b"host": _Special.HOST,
    b"transfer-encoding": _Special.TE,
    b"connection": _Special.CONNECTION,
    b"x-forwarded-for": _Special.XFF,
    b"x-forwarded-proto": _Special.XFP,
    b"x-request-id": _Special.REQUEST_ID,
    b"traceparent": _Special.TRACEPARENT,
    b"tracestate": _Special.TRACESTATE,
    b"authorization": _Special.AUTHORIZATION,
    b"expect": _Special.EXPECT,
    b"content-length": _Special.CONTENT_LENGTH,
    b"x-api-key": _Special.API_KEY,
}


class _Abort(Exception):
    """Raised inside a parser callback to stop parsing: the connection is closing."""


class ClientConnection(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, pipelining in order, streaming both ways."""

    def __init__(self, gateway: Gateway, scheme: str) -> None:
        # Global state.
        self.gw = gateway
        self.loop = gateway.loop
        self.options = gateway.options
        self.scheme = scheme
        # Per-connection state.
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.closing = False
        self.read_pauses: set[str] = set()
        self.write_paused = False
        self.deadline = 0.0
        self.deadline_kind = ""
        self.out: list[bytes] | None = None
        self.queue: deque[Request] = deque()
        # Per-request state (the request being parsed, not necessarily the active one).
        self.parsing: Request | None = None
        self.in_head = False
        self.head_raw = 0
        self.head_bytes = 0
        self.response_chunked = False
        self.response_started = False

    # -- asyncio callbacks --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "unknown"
        self.gw.connections.add(self)
        self._set_deadline("idle", self.options.keepalive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.gw.connections.discard(self)
        for req in self.queue:
            conn = req.upstream
            if isinstance(conn, UpstreamConnection):
                req.upstream = None
                conn.detach()
            if not req.status:
                req.status = 499  # client closed before the response was complete
                self.gw.observe(req)
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        active = self.queue[0] if self.queue else None
        conn = active.upstream if active is not None else None
        if conn is not None:
            conn.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # refused in on_headers_complete; the connection is closing
        except httptools.HttpParserError as exc:
            if not self.closing:
                cause = exc.__context__
                if not isinstance(cause, _Abort):
                    self._malformed(self.parsing, 400, _parser_reason(exc))
        finally:
            if conn is not None:
                conn.uncork()
        if self.in_head and not self.closing:
            self.head_raw += len(data)
            if self.head_raw > self.options.max_head_bytes:
                self._malformed(self.parsing, 431, "request head too large")

    def eof_received(self) -> bool | None:
        if self.parsing is not None:
            # The client stopped sending mid-request: nothing more can come. Closing
            # (returning None) releases the service connection in connection_lost.
            self.closing = True
            return None
        # A half-closed client with complete requests still gets its responses.
        if self.queue:
            self.queue[-1].close_after = True
            return True
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        active = self.queue[0] if self.queue else None
        if active is not None and isinstance(active.upstream, UpstreamConnection):
            active.upstream.pause_reading()
        self._set_deadline("send", self.options.send_timeout)

    def resume_writing(self) -> None:
        self.write_paused = False
        active = self.queue[0] if self.queue else None
        if active is not None and isinstance(active.upstream, UpstreamConnection):
            active.upstream.resume_reading()
        if self.deadline_kind == "send":
            self.deadline = 0.0

    # -- llhttp callbacks ---------------------------------------------------

    def on_message_begin(self) -> None:
        if self.closing:
            raise _Abort
        self.parsing = Request(self.peer, self.scheme, self.loop.time())
        self.in_head = True
        self.head_raw = 0
        self.head_bytes = 0
        if not self.queue:
            self._set_deadline("head", self.options.header_timeout)

    def on_url(self, url: bytes) -> None:
        req = self.parsing
        req.target += url  # type: ignore[union-attr]
        self.head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.parsing
        if req is None or self.closing:
            raise _Abort
        if not self.in_head:
            return  # a chunked trailer: never forwarded (the gateway re-frames)
        self.head_bytes += len(name) + len(value) + 4
        req.header_count += 1
        lname = name.lower()
        special = _SPECIAL.get(lname)
        if special is not None:
            if special == _Special.HOST:
                req.host_count += 1
                req.host = value
            elif special == _Special.TE:
                req.te_values.append(value)
            elif special == _Special.CONNECTION:
                req.connection_tokens.update(t.strip().lower() for t in value.split(b","))
            elif special == _Special.XFF:
                req.xff_in.append(value)
            elif special == _Special.XFP:
                req.xfp_in = value.strip().lower()
            elif special == _Special.REQUEST_ID:
                req.request_id_in = value if req.request_id_in is None else b""
            elif special == _Special.TRACEPARENT:
                req.traceparent_in = value if req.traceparent_in is None else b""
            elif special == _Special.TRACESTATE:
                req.tracestate_in = value
            elif special == _Special.AUTHORIZATION:
                req.authorization.append(value)
            elif special == _Special.EXPECT:
                req.expect_continue = value.strip().lower() == b"100-continue"
            elif special == _Special.CONTENT_LENGTH:
                req.content_length = int(value)  # llhttp checked: digits only, once
            elif special == _Special.API_KEY:
                req.extra["api_key"] = value.decode("latin-1")
        req.headers.append((lname, value))

    def on_headers_complete(self) -> None:
        req = self.parsing
        if req is None or self.closing:
            raise _Abort
        self.in_head = False
        self.head_raw = 0
        parser = self.parser
        req.version = parser.get_http_version()
        req.method = parser.get_method().decode("ascii")
        problem = self._framing_problem(req)
        if problem is not None:
            status, reason = problem
            self._malformed(req, status, reason)
            raise _Abort
        if len(self.queue) >= _MAX_PIPELINED:
            # One read can hold thousands of tiny pipelined requests; past this
            # many waiting, the client is not a browser or an SDK.
            self._malformed(req, 400, f"more than {_MAX_PIPELINED} pipelined requests")
            raise _Abort
        req.keep_alive = parser.should_keep_alive()
        req.chunked = bool(req.te_values)
        # No body: llhttp completes the message right after this callback, but
        # the pipeline may answer before it does.
        req.body_done = not req.has_body
        self.queue.append(req)
        if len(self.queue) == 1:
            self._set_deadline(
                "body", self.options.body_timeout
            ) if req.has_body else self._clear_deadline()
            self._process(req)
        else:
            self._pause_reading("pipeline")

    def on_body(self, body: bytes) -> None:
        req = self.parsing
        if req is None or self.closing:
            raise _Abort
        req.body_received += len(body)
        route = req.route
        limit = route.max_body_bytes if route is not None else self.options.max_body_bytes
        if req.body_received > limit:
            self._body_too_large(req, limit)
            raise _Abort
        if self.queue and self.queue[0] is req and self.deadline_kind == "body":
            self.deadline = self.loop.time() + self.options.body_timeout
        if req.denied:
            return
        conn = req.upstream
        if conn is not None:
            conn.write_body(body)
            return
        req.body_buffer.append(body)
        req.body_buffered += len(body)
        if req.body_buffered > _BODY_BUFFER_LIMIT and not req.extra.get("awaiting_body"):
            self._pause_reading("buffer")

    def on_message_complete(self) -> None:
        req = self.parsing
        if req is None or self.closing:
            raise _Abort
        self.parsing = None
        req.body_done = True
        if self.queue and self.queue[0] is req and self.deadline_kind == "body":
            self._clear_deadline()
        conn = req.upstream
        if conn is not None and req.has_body:
            # (A bodyless request was ended when it was bound.)
            conn.end_body()
        if req.extra.pop("awaiting_body", False) and self.queue and self.queue[0] is req:
            pipeline = req.extra["state"].pipeline
            prefix = req.route.prefix if req.route is not None else ""
            self._run_stages(req, pipeline.per_route[prefix], pipeline.eager[prefix])

    # -- framing checks -----------------------------------------------------

    def _framing_problem(self, req: Request) -> tuple[int, str] | None:
        if req.version not in ("1.1", "1.0"):
            return 505, f"HTTP/{req.version} is not supported"
        if self.parser.should_upgrade():
            return 400, "protocol upgrade and CONNECT are not supported"
        if self.head_bytes > self.options.max_head_bytes:
            return 431, "request head too large"
        if req.header_count > self.options.max_headers:
            return 431, f"more than {self.options.max_headers} header fields"
        if len(req.target) > self.options.max_target_bytes:
            return 414, "request target too long"
        if req.te_values:
            if req.version == "1.0":
                return 400, "Transfer-Encoding in an HTTP/1.0 request"
            if len(req.te_values) != 1 or req.te_values[0].strip(b" \t").lower() != b"chunked":
                return 400, "Transfer-Encoding must be exactly 'chunked'"
        if req.version == "1.1" and req.host_count != 1:
            return 400, "HTTP/1.1 request needs exactly one Host header"
        if req.host_count > 1:
            return 400, "more than one Host header"
        if req.method not in _METHODS:
            return 501, f"method {req.method} is not supported"
        return None

    # -- the exchange -------------------------------------------------------

    def _process(self, req: Request) -> None:
        state = self.gw.state
        req.extra["state"] = state
        pipeline = state.pipeline
        try:
            for stage in pipeline.prelude:
                reply = stage.check(req)
                if reply is not None:
                    self._pipeline_done(req, reply, None)
                    return
        except Exception as exc:
            self._pipeline_done(req, None, exc)
            return
        prefix = req.route.prefix if req.route is not None else ""
        stages = pipeline.per_route.get(prefix)
        if not stages:
            self._dispatch(req, retry=False)
            return
        if pipeline.needs_body[prefix] and not req.body_done:
            # Hold the body (the route's max_body_bytes bounds it) until it is complete;
            # on_message_complete runs the stages then. A client that asked for
            # 100-continue is told to send it.
            req.extra["awaiting_body"] = True
            if req.expect_continue and req.body_received == 0:
                self._write(_CONTINUE)
            return
        self._run_stages(req, stages, pipeline.eager[prefix])

    def _run_stages(self, req: Request, stages: Any, eager: bool) -> None:
        runner = start_eager if eager else start
        runner(run_pipeline(stages, req), lambda reply, err: self._pipeline_done(req, reply, err))

    def _pipeline_done(self, req: Request, reply: Reply | None, err: BaseException | None) -> None:
        if self.closing or not self.queue or self.queue[0] is not req:
            return
        if err is not None:
            self.gw.log_error("pipeline error", req, err)
            reply = Reply(500, "internal_error", "internal error", close=True)
        if reply is not None:
            self._send_reply(req, reply)
            return
        self._dispatch(req, retry=False)

    def _dispatch(self, req: Request, *, retry: bool) -> None:
        state: GatewayState = req.extra["state"]
        route = req.route
        pool = state.pools.get(route.service) if route is not None else None
        if pool is None:
            self._send_reply(req, Reply(502, "bad_gateway", "no upstream for this route"))
            return
        conn = None if retry else pool.acquire_idle()
        if conn is not None:
            self._bind(req, conn, pool)
        else:
            self.loop.create_task(self._connect(req, pool))

    async def _connect(self, req: Request, pool: UpstreamPool) -> None:
        try:
            conn = await pool.connect(self.gw.upstream_connections)
            if not conn.usable:
                # Handed over from the pool but closed by the service meanwhile.
                conn = await pool.connect(self.gw.upstream_connections)
        except UpstreamError as exc:
            self.upstream_failed(req, exc.status, exc.reason, retryable=False)
            return
        if self.closing or not self.queue or self.queue[0] is not req:
            pool.release(conn)
            return
        self._bind(req, conn, pool)

    def _bind(self, req: Request, conn: UpstreamConnection, pool: UpstreamPool) -> None:
        req.upstream = conn
        req.dispatched = True
        route = req.route
        timeout = route.timeout_seconds if route is not None else 30.0
        conn.cork()
        conn.begin(req, self, self._request_head(req, pool), self.loop.time(), timeout)
        if req.body_buffer:
            for chunk in req.body_buffer:
                conn.write_body(chunk)
            req.body_buffer = []
            req.body_buffered = 0
        if req.body_done:
            conn.end_body()
        conn.uncork()
        self._resume_reading("buffer")
        if not req.body_done and req.expect_continue and req.body_received == 0:
            self._write(_CONTINUE)
        if self.write_paused:
            conn.pause_reading()

    def _request_head(self, req: Request, pool: UpstreamPool) -> bytes:
        target = req.path if req.query is None else f"{req.path}?{req.query}"
        parts = [f"{req.method} {target} HTTP/1.1\r\n".encode("ascii")]
        append = parts.append
        if req.host is None:
            append(f"host: {pool.host}:{pool.port}\r\n".encode("ascii"))
        append(b"".join([b"%s: %s\r\n" % field for field in req.headers]))
        append(b"".join([b"%s: %s\r\n" % field for field in req.upstream_headers]))
        if req.subject is not None and (pool.tls is not None or self.options.identity_over_plain):
            append(b"x-ramparts-subject: " + _header_value(req.subject) + b"\r\n")
            append(b"x-ramparts-scopes: " + _header_value(" ".join(sorted(req.scopes))) + b"\r\n")
            append(b"x-ramparts-issuer: " + _header_value(req.issuer or "") + b"\r\n")
        if req.chunked:
            append(b"transfer-encoding: chunked\r\n")
        elif req.content_length is not None:
            append(b"content-length: %d\r\n" % req.content_length)
        elif req.method in ("POST", "PUT", "PATCH"):
            append(b"content-length: 0\r\n")
        append(b"\r\n")
        return b"".join(parts)

    # -- called by the upstream connection ----------------------------------

    def upstream_head(
        self,
        req: Request,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        content_length: bytes | None,
    ) -> None:
        if self.closing:
            return
        if self._holds_response(req):
            # The WAF's outbound rules (data leakage) need the whole response first.
            req.extra["held"] = _HeldResponse(status, reason, headers, content_length)
            return
        self._write_head(req, status, headers, content_length)

    def _holds_response(self, req: Request) -> bool:
        route = req.route
        waf = self.gw.waf
        return (
            waf is not None
            and route is not None
            and route.waf != "off"
            and hasattr(waf, "inspect_response")
            and "waf" in req.extra
            and req.method != "HEAD"
        )

    def _write_head(
        self,
        req: Request,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content_length: bytes | None,
    ) -> None:
        req.status = status
        self.response_started = True
        parts = [status_line(status)]
        append = parts.append
        append(b"".join([b"%s: %s\r\n" % field for field in headers]))
        append(b"x-request-id: " + req.correlation_id.encode("ascii") + b"\r\n")
        if req.response_headers:
            append(b"".join([b"%s: %s\r\n" % field for field in req.response_headers]))
        bodyless = req.method == "HEAD" or status in _BODYLESS_STATUS
        self.response_chunked = False
        if content_length is not None:
            append(b"content-length: " + content_length + b"\r\n")
        elif bodyless:
            pass
        elif req.version == "1.1":
            self.response_chunked = True
            append(b"transfer-encoding: chunked\r\n")
        else:
            req.close_after = True  # HTTP/1.0 without a length: the close ends the body
        if self._closes_after(req):
            append(b"connection: close\r\n")
        elif req.version == "1.0":
            append(b"connection: keep-alive\r\n")
        append(b"\r\n")
        self._write(b"".join(parts))

    def upstream_body(self, req: Request, body: bytes) -> None:
        if self.closing:
            return
        held: _HeldResponse | None = req.extra.get("held")
        if held is not None:
            held.body += body
            if len(held.body) > _HELD_RESPONSE_LIMIT:
                # Too large to hold: send it on uninspected rather than buffer without
                # bound (as ModSecurity's ProcessPartial), and say so.
                self.gw.emitter.allow(
                    "waf.response_not_inspected",
                    reason=f"response over {_HELD_RESPONSE_LIMIT} bytes streamed uninspected",
                    peer=req.client_ip,
                    correlation_id=req.correlation_id or None,
                )
                del req.extra["held"]
                self._write_head(req, held.status, held.headers, held.content_length)
                self._write_body(bytes(held.body))
            return
        self._write_body(body)

    def _write_body(self, body: bytes) -> None:
        if self.response_chunked:
            self._write(b"%x\r\n" % len(body))
            self._write(body)
            self._write(b"\r\n")
        else:
            self._write(body)

    def upstream_complete(self, req: Request) -> None:
        if self.closing:
            return
        req.upstream = None
        held: _HeldResponse | None = req.extra.pop("held", None)
        if held is not None:
            self.loop.create_task(self._release_held(req, held))
            return
        self._finish_response(req)

    def _finish_response(self, req: Request) -> None:
        if self.response_chunked:
            self._write(b"0\r\n\r\n")
        self._exchange_done(req, self._closes_after(req))

    async def _release_held(self, req: Request, held: _HeldResponse) -> None:
        """Run the WAF's response phases, then send the response or the WAF's reply."""
        try:
            reply = await self.gw.waf.inspect_response(  # type: ignore[union-attr]
                req, held.status, held.headers, bytes(held.body)
            )
        except Exception as exc:  # the WAF failing must not leak what it was asked to check
            self.gw.log_error("waf response inspection failed", req, exc)
            reply = Reply(502, "bad_gateway", "response could not be inspected", close=True)
        if self.closing or not self.queue or self.queue[0] is not req:
            return
        if reply is not None:
            self._send_reply(req, reply)
            return
        body = bytes(held.body)
        # Held whole, so the length is known: no chunking needed (none for bodyless statuses).
        length = None if held.status in _BODYLESS_STATUS else str(len(body)).encode()
        self._write_head(req, held.status, held.headers, length)
        if body:
            self._write_body(body)
        self._finish_response(req)

    def upstream_failed(self, req: Request, status: int, reason: str, *, retryable: bool) -> None:
        if self.closing or not self.queue or self.queue[0] is not req:
            return
        conn = req.upstream
        req.upstream = None
        if isinstance(conn, UpstreamConnection):
            conn.detach()
        if (
            retryable
            and not req.extra.get("retried")
            and req.body_received == 0
            and not req.has_body
        ):
            # A pooled connection the service had closed as we reused it: one
            # fresh attempt, only for a request with no body (nothing was consumed).
            req.extra["retried"] = True
            self._dispatch(req, retry=True)
            return
        self.gw.upstream_error(req, status, reason)
        if self.response_started:
            # Mid-response: the client can only learn of it by the connection closing.
            req.status = req.status or status
            self._exchange_done(req, True)
            return
        self._send_reply(
            req,
            Reply(
                status,
                "bad_gateway" if status == 502 else "gateway_timeout",
                "upstream unavailable" if status == 502 else "upstream timed out",
            ),
        )

    # -- local replies ------------------------------------------------------

    def _send_reply(self, req: Request, reply: Reply) -> None:
        req.denied = True
        req.status = reply.status
        conn = req.upstream
        if isinstance(conn, UpstreamConnection):
            req.upstream = None
            conn.detach()
        body = reply.body(req.correlation_id or None)
        close = reply.close or self._closes_after(req)
        parts = [
            status_line(reply.status),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
        ]
        if req.correlation_id:
            parts.append(b"x-request-id: " + req.correlation_id.encode("ascii") + b"\r\n")
        for name, value in reply.headers:
            parts.append(name + b": " + value + b"\r\n")
        parts.append(b"connection: close\r\n\r\n" if close else b"\r\n")
        if req.method != "HEAD":
            parts.append(body)
        self._write(b"".join(parts))
        self._exchange_done(req, close)

    def _malformed(self, req: Request | None, status: int, reason: str) -> None:
        """Framing or syntax error: answer, record, close. Never forwarded."""
        if self.closing:
            return
        if req is None:
            req = Request(self.peer, self.scheme, self.loop.time())
        req.correlation_id = req.correlation_id or self.gw.new_correlation_id()
        self.gw.deny_malformed(req, reason)
        if self.response_started and self.queue and self.queue[0] is req:
            # The service already answered part of it: a second response head
            # cannot follow; closing is the only signal left.
            req.status = req.status or status
            self._exchange_done(req, True)
            return
        if not self.queue or self.queue[0] is not req:
            # Answer out of turn only if nothing is in flight; else just close.
            if self.queue:
                self._close()
                return
            self.queue.append(req)
        self._send_reply(
            req, Reply(status, _ERROR_NAMES.get(status, "bad_request"), reason, close=True)
        )

    def _body_too_large(self, req: Request, limit: int) -> None:
        self.gw.deny_too_large(req, limit)
        if self.response_started or not self.queue or self.queue[0] is not req:
            self._close()
            return
        self._send_reply(req, Reply(413, "payload_too_large", "request body too large", close=True))

    # -- bookkeeping --------------------------------------------------------

    def _closes_after(self, req: Request) -> bool:
        return req.close_after or not req.keep_alive or not req.body_done or self.closing

    def _exchange_done(self, req: Request, close: bool) -> None:
        self.gw.observe(req)
        self.response_started = False
        if self.queue and self.queue[0] is req:
            self.queue.popleft()
        if close:
            self._close()
            return
        if self.queue:
            nxt = self.queue[0]
            self._resume_reading("pipeline")
            if nxt.has_body and not nxt.body_done:
                self._set_deadline("body", self.options.body_timeout)
            else:
                self._clear_deadline()
            self._process(nxt)
        else:
            self._set_deadline("idle", self.options.keepalive_timeout)

    def _close(self) -> None:
        self.closing = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.uncork()
            transport.close()

    def _write(self, data: bytes) -> None:
        out = self.out
        if out is not None:
            out.append(data)
        elif self.transport is not None:
            self.transport.write(data)

    def cork(self) -> None:
        if self.out is None:
            self.out = []

    def uncork(self) -> None:
        out, self.out = self.out, None
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def pause_reading(self, reason: str) -> None:
        self._pause_reading(reason)

    def resume_reading(self, reason: str) -> None:
        self._resume_reading(reason)

    def _pause_reading(self, reason: str) -> None:
        if not self.read_pauses and self.transport is not None and not self.closing:
            self.transport.pause_reading()
        self.read_pauses.add(reason)

    def _resume_reading(self, reason: str) -> None:
        pauses = self.read_pauses
        if reason in pauses:
            pauses.discard(reason)
            if not pauses and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def _set_deadline(self, kind: str, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.loop.time() + seconds

    def _clear_deadline(self) -> None:
        self.deadline_kind = ""
        self.deadline = 0.0

    def on_deadline(self) -> None:
        """Called by the gateway's sweeper once ``deadline`` has passed."""
        kind = self.deadline_kind
        self._clear_deadline()
        if self.closing:
            return
        if kind == "head":
            # Slow client (slowloris): the head did not arrive in time.
            req = self.parsing
            self.parsing = None
            self._malformed(req, 408, "request head not received in time")
        elif kind == "body" and self.queue and not self.response_started:
            req = self.queue[0]
            self.gw.deny_timeout(req, "request body not received in time")
            self._send_reply(
                req, Reply(408, "request_timeout", "request body not received in time", close=True)
            )
        else:
            self._close()


def _parser_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"malformed request: {text[:120]}"
