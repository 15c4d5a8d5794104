"""Sinks against a real HTTP receiver on 127.0.0.1: exact wire formats, retries, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from tests.alerts._helpers import T0, defaults, event
from tests.alerts._receiver import Receiver, receiver

from ramparts.alerts import (
    AlertEngine,
    AlertmanagerWebhookSink,
    LogSink,
    SinkWorker,
    SlackSink,
    WebhookSink,
    fingerprint,
    parse_rules,
)
from ramparts.alerts._rules import build_ruleset
from ramparts.events import SecurityEvent

LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def blocked(dest: str = "evil.example:443", service: str = "payments") -> SecurityEvent:
    return event("egress.blocked", service=service, destination=dest)


async def run_engine(
    sinks: Sequence[Any], events: Sequence[SecurityEvent], *, rules=None, close_timeout=5.0
) -> AlertEngine:
    engine = AlertEngine(rules or defaults(), sinks=sinks, silence_after=None, clock=lambda: T0)
    await engine.start()
    for e in events:
        engine.write(e)
    assert await engine.wait_idle(10)
    await engine.aclose(close_timeout)
    return engine


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestAlertmanagerWebhook:
    def test_wire_format(self) -> None:
        """POST, JSON, and every field of the version 4 payload with its type."""
        with receiver() as rec:
            sink = AlertmanagerWebhookSink(
                rec.url + "/hooks/am",
                receiver="security",
                external_url="http://console.local:8080",
                generator_url="http://console.local:8080/rules/",
            )
            asyncio.run(run_engine([sink], [blocked()]))
            (req,) = rec.wait_for(1)
        assert req.method == "POST"
        assert req.path == "/hooks/am"
        assert req.headers["content-type"] == "application/json"
        body = req.json()
        assert set(body) == {
            "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
            "commonLabels", "commonAnnotations", "externalURL", "alerts",
        }  # fmt: skip
        assert body["version"] == "4"
        assert body["status"] == "firing"
        assert body["receiver"] == "security"
        assert body["externalURL"] == "http://console.local:8080"
        assert body["truncatedAlerts"] == 0 and isinstance(body["truncatedAlerts"], int)
        assert body["groupLabels"] == {"alertname": "egress_blocked"}
        assert body["groupKey"] == '{}:{alertname="egress_blocked"}'
        (alert,) = body["alerts"]
        assert set(alert) == {
            "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
        }  # fmt: skip
        assert alert["status"] == "firing"
        assert alert["labels"] == {
            "alertname": "egress_blocked",
            "severity": "high",
            "source": "ramparts",
            "service": "payments",
            "derived_destination_host": "evil.example",
        }
        assert all(LABEL_NAME.match(k) for k in alert["labels"])
        annotations = alert["annotations"]
        assert set(annotations) == {
            "summary", "description", "count", "event_type", "first_event", "last_event",
        }  # fmt: skip
        assert all(isinstance(v, str) for v in annotations.values())
        assert annotations["count"] == "1"
        assert annotations["event_type"] == "egress.blocked"
        assert parse_time(alert["startsAt"]).timestamp() == T0
        assert alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert alert["generatorURL"] == "http://console.local:8080/rules/egress_blocked"
        assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
        assert alert["fingerprint"] == fingerprint(alert["labels"])
        assert body["commonLabels"] == alert["labels"]
        assert body["commonAnnotations"] == annotations

    def test_groups_split_by_alertname_and_truncate(self) -> None:
        """One POST per alertname; max_alerts truncates and counts the rest."""
        from ramparts.alerts import alertmanager_payloads

        alerts = AlertEngine(defaults(), silence_after=None).replay(
            [blocked(f"h{i}.example:1") for i in range(3)]
            + [event("shipper.entries_dropped", service="ledger")]
        )
        firsts = [a for a in alerts if not a.update]
        bodies = alertmanager_payloads(firsts, receiver="r", max_alerts=2)
        by_name = {b["groupLabels"]["alertname"]: b for b in bodies}
        assert set(by_name) == {"egress_blocked", "audit_entries_dropped"}
        assert len(by_name["egress_blocked"]["alerts"]) == 2
        assert by_name["egress_blocked"]["truncatedAlerts"] == 1
        assert "derived_destination_host" not in by_name["egress_blocked"]["commonLabels"]


def test_fingerprint_is_prometheus_fnv1a() -> None:
    """FNV-1a 64 (published vectors) over name 0xff value 0xff, names sorted."""

    def fnv1a(data: bytes) -> int:
        h = 0xCBF29CE484222325
        for b in data:
            h = ((h ^ b) * 0x100000001B3) % 2**64
        return h

    assert f"{fnv1a(b'a'):016x}" == "af63dc4c8601ec8c"
    assert f"{fnv1a(b'foobar'):016x}" == "85944171f73967e8"
    want = fnv1a(b"a\xff1\xff" + b"b\xff2\xff")
    assert fingerprint({"b": "2", "a": "1"}) == f"{want:016x}"


class TestGenericWebhook:
    def test_wire_format(self) -> None:
        with receiver() as rec:
            asyncio.run(run_engine([WebhookSink(rec.url + "/in")], [blocked()]))
            (req,) = rec.wait_for(1)
        assert (req.method, req.path, req.headers["content-type"]) == (
            "POST",
            "/in",
            "application/json",
        )
        body = req.json()
        assert set(body) == {"version", "source", "alerts"}
        assert (body["version"], body["source"]) == ("1", "ramparts")
        (a,) = body["alerts"]
        assert set(a) == {
            "rule", "title", "severity", "summary", "description", "group", "count",
            "first_event", "last_event", "update", "fingerprint", "event",
        }  # fmt: skip
        assert a["rule"] == "egress_blocked" and a["severity"] == "high"
        assert a["group"] == {"service": "payments", "derived.destination_host": "evil.example"}
        assert a["count"] == 1 and a["update"] is False
        assert a["event"]["type"] == "egress.blocked"
        assert a["event"]["detail"] == {"destination": "evil.example:443"}
        assert isinstance(a["event"]["derived"], dict)


class TestSlack:
    def test_wire_format_and_escaping(self) -> None:
        """{"text", "blocks"}: a header and one mrkdwn section; & < > escaped."""
        rules = build_ruleset(
            parse_rules(
                "title: Odd <b> & co\nname: odd\nlevel: low\n"
                "description: a <test>\ndetection:\n  s: {type: x.y}\n  condition: s\n"
            )
        )
        with receiver() as rec:
            asyncio.run(run_engine([SlackSink(rec.url + "/services/T/B/X")], [event("x.y")],
                                   rules=rules))  # fmt: skip
            (req,) = rec.wait_for(1)
        assert (req.method, req.path) == ("POST", "/services/T/B/X")
        assert req.headers["content-type"] == "application/json"
        body = req.json()
        assert set(body) == {"text", "blocks"}
        assert body["text"] == "[low] Odd &lt;b&gt; &amp; co (service=gateway)"
        header, section = body["blocks"]
        assert header == {
            "type": "header",
            "text": {"type": "plain_text", "text": "[low] Odd <b> & co (service=gateway)"},
        }
        assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
        text = section["text"]["text"]
        assert "*Odd &lt;b&gt; &amp; co*" in text and "a &lt;test&gt;" in text
        assert "<" not in text.replace("&lt;", "")


class TestLogSink:
    def test_one_json_line_per_alert(self, caplog: pytest.LogCaptureFixture) -> None:
        logger = logging.getLogger("test.alerts.log")
        with caplog.at_level(logging.WARNING, logger="test.alerts.log"):
            asyncio.run(run_engine([LogSink(logger)], [blocked(), blocked("x.example:1")]))
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "test.alerts.log"]
        assert [line["rule"] for line in lines] == ["egress_blocked", "egress_blocked"]


class TestRetriesAndFailures:
    def test_retries_5xx_with_backoff_then_delivers(self) -> None:
        with receiver() as rec:
            rec.statuses = [503, 502]
            worker = SinkWorker(WebhookSink(rec.url), backoff=0.01)
            asyncio.run(run_engine([worker], [blocked()]))
            reqs = rec.wait_for(3)
        assert len(reqs) == 3 and reqs[0].body == reqs[2].body
        st = worker.stats()
        assert (st.sent, st.retries, st.failed, st.dropped) == (1, 2, 0, 0)

    def test_4xx_is_not_retried(self) -> None:
        with receiver() as rec:
            rec.statuses = [400]
            worker = SinkWorker(WebhookSink(rec.url), backoff=0.01)
            asyncio.run(run_engine([worker], [blocked()]))
            assert len(rec.wait_for(1)) == 1
        st = worker.stats()
        assert (st.sent, st.retries, st.failed) == (0, 0, 1)

    def test_gives_up_after_max_attempts(self) -> None:
        with receiver() as rec:
            rec.statuses = [500] * 10
            worker = SinkWorker(WebhookSink(rec.url), backoff=0.01, max_attempts=3)
            asyncio.run(run_engine([worker], [blocked()]))
            assert len(rec.wait_for(3)) == 3
        st = worker.stats()
        assert (st.sent, st.retries, st.failed) == (0, 2, 1)

    def test_refused_connection_is_retried_and_counted(self) -> None:
        with receiver() as rec:
            url = rec.url
        worker = SinkWorker(WebhookSink(url), backoff=0.01, max_attempts=2)  # server is gone
        asyncio.run(run_engine([worker], [blocked()]))
        st = worker.stats()
        assert (st.sent, st.retries, st.failed) == (0, 1, 1)

    def test_hanging_sink_times_out_and_never_blocks_the_engine(self) -> None:
        """A receiver that never answers: timeouts, drops on a full queue, and the
        healthy sink beside it still gets every alert."""

        async def scenario(bad: Receiver, good: Receiver) -> tuple[SinkWorker, SinkWorker, int]:
            slow = SinkWorker(
                WebhookSink(bad.url, timeout=0.2), queue_size=1, max_batch=1, max_attempts=1
            )
            fine = SinkWorker(WebhookSink(good.url), max_batch=1)
            engine = AlertEngine(defaults(), sinks=[slow, fine], silence_after=None,
                                 clock=lambda: T0)  # fmt: skip
            await engine.start()
            for i in range(5):
                engine.write(blocked(f"h{i}.example:1"))
            assert await fine.drain(10)
            events = engine.events
            await engine.aclose(timeout=0.5)
            return slow, fine, events

        with receiver() as bad, receiver() as good:
            bad.hang = True
            slow, fine, events = asyncio.run(scenario(bad, good))
            assert len(good.wait_for(5)) == 5
        assert events == 5
        assert fine.stats().sent == 5
        st = slow.stats()
        assert st.dropped >= 3  # one in flight, one queued, the rest refused at once
        assert st.sent == 0
        assert st.dropped + st.failed == 5
