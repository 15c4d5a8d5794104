"""Correlation context, tracing and structured logging.

>>> from ramparts.telemetry import bind_correlation, parse_traceparent
>>> parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").sampled
True

The context and ``traceparent`` helpers are imported eagerly (events and the
gateway's hot path use them). Tracing, logging, the disk buffer and the ECS
mapping load on first use, so importing ``ramparts.events`` does not pull in
the OpenTelemetry SDK or structlog.
"""

from __future__ import annotations

import importlib
from typing import Any

from ramparts.telemetry.context import (
    CorrelationContext,
    bind_correlation,
    current_correlation,
    new_correlation_id,
)
from ramparts.telemetry.traceparent import (
    TRACEPARENT_HEADER,
    InvalidTraceparentError,
    TraceParent,
    format_traceparent,
    new_traceparent,
    parse_traceparent,
)

# Public name -> the submodule that defines it, loaded on first attribute access.
_LAZY = {
    "Backoff": "backoff",
    "DiskBuffer": "diskbuffer",
    "LogEventSink": "logging",
    "LoggingSetup": "logging",
    "configure_logging": "logging",
    "CORRELATION_ID_ATTRIBUTE": "tracing",
    "REQUEST_ID_HEADER": "tracing",
    "client_span": "tracing",
    "httpx_event_hooks": "tracing",
    "outgoing_headers": "tracing",
    "server_span": "tracing",
    "setup_tracing": "tracing",
    "stage_span": "tracing",
}

__all__ = [
    "CORRELATION_ID_ATTRIBUTE",
    "REQUEST_ID_HEADER",
    "TRACEPARENT_HEADER",
    "Backoff",
    "CorrelationContext",
    "DiskBuffer",
    "InvalidTraceparentError",
    "LogEventSink",
    "LoggingSetup",
    "TraceParent",
    "bind_correlation",
    "client_span",
    "configure_logging",
    "current_correlation",
    "format_traceparent",
    "httpx_event_hooks",
    "new_correlation_id",
    "new_traceparent",
    "outgoing_headers",
    "parse_traceparent",
    "server_span",
    "setup_tracing",
    "stage_span",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ramparts.telemetry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ramparts.telemetry.{module}"), name)
    globals()[name] = value
    return value
