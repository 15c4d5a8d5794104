"""HTTP/1.1 wire constants and the gateway's own (local) responses.

Everything the gateway answers by itself (400, 404, 413, 429, 502, ...) is a
:class:`Reply`. Its body is a short JSON object naming the error and the
correlation ID, never echoing request data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = [
    "HOP_BY_HOP",
    "INTERNAL_PREFIX",
    "Reply",
    "reason_phrase",
    "status_line",
]

#: RFC 9110 section 7.6.1 hop-by-hop fields, plus the de-facto ones
#: (Keep-Alive, Proxy-Connection). Content-Length is not hop-by-hop, but the
#: gateway re-frames every message, so the inbound one is never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)

#: Headers in this namespace are set only by the gateway; any client copy is dropped.
INTERNAL_PREFIX = b"x-ramparts-"

_STATUS_LINES: dict[int, bytes] = {}


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <phrase>\\r\\n``, cached per status."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} {reason_phrase(status)}\r\n".encode("ascii")
        _STATUS_LINES[status] = line
    return line


@dataclass(slots=True)
class Reply:
    """A response the gateway makes itself (a deny, an error, a probe).

    ``close`` asks for the connection to be closed after it is sent; framing
    errors always set it, since the gateway can no longer tell where the next
    request starts.
    """

    status: int
    error: str
    message: str
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    close: bool = False

    def body(self, correlation_id: str | None) -> bytes:
        payload = {"error": self.error, "message": self.message}
        if correlation_id:
            payload["request_id"] = correlation_id
        return json.dumps(payload, separators=(",", ":")).encode()
