"""The security event record."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any


class Outcome(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


def _frozen(detail: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(detail or {}))


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One security decision.

    ``type`` is a dotted name, piece first (``jwt.rejected``, ``mtls.rejected``,
    ``authz.denied``, ``egress.blocked``). ``peer`` is the caller's verified
    identity (a SPIFFE ID) or, at the gateway, the client address; never a value
    the caller merely claimed. ``detail`` must hold no secret: callers pass it
    through masking before it leaves the process.
    """

    type: str
    service: str
    outcome: Outcome
    reason: str
    peer: str | None = None
    correlation_id: str | None = None
    trace_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not self.type or "." not in self.type:
            raise ValueError(f"event type must be dotted like 'jwt.rejected', got {self.type!r}")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "detail", _frozen(self.detail))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``time`` as RFC 3339 UTC with microseconds."""
        return {
            "time": datetime.fromtimestamp(self.time, UTC).isoformat(timespec="microseconds"),
            "type": self.type,
            "service": self.service,
            "peer": self.peer,
            "correlation_id": self.correlation_id,
            "trace_id": self.trace_id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "detail": dict(self.detail),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecurityEvent:
        """The inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        try:
            when = datetime.fromisoformat(data["time"]).timestamp()
            return cls(
                type=data["type"],
                service=data["service"],
                outcome=Outcome(data["outcome"]),
                reason=data["reason"],
                peer=data.get("peer"),
                correlation_id=data.get("correlation_id"),
                trace_id=data.get("trace_id"),
                detail=data.get("detail") or {},
                time=when,
            )
        except KeyError as exc:
            raise ValueError(f"security event is missing field {exc.args[0]!r}") from exc
