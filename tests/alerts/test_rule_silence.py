"""Default rule: a log source going silent (no events from a service for T seconds)."""

from __future__ import annotations

from tests.alerts._helpers import event, fired, replay


def hello(service: str, t: float):
    return event("authz.allowed", outcome="allow", service=service, t=t)


class TestSourceSilent:
    def test_fires_when_another_source_shows_time_passed(self) -> None:
        """ledger spoke at 0; payments speaks at 301: ledger has been silent for 300 s."""
        alerts = replay([hello("ledger", 0), hello("payments", 301)], silence_after=300)
        assert fired(alerts) == ["log_source_silent"]
        assert dict(alerts[0].group) == {"service": "ledger"}

    def test_fires_at_the_end_of_a_replay(self) -> None:
        """Advancing the clock past the last event reveals silence too."""
        alerts = replay([hello("ledger", 0)], silence_after=300, until=300)
        assert fired(alerts) == ["log_source_silent"]

    def test_reported_once_then_rearmed(self) -> None:
        """Silent once, speaks, silent again: two alerts (de-duplication window permitting)."""
        events = [hello("ledger", 0), hello("ledger", 400), hello("payments", 1200)]
        alerts = replay(events, silence_after=300, dedup_window=60)
        assert fired(alerts) == ["log_source_silent", "log_source_silent"]

    def test_near_miss_just_before_threshold(self) -> None:
        alerts = replay([hello("ledger", 0), hello("payments", 299)], silence_after=300)
        assert fired(alerts) == []
