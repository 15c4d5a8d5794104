"""The per-request record that flows through the pipeline.

One :class:`Request` is created when a request line arrives and lives until
its response is finished. Stages read what the client sent and write what
the gateway decided: the route, the verified identity, the headers to add
upstream and in the response. Header names are stored lowercase (HTTP field
names are case-insensitive, RFC 9110 section 5.1) and forwarded that way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ramparts.gateway._routes import Route

__all__ = ["Request"]

Header = tuple[bytes, bytes]


class Request:
    """Everything one exchange needs; slots, because one is built per request."""

    __slots__ = (
        "authorization",
        "body_buffer",
        "body_buffered",
        "body_done",
        "body_received",
        "chunked",
        "client_ip",
        "close_after",
        "connection_tokens",
        "content_length",
        "correlation_id",
        "denied",
        "dispatched",
        "expect_continue",
        "extra",
        "header_count",
        "headers",
        "host",
        "host_count",
        "issuer",
        "keep_alive",
        "method",
        "path",
        "peer",
        "query",
        "raw_headers",
        "request_id_in",
        "response_headers",
        "route",
        "scheme",
        "scopes",
        "start",
        "status",
        "subject",
        "target",
        "te_values",
        "trace_id",
        "traceparent_in",
        "traceparent_out",
        "tracestate_in",
        "upstream",
        "upstream_headers",
        "version",
        "xff_in",
        "xfp_in",
    )

    def __init__(self, peer: str, scheme: str, start: float) -> None:
        # What the client sent.
        self.peer = peer
        self.scheme = scheme
        self.start = start
        self.method = ""
        self.target = b""
        self.version = "1.1"
        self.headers: list[Header] = []
        #: Every header as received (before hygiene), for the WAF; never forwarded.
        self.raw_headers: list[Header] = self.headers
        self.header_count = 0
        self.host: bytes | None = None
        self.host_count = 0
        self.authorization: list[bytes] = []
        self.content_length: int | None = None
        self.te_values: list[bytes] = []
        self.chunked = False
        self.connection_tokens: set[bytes] = set()
        self.expect_continue = False
        self.request_id_in: bytes | None = None
        self.traceparent_in: bytes | None = None
        self.tracestate_in: bytes | None = None
        self.xff_in: list[bytes] = []
        self.xfp_in: bytes | None = None
        self.keep_alive = True
        # What the gateway decided.
        self.path = ""
        self.query: str | None = None
        self.client_ip = peer
        self.correlation_id = ""
        self.trace_id: str | None = None
        self.traceparent_out = b""
        self.route: Route | None = None
        self.subject: str | None = None
        self.issuer: str | None = None
        self.scopes: frozenset[str] = frozenset()
        self.upstream_headers: list[Header] = []
        self.response_headers: list[Header] = []
        self.extra: dict[str, Any] = {}
        # Where the exchange is.
        self.body_buffer: list[bytes] = []
        self.body_buffered = 0
        self.body_received = 0
        self.body_done = False
        self.dispatched = False
        self.denied = False
        self.close_after = False
        self.upstream: Any = None
        self.status = 0

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        # Never the headers: they may carry credentials.
        return f"<Request {self.method} {self.path or '?'} id={self.correlation_id or '-'}>"
