"""ASGI middleware that binds the request's correlation context.

Inside the mesh every caller is a verified workload, so an inbound
``X-Request-ID`` and ``traceparent`` are continued when well formed (the
gateway generated them, or checked them against its trusted proxies); a
malformed or missing one is replaced, never passed on.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ramparts.telemetry.context import bind_correlation, current_correlation, new_correlation_id

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
REQUEST_ID_HEADER = b"x-request-id"
# Same shape the gateway accepts: 1-128 visible characters from a conservative set.
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# W3C Trace Context, version 00: lowercase hex, ids not all zero.
_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _trace_id(value: bytes | None) -> str | None:
    m = _TRACEPARENT.match(value or b"")
    if not m or m.group(1) == b"0" * 32 or m.group(2) == b"0" * 16:
        return None
    return m.group(1).decode()


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
        trace_id = _trace_id(headers.get(b"traceparent")) or new_correlation_id()

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (REQUEST_ID_HEADER, correlation_id.encode()),
                ]
            await send(message)

        with bind_correlation(correlation_id, trace_id=trace_id):
            await self.app(scope, receive, send_with_id)


def outgoing_headers() -> dict[str, str]:
    """Headers that carry the current correlation context to the next service."""
    ctx = current_correlation()
    if ctx is None:
        return {}
    out = {"X-Request-ID": ctx.correlation_id}
    if ctx.trace_id:
        out["traceparent"] = f"00-{ctx.trace_id}-{new_correlation_id()[:16]}-01"
    return out
