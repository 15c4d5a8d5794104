"""Default rules: authentication failure spikes (per source, overall) and password spraying."""

from __future__ import annotations

from tests.alerts._helpers import event, fired, replay


def jwt_fail(peer: str, t: float, subject: str | None = None):
    extra = {"subject": subject} if subject else {}
    return event("jwt.rejected", peer=peer, t=t, reason_code="expired", **extra)


class TestSpikePerSource:
    def test_fires_at_twenty_in_a_minute(self) -> None:
        """20 refused tokens from one client within 60 s raise one alert for that source."""
        alerts = replay([jwt_fail("198.51.100.4", t) for t in range(20)])
        assert fired(alerts) == ["auth_failure_spike_source"]
        assert dict(alerts[0].group) == {"derived.source": "198.51.100.4"}
        assert alerts[0].count == 20

    def test_mtls_rejections_group_by_remote_address(self) -> None:
        """Refused handshakes have no peer; the remote address is the source."""
        events = [
            event("mtls.rejected", service="ledger", t=t, remote="10.0.0.9:5123") for t in range(20)
        ]
        alerts = replay(events)
        assert fired(alerts) == ["auth_failure_spike_source"]
        assert dict(alerts[0].group) == {"derived.source": "10.0.0.9"}

    def test_near_miss_nineteen(self) -> None:
        """19 failures are not a spike."""
        assert fired(replay([jwt_fail("198.51.100.4", t) for t in range(19)])) == []

    def test_near_miss_spread_out(self) -> None:
        """20 failures spread over more than a minute are not a spike."""
        assert fired(replay([jwt_fail("198.51.100.4", t * 4) for t in range(20)])) == []

    def test_single_failure_raises_nothing(self) -> None:
        """The base rules are quiet on their own (referenced by correlations)."""
        assert fired(replay([jwt_fail("198.51.100.4", 0, "ada")])) == []


class TestSpikeOverall:
    def test_fires_on_a_hundred_from_many_sources(self) -> None:
        """100 failures from 100 sources in a minute: overall spike, no per-source alert."""
        events = [jwt_fail(f"198.51.100.{i}", i * 0.5) for i in range(100)]
        assert fired(replay(events)) == ["auth_failure_spike_overall"]

    def test_near_miss_ninety_nine(self) -> None:
        events = [jwt_fail(f"198.51.100.{i}", i * 0.5) for i in range(99)]
        assert fired(replay(events)) == []


class TestPasswordSpraying:
    def test_fires_on_five_subjects_from_one_source(self) -> None:
        """Five different subjects refused from one address within 5 minutes."""
        events = [jwt_fail("203.0.113.5", i * 30, subject=f"user{i}") for i in range(5)]
        alerts = replay(events)
        assert fired(alerts) == ["password_spraying"]
        assert alerts[0].count == 5

    def test_near_miss_one_subject_many_times(self) -> None:
        """Many failures for the same subject are not spraying."""
        events = [jwt_fail("203.0.113.5", i * 30, subject="ada") for i in range(10)]
        assert fired(replay(events)) == []

    def test_near_miss_subjects_from_different_sources(self) -> None:
        """Five subjects from five sources are five users, not one sprayer."""
        events = [jwt_fail(f"203.0.113.{i}", i, subject=f"user{i}") for i in range(5)]
        assert fired(replay(events)) == []
