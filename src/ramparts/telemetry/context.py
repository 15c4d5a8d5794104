"""The correlation context of the request being handled.

It lives in a :mod:`contextvars` variable, so it follows a request across
``await`` points and into tasks created while handling it, and never leaks into
a concurrent request on the same event loop.

>>> with bind_correlation("req-1", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"):
...     current_correlation().correlation_id
'req-1'
>>> current_correlation() is None
True
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CorrelationContext:
    """Who is asking, as far as logs and events need to know."""

    correlation_id: str
    trace_id: str | None = None
    span_id: str | None = None


_current: contextvars.ContextVar[CorrelationContext | None] = contextvars.ContextVar(
    "ramparts_correlation", default=None
)


def new_correlation_id() -> str:
    """A fresh correlation ID: 128 random bits, hex, the same shape as a W3C trace-id."""
    return secrets.token_hex(16)


def current_correlation() -> CorrelationContext | None:
    """The correlation context bound to the running task, or None outside a request."""
    return _current.get()


@contextlib.contextmanager
def bind_correlation(
    correlation_id: str, *, trace_id: str | None = None, span_id: str | None = None
) -> Iterator[CorrelationContext]:
    """Bind a correlation context for the duration of the ``with`` block."""
    ctx = CorrelationContext(correlation_id, trace_id, span_id)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
