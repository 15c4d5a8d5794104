"""Correlation context, tracing and structured logging."""

from ramparts.telemetry.context import (
    CorrelationContext,
    bind_correlation,
    current_correlation,
    new_correlation_id,
)

__all__ = ["CorrelationContext", "bind_correlation", "current_correlation", "new_correlation_id"]
