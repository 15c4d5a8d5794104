"""Where our fields land in the Elastic Common Schema (ECS): one table, used by logs and exporters.

>>> correlation_fields(CorrelationContext("req-1", trace_id="4bf9" * 8))["trace.id"] == "4bf9" * 8
True
>>> doc = security_event_to_ecs({"time": "2026-01-01T00:00:00.000000+00:00", "type": "jwt.rejected",
...     "service": "gateway", "outcome": "deny", "reason": "expired", "correlation_id": "req-1"})
>>> doc["event.action"], doc["event.outcome"], doc["transaction.id"]
('jwt.rejected', 'failure', 'req-1')

Keys are ECS dotted names at the top level of a flat object, the shape the
``ecs-logging`` libraries write and Elasticsearch, Filebeat and Kibana accept.
The correlation ID has no ECS field of its own; it is the id of the unit of
work one service does for one request, which is what ECS calls a transaction,
so it goes to ``transaction.id`` (and stays as ``correlation_id`` for people
grepping lines).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ramparts.telemetry.context import CorrelationContext

__all__ = [
    "ECS_VERSION",
    "correlation_fields",
    "ecs_timestamp",
    "security_event_to_ecs",
]

ECS_VERSION = "8.11.0"

TIMESTAMP = "@timestamp"
MESSAGE = "message"
LOG_LEVEL = "log.level"
LOG_LOGGER = "log.logger"
SERVICE_NAME = "service.name"
TRACE_ID = "trace.id"
SPAN_ID = "span.id"
TRANSACTION_ID = "transaction.id"
CORRELATION_ID = "correlation_id"
ERROR_STACK_TRACE = "error.stack_trace"
EVENT_HASH = "event.hash"

# ECS event.outcome is one of success / failure / unknown.
_OUTCOME = {"allow": "success", "deny": "failure"}


def ecs_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, the form ECS ``@timestamp`` uses.

    >>> ecs_timestamp(1767225600.1239)
    '2026-01-01T00:00:00.123Z'
    """
    # strftime on a struct_time is about twice as fast as datetime.isoformat, and this
    # runs once per log line. Milliseconds are truncated, as isoformat would.
    # Round to microseconds first, as datetime.fromtimestamp does, so both agree.
    frac, whole = math.modf(epoch_seconds)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole += 1
        micros -= 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros // 1000:03d}Z"


def correlation_fields(ctx: CorrelationContext | None) -> dict[str, str]:
    """The correlation and trace fields for a log line or document; empty outside a request."""
    if ctx is None:
        return {}
    out = {CORRELATION_ID: ctx.correlation_id, TRANSACTION_ID: ctx.correlation_id}
    if ctx.trace_id:
        out[TRACE_ID] = ctx.trace_id
    if ctx.span_id:
        out[SPAN_ID] = ctx.span_id
    return out


def security_event_to_ecs(
    entry: Mapping[str, Any], *, leaf_hash: str | None = None, sequence: int | None = None
) -> dict[str, Any]:
    """An ECS document for a security event dict (``SecurityEvent.to_dict()`` shape).

    Args:
        entry: the event as stored in the audit log.
        leaf_hash: the RFC 6962 Merkle leaf hash of the entry, hex; becomes ``event.hash``.
        sequence: the entry's index in the audit log; becomes ``event.sequence``.
    """
    outcome = str(entry.get("outcome", ""))
    doc: dict[str, Any] = {
        TIMESTAMP: _normalise_time(entry.get("time")),
        "ecs.version": ECS_VERSION,
        "event.kind": "event",
        "event.action": entry.get("type"),
        "event.outcome": _OUTCOME.get(outcome, "unknown"),
        "event.reason": entry.get("reason"),
        SERVICE_NAME: entry.get("service"),
        MESSAGE: f"{entry.get('type')} {outcome}: {entry.get('reason')}",
    }
    correlation_id = entry.get("correlation_id")
    if correlation_id:
        doc[CORRELATION_ID] = correlation_id
        doc[TRANSACTION_ID] = correlation_id
    if entry.get("trace_id"):
        doc[TRACE_ID] = entry["trace_id"]
    if entry.get("peer"):
        doc["ramparts.peer"] = entry["peer"]
    if entry.get("detail"):
        doc["ramparts.detail"] = dict(entry["detail"])
    if leaf_hash is not None:
        doc[EVENT_HASH] = leaf_hash
    if sequence is not None:
        doc["event.sequence"] = sequence
    return doc


def _normalise_time(value: Any) -> str | None:
    """An RFC 3339 time string in ``Z`` form; None stays None (Elastic then rejects the doc)."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return ecs_timestamp(float(value))
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:  # our writers always add an offset; a bare time is taken as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return ecs_timestamp(parsed.timestamp())
