"""Event factories and a replay shortcut for the alert tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ramparts.alerts import Alert, AlertEngine, RuleSet, default_rules
from ramparts.config import Topology
from ramparts.events import Outcome, SecurityEvent

T0 = 1_700_000_000.0  # event times are T0 + offset seconds


def event(
    type_: str,
    *,
    service: str = "gateway",
    outcome: str = "deny",
    t: float = 0.0,
    peer: str | None = None,
    reason: str = "refused",
    **detail: Any,
) -> SecurityEvent:
    return SecurityEvent(
        type=type_,
        service=service,
        outcome=Outcome(outcome),
        reason=reason,
        peer=peer,
        detail=detail,
        time=T0 + t,
    )


_DEFAULTS: RuleSet | None = None


def defaults() -> RuleSet:
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = default_rules()
    return _DEFAULTS


def replay(
    events: Iterable[SecurityEvent],
    *,
    rules: RuleSet | None = None,
    topology: Topology | None = None,
    silence_after: float | None = None,
    until: float | None = None,
    dedup_window: float = 300.0,
) -> list[Alert]:
    engine = AlertEngine(
        rules or defaults(),
        topology=topology,
        silence_after=silence_after,
        dedup_window=dedup_window,
    )
    return engine.replay(events, until=None if until is None else T0 + until)


def fired(alerts: Iterable[Alert]) -> list[str]:
    """Rule keys of first alerts (not de-duplication updates), in order."""
    return [a.rule for a in alerts if not a.update]
