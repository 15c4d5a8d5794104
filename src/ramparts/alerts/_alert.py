"""The alert record: what a rule raised, for which group, how many times.

Everything an alert carries that came from an event (group values, the sample
event) is masked with :class:`ramparts.masking.Masker` when the alert is built,
in :func:`build_alert` and nowhere else, so no sink can leak PII.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ramparts.alerts._rules import Rule
from ramparts.masking import Masker

# Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]* (Alertmanager rejects others).
_LABEL_BAD: Final = re.compile(r"[^A-Za-z0-9_]")
# FNV-1a 64-bit, as Prometheus' model.LabelSet.Fingerprint() uses (fnv.go).
_FNV_OFFSET: Final = 14695981039346656037
_FNV_PRIME: Final = 1099511628211
_MASK64: Final = (1 << 64) - 1
_SEPARATOR: Final = 0xFF  # model.SeparatorByte
_PRIVATE_KEYS: Final = ("\x00text",)


def rfc3339(ts: float) -> str:
    """Seconds since the epoch as RFC 3339 UTC with milliseconds and a ``Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def label_name(field_name: str) -> str:
    """A field name as a Prometheus label name (``detail.x`` -> ``detail_x``)."""
    name = _LABEL_BAD.sub("_", field_name)
    return f"_{name}" if name[:1].isdigit() else name


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus' label-set fingerprint: FNV-1a 64 over sorted name, 0xff, value, 0xff."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & _MASK64
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & _MASK64
    return f"{h:016x}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: a rule fired for a group. ``count`` events merged into it so far."""

    rule: str
    title: str
    level: str
    description: str
    group: tuple[tuple[str, str], ...]  # (field, masked value), in the rule's group-by order
    count: int
    first_at: float  # event time of the first matching event
    last_at: float  # event time of the latest matching event
    event: Mapping[str, Any] = field(repr=False)  # the triggering event, masked
    fired_at: float = 0.0  # engine clock when raised, for latency measurement
    update: bool = False  # a later report of an alert already sent, with a higher count

    @property
    def dedup_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return (self.rule, self.group)

    def labels(self) -> dict[str, str]:
        """Alertmanager labels: identity of the alert (rule, severity, group values)."""
        out = {"alertname": self.rule, "severity": self.level, "source": "ramparts"}
        for name, value in self.group:
            out.setdefault(label_name(name), value)
        return out

    def summary(self) -> str:
        where = ", ".join(f"{k}={v or '-'}" for k, v in self.group)
        return f"{self.title} ({where})" if where else self.title

    def annotations(self) -> dict[str, str]:
        """Alertmanager annotations: strings only, all masked."""
        return {
            "summary": self.summary(),
            "description": self.description,
            "count": str(self.count),
            "event_type": str(self.event.get("type", "")),
            "first_event": rfc3339(self.first_at),
            "last_event": rfc3339(self.last_at),
        }

    def fingerprint(self) -> str:
        return fingerprint(self.labels())

    def to_dict(self) -> dict[str, Any]:
        """The generic JSON form (webhook and log sinks)."""
        return {
            "rule": self.rule,
            "title": self.title,
            "severity": self.level,
            "summary": self.summary(),
            "description": self.description,
            "group": dict(self.group),
            "count": self.count,
            "first_event": rfc3339(self.first_at),
            "last_event": rfc3339(self.last_at),
            "update": self.update,
            "fingerprint": self.fingerprint(),
            "event": dict(self.event),
        }


def build_alert(
    rule: Rule,
    record: Mapping[str, Any],
    group: tuple[tuple[str, str], ...],
    count: int,
    *,
    masker: Masker,
    fired_at: float,
    event_time: float,
) -> Alert:
    """An alert for ``rule`` with every event-derived string masked."""
    sample = {k: v for k, v in record.items() if k not in _PRIVATE_KEYS}
    return Alert(
        rule=rule.key,
        title=masker.mask_text(rule.title),
        level=rule.level,
        description=masker.mask_text(rule.description),
        group=tuple((name, masker.mask_text(value)) for name, value in group),
        count=count,
        first_at=event_time,
        last_at=event_time,
        event=masker.mask_record(sample),
        fired_at=fired_at,
    )
