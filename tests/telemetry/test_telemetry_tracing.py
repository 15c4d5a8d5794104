"""Tracing helpers with the SDK's in-memory exporter: parents, attributes, headers, context."""

from __future__ import annotations

import asyncio
import doctest
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from ramparts.telemetry import tracing
from ramparts.telemetry.context import bind_correlation, current_correlation
from ramparts.telemetry.traceparent import parse_traceparent
from ramparts.telemetry.tracing import (
    CORRELATION_ID_ATTRIBUTE,
    REQUEST_ID_HEADER,
    TRACEPARENT_REJECTED_ATTRIBUTE,
    OTLPNotInstalledError,
    client_span,
    httpx_event_hooks,
    outgoing_headers,
    server_span,
    setup_tracing,
    stage_span,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(spans: InMemorySpanExporter):
    provider = setup_tracing("gateway", exporters=[spans], batch=False)
    yield provider.get_tracer("test")
    provider.shutdown()


def test_doctest() -> None:
    assert doctest.testmod(tracing).failed == 0


class TestServerSpan:
    def test_continues_a_valid_incoming_trace(self, tracer, spans) -> None:
        """A valid traceparent makes the server span a child of the remote caller."""
        with server_span(tracer, "GET /accounts", correlation_id="req-1", traceparent=INCOMING):
            pass
        (span,) = spans.get_finished_spans()
        assert span.kind is SpanKind.SERVER
        assert f"{span.context.trace_id:032x}" == TRACE
        assert f"{span.parent.span_id:016x}" == "00f067aa0ba902b7"
        assert span.parent.is_remote
        assert span.attributes[CORRELATION_ID_ATTRIBUTE] == "req-1"
        assert TRACEPARENT_REJECTED_ATTRIBUTE not in span.attributes
        assert span.resource.attributes["service.name"] == "gateway"

    def test_malformed_traceparent_starts_a_new_trace(self, tracer, spans) -> None:
        """A malformed header is not half-trusted: new root trace, marked as rejected."""
        with server_span(tracer, "GET /", correlation_id="req-2", traceparent=INCOMING.upper()):
            pass
        (span,) = spans.get_finished_spans()
        assert span.parent is None
        assert f"{span.context.trace_id:032x}" != TRACE
        assert span.attributes[TRACEPARENT_REJECTED_ATTRIBUTE] is True

    def test_unsampled_parent_is_honoured(self, tracer, spans) -> None:
        """Flags 00 from the caller: the span is neither recorded nor exported (parent-based)."""
        with server_span(tracer, "GET /", traceparent=INCOMING[:-2] + "00") as span:
            assert not span.is_recording()
            assert outgoing_headers()["traceparent"].endswith("-00")
        assert spans.get_finished_spans() == ()

    def test_binds_correlation_context(self, tracer) -> None:
        """Inside the span the correlation context carries its trace and span ids; after, none."""
        with server_span(tracer, "GET /", correlation_id="req-3", traceparent=INCOMING) as span:
            ctx = current_correlation()
            assert ctx is not None
            assert ctx.correlation_id == "req-3"
            assert ctx.trace_id == TRACE
            assert ctx.span_id == f"{span.get_span_context().span_id:016x}"
        assert current_correlation() is None

    def test_generates_correlation_id_when_none(self, tracer, spans) -> None:
        with server_span(tracer, "GET /"):
            cid = current_correlation().correlation_id
        assert len(cid) == 32
        assert spans.get_finished_spans()[0].attributes[CORRELATION_ID_ATTRIBUTE] == cid


class TestChildSpans:
    def test_stages_and_calls_nest_under_the_request(self, tracer, spans) -> None:
        """Stage spans and client spans are children of the server span and keep its correlation."""
        with server_span(tracer, "POST /payments", correlation_id="req-4"):
            with stage_span(tracer, "waf"):
                pass
            with stage_span(tracer, "jwt", attributes={"jwt.kid": "k1"}):
                pass
            with client_span(tracer, "POST payments", peer="payments"):
                pass
        waf, jwt, call, root = spans.get_finished_spans()
        assert [s.name for s in (waf, jwt, call, root)] == [
            "waf",
            "jwt",
            "POST payments",
            "POST /payments",
        ]
        for child in (waf, jwt, call):
            assert child.parent.span_id == root.context.span_id
            assert child.context.trace_id == root.context.trace_id
            assert child.attributes[CORRELATION_ID_ATTRIBUTE] == "req-4"
        assert call.kind is SpanKind.CLIENT
        assert call.attributes["peer.service"] == "payments"
        assert jwt.attributes["jwt.kid"] == "k1"

    def test_exception_marks_span_as_error(self, tracer, spans) -> None:
        with pytest.raises(RuntimeError), stage_span(tracer, "authz"):
            raise RuntimeError("denied")
        (span,) = spans.get_finished_spans()
        assert not span.status.is_ok
        assert span.events[0].name == "exception"


class TestOutgoingHeaders:
    def test_headers_point_at_the_client_span(self, tracer, spans) -> None:
        """traceparent's parent-id is the CLIENT span's id, so the callee nests under the call."""
        with (
            server_span(tracer, "GET /", correlation_id="req-5", traceparent=INCOMING),
            client_span(tracer, "GET ledger") as call,
        ):
            headers = outgoing_headers({"Accept": "application/json"})
            call_id = f"{call.get_span_context().span_id:016x}"
        tp = parse_traceparent(headers["traceparent"])
        assert (tp.trace_id, tp.parent_id, tp.sampled) == (TRACE, call_id, True)
        assert headers[REQUEST_ID_HEADER] == "req-5"
        assert headers["Accept"] == "application/json"

    def test_nothing_outside_a_request(self) -> None:
        """No context, no headers: nothing made up."""
        assert outgoing_headers() == {}

    def test_from_correlation_context_without_a_span(self) -> None:
        with bind_correlation("req-6", trace_id=TRACE, span_id="00f067aa0ba902b7"):
            assert outgoing_headers() == {REQUEST_ID_HEADER: "req-6", "traceparent": INCOMING}

    def test_malformed_bound_ids_propagate_no_traceparent(self) -> None:
        with bind_correlation("req-7", trace_id="nothex", span_id="x"):
            assert outgoing_headers({"traceparent": "stale"}) == {REQUEST_ID_HEADER: "req-7"}

    def test_httpx_hook_injects_on_the_wire(self, tracer) -> None:
        """A real request through httpx.AsyncClient carries both headers to a real server."""
        seen: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen.update({k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"

        async def call() -> str:
            async with httpx.AsyncClient(event_hooks=httpx_event_hooks()) as client:
                with (
                    server_span(tracer, "GET /", correlation_id="req-8", traceparent=INCOMING),
                    client_span(tracer, "GET ledger") as span,
                ):
                    await client.get(url)
                    return f"{span.get_span_context().span_id:016x}"

        try:
            span_id = asyncio.run(call())
        finally:
            server.shutdown()
            server.server_close()
        assert seen["x-request-id"] == "req-8"
        assert seen["traceparent"] == f"00-{TRACE}-{span_id}-01"


class TestSetup:
    def test_nothing_exported_by_default(self) -> None:
        """No exporter configured: spans are real (ids for logs) but have nowhere to go."""
        provider = setup_tracing("svc")
        assert provider._active_span_processor._span_processors == ()
        with server_span(provider.get_tracer("t"), "GET /") as span:
            assert span.get_span_context().is_valid

    def test_otlp_without_package_fails_clearly(self) -> None:
        """An OTLP endpoint without the optional package is a configuration error, not silence."""
        try:
            import opentelemetry.exporter.otlp.proto.http  # noqa: F401
        except ModuleNotFoundError:
            with pytest.raises(OTLPNotInstalledError, match="ramparts\\[otlp\\]"):
                setup_tracing("svc", otlp_endpoint="http://127.0.0.1:4318/v1/traces")
        else:  # pragma: no cover
            provider = setup_tracing("svc", otlp_endpoint="http://127.0.0.1:4318/v1/traces")
            assert len(provider._active_span_processor._span_processors) == 1
            provider.shutdown()

    def test_service_name_required(self) -> None:
        with pytest.raises(ValueError, match="service name"):
            setup_tracing("")
