"""Default rules: rate-limit floods, rate-limit backend outages, WAF bursts."""

from __future__ import annotations

from tests.alerts._helpers import event, fired, replay


class TestRateLimitFlood:
    def test_fires_at_fifty_in_a_minute(self) -> None:
        """The legacy count aggregation: 50 rejections by one client within 1 m."""
        events = [event("ratelimit.exceeded", peer="192.0.2.1", t=t) for t in range(50)]
        alerts = replay(events)
        assert fired(alerts) == ["ratelimit_flood"]
        assert alerts[0].level == "medium"

    def test_near_miss_forty_nine(self) -> None:
        events = [event("ratelimit.exceeded", peer="192.0.2.1", t=t) for t in range(49)]
        assert fired(replay(events)) == []

    def test_near_miss_fifty_from_two_clients(self) -> None:
        events = [event("ratelimit.exceeded", peer=f"192.0.2.{t % 2}", t=t) for t in range(50)]
        assert fired(replay(events)) == []


class TestBackendUnavailable:
    def test_fires(self) -> None:
        ev = event("ratelimit.backend_unavailable", detail_on_error="open")
        assert fired(replay([ev])) == ["ratelimit_backend_unavailable"]

    def test_near_miss_other_ratelimit_event(self) -> None:
        assert fired(replay([event("ratelimit.recovered", outcome="allow")])) == []


class TestWAFBurst:
    def test_fires_at_ten_blocks_in_a_minute(self) -> None:
        events = [
            event("waf.blocked", peer="203.0.113.50", t=t, rule_ids=[942100], score=5)
            for t in range(10)
        ]
        assert fired(replay(events)) == ["waf_burst"]

    def test_near_miss_nine(self) -> None:
        events = [event("waf.blocked", peer="203.0.113.50", t=t) for t in range(9)]
        assert fired(replay(events)) == []

    def test_near_miss_detections_not_blocks(self) -> None:
        """waf.detected (allowed, below the blocking threshold) does not count."""
        events = [
            event("waf.detected", outcome="allow", peer="203.0.113.50", t=t) for t in range(10)
        ]
        assert fired(replay(events)) == []
