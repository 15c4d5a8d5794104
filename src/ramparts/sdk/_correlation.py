"""ASGI middleware that binds the request's correlation context.

Inside the mesh every caller is a verified workload, so an inbound
``X-Request-ID`` and ``traceparent`` are continued when well formed (the
gateway generated them, or checked them against its trusted proxies); a
malformed or missing one is replaced, never passed on. Parsing and
formatting are :mod:`ramparts.telemetry`'s; outgoing calls carry the context
with :func:`ramparts.telemetry.tracing.outgoing_headers`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ramparts.telemetry.context import bind_correlation, new_correlation_id
from ramparts.telemetry.traceparent import (
    InvalidTraceparentError,
    TraceParent,
    new_traceparent,
    parse_traceparent,
)

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
REQUEST_ID_HEADER = b"x-request-id"
# Same shape the gateway accepts: 1-128 visible characters from a conservative set.
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def _inbound_trace(value: bytes | None) -> TraceParent:
    try:
        return parse_traceparent((value or b"").decode("latin-1"))
    except InvalidTraceparentError:
        return new_traceparent()


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(REQUEST_ID_HEADER, b"")
        correlation_id = rid.decode() if _REQUEST_ID.match(rid) else new_correlation_id()
        trace = _inbound_trace(headers.get(b"traceparent"))

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, correlation_id.encode()),
                ]
            await send(message)

        # This hop gets a span id of its own; calls it makes name it as their parent.
        with bind_correlation(
            correlation_id, trace_id=trace.trace_id, span_id=secrets.token_hex(8)
        ):
            await self.app(scope, receive, send_with_id)
