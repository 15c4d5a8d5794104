"""Grouping and de-duplication: same rule and group within a window -> one alert with a count."""

from __future__ import annotations

from tests.alerts._helpers import T0, defaults, event, fired, replay

from ramparts.alerts import AlertEngine


def blocked(service: str, dest: str, t: float):
    return event("egress.blocked", service=service, t=t, destination=dest)


class TestDedup:
    def test_repeats_in_window_merge_into_one_alert_with_count(self) -> None:
        """Five identical blocks in 5 minutes: one alert now, one update with count 5 later."""
        alerts = replay([blocked("payments", "evil.example:443", t) for t in range(5)])
        assert [(a.rule, a.update, a.count) for a in alerts] == [
            ("egress_blocked", False, 1),
            ("egress_blocked", True, 5),
        ]
        first, update = alerts
        assert update.fingerprint() == first.fingerprint()  # Alertmanager folds them together
        assert update.first_at == T0 and update.last_at == T0 + 4

    def test_different_groups_are_different_alerts(self) -> None:
        """Another destination or another service is another alert."""
        alerts = replay(
            [
                blocked("payments", "a.example:443", 0),
                blocked("payments", "b.example:443", 1),
                blocked("ledger", "a.example:443", 2),
            ]
        )
        assert fired(alerts) == ["egress_blocked"] * 3
        assert len({a.fingerprint() for a in alerts}) == 3

    def test_window_expiry_allows_a_new_alert(self) -> None:
        """After the window closes, the same group alerts again."""
        alerts = replay([blocked("payments", "evil.example:443", t) for t in (0, 10, 400)])
        assert [(a.update, a.count) for a in alerts] == [(False, 1), (True, 2), (False, 1)]

    def test_single_alert_sends_no_update(self) -> None:
        alerts = replay([blocked("payments", "evil.example:443", 0)])
        assert [a.update for a in alerts] == [False]

    def test_tick_closes_windows_on_the_clock(self) -> None:
        """The online path closes windows from tick_at_time, not only on the next event."""
        engine = AlertEngine(defaults(), silence_after=None, dedup_window=60)
        assert len(engine.process_at_time(blocked("payments", "x.example:1", 0), T0)) == 1
        assert engine.process_at_time(blocked("payments", "x.example:1", 1), T0 + 1) == []
        assert engine.tick_at_time(T0 + 59) == []
        (update,) = engine.tick_at_time(T0 + 60)
        assert update.update and update.count == 2
        assert engine.stats().suppressed == 1

    def test_per_rule_dedup_window(self) -> None:
        """A rule's ramparts.dedup overrides the engine's window."""
        from ramparts.alerts import parse_rules
        from ramparts.alerts._rules import build_ruleset

        rules = build_ruleset(
            parse_rules(
                "title: t\nname: r\ndetection:\n  s: {type: x.y}\n  condition: s\n"
                "ramparts:\n  dedup: 10s\n  group-by: [peer]\n"
            )
        )
        events = [event("x.y", peer="p", t=t) for t in (0, 5, 11)]
        alerts = replay(events, rules=rules)
        assert [(a.update, a.count, dict(a.group)) for a in alerts] == [
            (False, 1, {"peer": "p"}),
            (True, 2, {"peer": "p"}),
            (False, 1, {"peer": "p"}),
        ]
