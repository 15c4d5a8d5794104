"""The emitter and its sinks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ramparts.events._record import Outcome, SecurityEvent
from ramparts.telemetry.context import current_correlation


class EventSink(Protocol):
    """Anything that can record an event. ``write`` raises if it could not."""

    def write(self, event: SecurityEvent) -> None: ...


class MemorySink:
    """Keeps events in a list; for tests and the drill."""

    def __init__(self) -> None:
        self.events: list[SecurityEvent] = []
        self._lock = threading.Lock()

    def write(self, event: SecurityEvent) -> None:
        with self._lock:
            self.events.append(event)

    def of_type(self, type_: str) -> list[SecurityEvent]:
        with self._lock:
            return [e for e in self.events if e.type == type_]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


class JSONLinesSink:
    """Appends one JSON object a line to a file created 0600.

    Each event is a single ``write`` on an ``O_APPEND`` descriptor, so lines from
    several processes sharing the file do not interleave.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, event: SecurityEvent) -> None:
        os.write(self._fd, (event.to_json() + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


class EventEmitter:
    """Builds events with the current correlation context and writes them to every sink.

    A sink that raises is not skipped silently: the error propagates, so a
    decision that cannot be recorded is not taken quietly (callers on a deny
    path still deny).
    """

    def __init__(self, sinks: Iterable[EventSink] = (), *, service: str | None = None) -> None:
        self.sinks: list[EventSink] = list(sinks)
        self.service = service

    def add_sink(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def emit(self, event: SecurityEvent) -> SecurityEvent:
        for sink in self.sinks:
            sink.write(event)
        return event

    def record(
        self,
        type_: str,
        outcome: Outcome,
        *,
        reason: str,
        service: str | None = None,
        peer: str | None = None,
        detail: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        trace_id: str | None = None,
    ) -> SecurityEvent:
        ctx = current_correlation()
        if ctx is not None:
            correlation_id = correlation_id or ctx.correlation_id
            trace_id = trace_id or ctx.trace_id
        name = service or self.service
        if not name:
            raise ValueError(f"event {type_!r} needs a service name (emitter has none)")
        return self.emit(
            SecurityEvent(
                type=type_,
                service=name,
                outcome=outcome,
                reason=reason,
                peer=peer,
                correlation_id=correlation_id,
                trace_id=trace_id,
                detail=detail or {},
            )
        )

    def deny(self, type_: str, *, reason: str, **kw: Any) -> SecurityEvent:
        return self.record(type_, Outcome.DENY, reason=reason, **kw)

    def allow(self, type_: str, *, reason: str, **kw: Any) -> SecurityEvent:
        return self.record(type_, Outcome.ALLOW, reason=reason, **kw)
