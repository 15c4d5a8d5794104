"""Structured logging: ECS JSON lines, correlation in every line, masking before rendering."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
import structlog

import ramparts
from ramparts.telemetry.context import bind_correlation
from ramparts.telemetry.logging import configure_logging, reset_logging, resolve_masker

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def redact_secrets(_: object, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A stand-in masker: replaces any string containing 'secret' (in any field)."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and "secret" in value:
            event_dict[key] = "[MASKED]"
    return event_dict


@pytest.fixture
def out():
    stream = io.StringIO()
    yield stream
    # Leave the process with a harmless configuration for the next test.
    reset_logging()


class TestLineShape:
    def test_ecs_fields(self, out: io.StringIO) -> None:
        """Each line is one JSON object with ECS names for time, level, message and service."""
        configure_logging("ledger", stream=out, masker=False)
        structlog.get_logger().info("posted", amount=10, event_action="ledger.posted")
        (line,) = lines(out)
        assert line["message"] == "posted"
        assert line["log.level"] == "info"
        assert line["service.name"] == "ledger"
        assert line["event.action"] == "ledger.posted"
        assert line["amount"] == 10
        assert line["@timestamp"].endswith("Z") and "T" in line["@timestamp"]
        assert "event" not in line and "level" not in line

    def test_correlation_and_trace_in_every_line(self, out: io.StringIO) -> None:
        """structlog and stdlib lines carry correlation_id, trace.id, span.id, transaction.id."""
        configure_logging("gateway", stream=out, masker=False)
        with bind_correlation("req-1", trace_id=TRACE, span_id=SPAN):
            structlog.get_logger().info("a")
            logging.getLogger("uvicorn.access").warning("b")
        for line in lines(out):
            assert line["correlation_id"] == "req-1"
            assert line["transaction.id"] == "req-1"
            assert line["trace.id"] == TRACE
            assert line["span.id"] == SPAN

    def test_outside_a_request_there_are_no_ids(self, out: io.StringIO) -> None:
        configure_logging("gateway", stream=out, masker=False)
        structlog.get_logger().info("startup")
        assert "correlation_id" not in lines(out)[0]

    def test_stdlib_goes_through_the_same_pipeline(self, out: io.StringIO) -> None:
        """stdlib records become the same ECS shape, with logger name, extras and args applied."""
        configure_logging("gateway", stream=out, masker=False)
        logging.getLogger("httpx").warning("sent %d bytes", 12, extra={"peer": "ledger"})
        (line,) = lines(out)
        assert line["message"] == "sent 12 bytes"
        assert line["log.level"] == "warning"
        assert line["log.logger"] == "httpx"
        assert line["peer"] == "ledger"
        assert line["service.name"] == "gateway"

    def test_exceptions_become_error_stack_trace(self, out: io.StringIO) -> None:
        configure_logging("gateway", stream=out, masker=False)
        try:
            raise ValueError("bad thing")
        except ValueError:
            structlog.get_logger().exception("failed")
            logging.getLogger("x").exception("failed too")
        a, b = lines(out)
        assert "ValueError: bad thing" in a["error.stack_trace"]
        assert "ValueError: bad thing" in b["error.stack_trace"]

    def test_level_filtering(self, out: io.StringIO) -> None:
        configure_logging("gateway", stream=out, level="WARNING", masker=False)
        structlog.get_logger().info("hidden")
        logging.getLogger("x").info("hidden")
        structlog.get_logger().warning("shown")
        assert [line["message"] for line in lines(out)] == ["shown"]

    def test_bad_level_is_rejected(self, out: io.StringIO) -> None:
        with pytest.raises(ValueError, match="log level"):
            configure_logging("gateway", stream=out, level="LOUD", masker=False)

    def test_lines_do_not_interleave_across_threads(self, out: io.StringIO) -> None:
        """Many threads, both APIs, one stream: every line is still one whole JSON object."""
        configure_logging("gateway", stream=out, masker=False)

        def work(n: int) -> None:
            for i in range(100):
                if i % 2:
                    structlog.get_logger().info("s", n=n, i=i, pad="x" * 200)
                else:
                    logging.getLogger("t").warning("l %d %d", n, i)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(lines(out)) == 600


class TestMasking:
    def test_masker_runs_before_rendering(self, out: io.StringIO) -> None:
        """Nothing unmasked reaches the stream: message, extra fields and stdlib lines."""
        configure_logging("gateway", stream=out, masker=redact_secrets)
        structlog.get_logger().info("token is secret-abc", header="Bearer secret-xyz")
        logging.getLogger("x").warning("stdlib secret-123")
        assert "secret" not in out.getvalue()
        a, b = lines(out)
        assert a["message"] == "[MASKED]" and a["header"] == "[MASKED]"
        assert b["message"] == "[MASKED]"

    def test_masker_sees_the_traceback(self, out: io.StringIO) -> None:
        """Exception text is formatted before masking, so a secret in a traceback is masked too."""
        configure_logging("gateway", stream=out, masker=redact_secrets)
        try:
            raise RuntimeError("password=secret-in-exception")
        except RuntimeError:
            structlog.get_logger().exception("oops")
        assert "secret-in-exception" not in out.getvalue()

    def test_forward_gets_the_masked_record(self, out: io.StringIO) -> None:
        """The shipping hook gets exactly the masked line that was written, never the raw one."""
        shipped: list[str] = []
        configure_logging("gateway", stream=out, masker=redact_secrets, forward=shipped.append)
        with bind_correlation("req-9"):
            structlog.get_logger().info("secret here")
            logging.getLogger("x").warning("stdlib secret")
        assert [line + "\n" for line in shipped] == out.getvalue().splitlines(keepends=True)
        first = json.loads(shipped[0])
        assert first["message"] == "[MASKED]"
        assert first["correlation_id"] == "req-9"
        assert "secret" not in "".join(shipped)

    def test_forward_failure_does_not_break_logging(self, out: io.StringIO) -> None:
        def broken(_: str) -> None:
            raise RuntimeError("buffer gone")

        configure_logging("gateway", stream=out, masker=False, forward=broken)
        structlog.get_logger().info("still logged")
        assert lines(out)[0]["message"] == "still logged"

    def test_failing_masker_leaks_nothing(self, out: io.StringIO, capsys) -> None:
        """If the masker raises on a stdlib record, neither the stream nor stderr gets the text."""

        def broken(_: object, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("masker bug")

        configure_logging("gateway", stream=out, masker=broken)
        logging.getLogger("x").warning("card %s", "4111111111111111")
        err = capsys.readouterr().err
        assert "4111111111111111" not in out.getvalue() + err
        assert "could not be written (RuntimeError)" in err

    def test_masking_module_is_found_lazily(self, out: io.StringIO, monkeypatch) -> None:
        """With masker=None, ramparts.masking.masking_processor is imported and used."""
        fake = types.ModuleType("ramparts.masking")
        fake.masking_processor = redact_secrets  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "ramparts.masking", fake)
        setup = configure_logging("gateway", stream=out)
        assert setup.masking
        structlog.get_logger().info("a secret")
        assert "secret" not in out.getvalue()

    def test_missing_masking_module_is_announced(self, out: io.StringIO, monkeypatch) -> None:
        """No ramparts.masking installed: logging works, says so once, and reports masking=False."""
        monkeypatch.setitem(sys.modules, "ramparts.masking", None)
        setup = configure_logging("gateway", stream=out)
        assert not setup.masking
        (line,) = lines(out)
        assert line["event.action"] == "logging.masking_unavailable"

    def test_broken_masking_module_fails_closed(self, tmp_path: Path, monkeypatch) -> None:
        """A masking module that fails to import stops configuration: no unmasked fallback."""
        package = tmp_path / "ramparts"
        package.mkdir()
        (package / "masking.py").write_text("import ramparts_dependency_that_is_not_there\n")
        monkeypatch.setattr(ramparts, "__path__", [str(package), *ramparts.__path__])
        monkeypatch.delitem(sys.modules, "ramparts.masking", raising=False)
        with pytest.raises(ModuleNotFoundError, match="ramparts_dependency_that_is_not_there"):
            resolve_masker(None)

    def test_explicit_false_disables(self) -> None:
        assert resolve_masker(False) is None
        assert resolve_masker(redact_secrets) is redact_secrets


class TestRealMasker:
    """With ramparts.masking installed, configure_logging picks it up and masks PII and tokens."""

    def test_masks_pii_and_keeps_ids(self, out: io.StringIO) -> None:
        pytest.importorskip("ramparts.masking")
        setup = configure_logging("payments", stream=out)
        assert setup.masking
        with bind_correlation("req-1", trace_id=TRACE, span_id=SPAN):
            structlog.get_logger().info("paid ada@example.com", card="4111 1111 1111 1111")
            logging.getLogger("x").warning("email %s", "bob@example.org")
        text = out.getvalue()
        for raw in ("ada@example.com", "bob@example.org", "4111 1111 1111 1111"):
            assert raw not in text
        for line in lines(out):
            assert (line["trace.id"], line["span.id"]) == (TRACE, SPAN)


class TestLogEventSink:
    def test_events_become_ecs_lines(self, out: io.StringIO) -> None:
        """EventEmitter -> LogEventSink: one line per decision, ECS event fields, event's ids."""
        from ramparts.events import EventEmitter
        from ramparts.telemetry.logging import LogEventSink

        configure_logging("gateway", stream=out, masker=False)
        emitter = EventEmitter([LogEventSink()], service="gateway")
        with bind_correlation("req-5", trace_id=TRACE):
            emitter.deny("jwt.rejected", reason="token expired", peer="203.0.113.9")
            emitter.allow("authz.allowed", reason="edge gateway->payments")
        deny, allow = lines(out)
        assert (deny["log.level"], allow["log.level"]) == ("warning", "info")
        assert deny["message"] == "jwt.rejected deny: token expired"
        assert (deny["event.action"], deny["event.outcome"]) == ("jwt.rejected", "failure")
        assert deny["event.reason"] == "token expired"
        assert (deny["transaction.id"], deny["trace.id"]) == ("req-5", TRACE)
        assert deny["ramparts.peer"] == "203.0.113.9"
        assert allow["event.outcome"] == "success"


def test_http_client_request_lines_are_not_forwarded() -> None:
    """httpx logs each request at INFO; shipped logs would then ship themselves forever."""
    import io
    import logging as stdlib_logging

    from ramparts.telemetry.logging import configure_logging, reset_logging

    forwarded: list[str] = []
    try:
        configure_logging("svc", stream=io.StringIO(), forward=forwarded.append)
        httpx_log = stdlib_logging.getLogger("httpx")
        httpx_log.info('HTTP Request: POST https://audit/v1/ingest "200 OK"')
        httpx_log.warning("connection pool full")
        stdlib_logging.getLogger("refbank").info("transfer settled")
    finally:
        reset_logging()
    assert not any("v1/ingest" in line for line in forwarded)
    assert any("connection pool full" in line for line in forwarded)
    assert any("transfer settled" in line for line in forwarded)
