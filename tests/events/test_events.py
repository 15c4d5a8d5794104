"""Security events: the record, the emitter and its sinks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ramparts.events import EventEmitter, JSONLinesSink, MemorySink, Outcome, SecurityEvent
from ramparts.telemetry import bind_correlation


class TestSecurityEvent:
    def test_round_trips_through_dict(self) -> None:
        event = SecurityEvent(
            "jwt.rejected", "gateway", Outcome.DENY, "expired", detail={"kid": "k1"}
        )
        again = SecurityEvent.from_dict(json.loads(event.to_json()))
        assert again.to_dict() == event.to_dict()

    def test_detail_is_read_only(self) -> None:
        event = SecurityEvent("x.y", "s", Outcome.ALLOW, "r", detail={"a": 1})
        with pytest.raises(TypeError):
            event.detail["a"] = 2  # type: ignore[index]

    @pytest.mark.parametrize("bad", ["", "rejected"])
    def test_type_must_be_dotted(self, bad: str) -> None:
        with pytest.raises(ValueError, match="dotted"):
            SecurityEvent(bad, "s", Outcome.DENY, "r")

    def test_missing_field_is_named(self) -> None:
        with pytest.raises(ValueError, match="missing field 'service'"):
            SecurityEvent.from_dict({"time": "2026-01-01T00:00:00+00:00", "type": "a.b"})


class TestEmitter:
    def test_fills_correlation_from_context(self) -> None:
        sink = MemorySink()
        emitter = EventEmitter([sink], service="ledger")
        with bind_correlation("c-1", trace_id="t-1"):
            emitter.deny("authz.denied", reason="no edge", peer="spiffe://x/ns/a/sa/b")
        (event,) = sink.events
        assert (event.correlation_id, event.trace_id, event.outcome) == ("c-1", "t-1", Outcome.DENY)

    def test_needs_a_service_name(self) -> None:
        with pytest.raises(ValueError, match="needs a service name"):
            EventEmitter([MemorySink()]).allow("a.b", reason="r")

    def test_failing_sink_propagates(self) -> None:
        class Broken:
            def write(self, event: SecurityEvent) -> None:
                raise OSError("disk full")

        with pytest.raises(OSError, match="disk full"):
            EventEmitter([Broken()], service="s").deny("a.b", reason="r")

    def test_jsonlines_sink_appends_private_file(self, tmp_path: Path) -> None:
        path = tmp_path / "events.jsonl"
        sink = JSONLinesSink(path)
        emitter = EventEmitter([sink], service="gateway")
        emitter.deny("route.unknown", reason="no route for /x")
        emitter.allow("authz.allowed", reason="ok")
        sink.close()
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        assert [x["type"] for x in lines] == ["route.unknown", "authz.allowed"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
