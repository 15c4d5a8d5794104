"""OpenTelemetry tracing: SDK setup, spans around gateway stages and service calls.

>>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
>>> spans = InMemorySpanExporter()
>>> provider = setup_tracing("gateway", exporters=[spans], batch=False)
>>> tracer = provider.get_tracer("ramparts")
>>> with server_span(tracer, "GET /accounts", correlation_id="req-1") as span:
...     with stage_span(tracer, "waf"):
...         headers = outgoing_headers()
>>> headers["X-Request-ID"]
'req-1'
>>> [s.name for s in spans.get_finished_spans()]
['waf', 'GET /accounts']

Nothing is exported unless an exporter is passed or an OTLP endpoint is
configured: an un-configured process still creates real spans (so trace ids
reach logs and outgoing headers) and drops them when they end.

Every span carries the correlation ID as the attribute
:data:`CORRELATION_ID_ATTRIBUTE`, and every helper binds the span's trace and
span ids into :mod:`ramparts.telemetry.context`, which is where logs and
security events read them from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from ramparts.telemetry.context import bind_correlation, current_correlation, new_correlation_id
from ramparts.telemetry.traceparent import (
    TRACEPARENT_HEADER,
    InvalidTraceparentError,
    TraceParent,
    format_traceparent,
    parse_traceparent,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CORRELATION_ID_ATTRIBUTE",
    "REQUEST_ID_HEADER",
    "TRACEPARENT_REJECTED_ATTRIBUTE",
    "OTLPNotInstalledError",
    "client_span",
    "httpx_event_hooks",
    "outgoing_headers",
    "server_span",
    "setup_tracing",
    "stage_span",
]

REQUEST_ID_HEADER = "X-Request-ID"
CORRELATION_ID_ATTRIBUTE = "ramparts.correlation_id"
TRACEPARENT_REJECTED_ATTRIBUTE = "ramparts.traceparent_rejected"
_INSTRUMENTATION_NAME = "ramparts"


class OTLPNotInstalledError(RuntimeError):
    """An OTLP endpoint was configured but the optional exporter package is missing."""


def setup_tracing(
    service: str,
    *,
    exporters: Iterable[SpanExporter] = (),
    otlp_endpoint: str | None = None,
    batch: bool = True,
    set_global: bool = False,
) -> TracerProvider:
    """Build a tracer provider for ``service``; export only to what is configured.

    Args:
        service: the ``service.name`` resource attribute.
        exporters: span exporters to attach (tests pass an ``InMemorySpanExporter``).
        otlp_endpoint: an OTLP/HTTP traces URL (``http://collector:4318/v1/traces``).
            Needs the optional ``opentelemetry-exporter-otlp-proto-http`` package
            (``pip install ramparts[otlp]``).
        batch: export from a background thread (``BatchSpanProcessor``); False
            exports synchronously as each span ends, which tests want.
        set_global: also install it as the process-wide provider. OpenTelemetry
            allows that once per process, so libraries and tests leave it False.

    Raises:
        OTLPNotInstalledError: ``otlp_endpoint`` is set and the exporter is missing.
        ValueError: ``service`` is empty.
    """
    if not service:
        raise ValueError("setup_tracing needs a service name")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    targets = list(exporters)
    if otlp_endpoint:
        targets.append(_otlp_exporter(otlp_endpoint))
    for exporter in targets:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter(endpoint: str) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
    except ModuleNotFoundError as exc:
        raise OTLPNotInstalledError(
            "tracing.otlp_endpoint is set but opentelemetry-exporter-otlp-proto-http is not "
            "installed; install ramparts[otlp] or remove the endpoint"
        ) from exc
    return OTLPSpanExporter(endpoint=endpoint)


def _remote_parent(traceparent: str | None) -> tuple[Context | None, bool]:
    """The OTel context for an incoming ``traceparent``, and whether one was rejected."""
    if traceparent is None:
        return None, False
    try:
        tp = parse_traceparent(traceparent)
    except InvalidTraceparentError:
        return None, True
    parent = SpanContext(
        trace_id=int(tp.trace_id, 16),
        span_id=int(tp.parent_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(tp.flags),
    )
    return trace.set_span_in_context(NonRecordingSpan(parent)), False


@contextlib.contextmanager
def _bound_span(span: trace.Span, correlation_id: str) -> Iterator[trace.Span]:
    """Make ``span`` current and bind its ids with ``correlation_id`` into the context."""
    span.set_attribute(CORRELATION_ID_ATTRIBUTE, correlation_id)
    sc = span.get_span_context()
    with (
        trace.use_span(span, end_on_exit=True),
        bind_correlation(
            correlation_id,
            trace_id=f"{sc.trace_id:032x}" if sc.is_valid else None,
            span_id=f"{sc.span_id:016x}" if sc.is_valid else None,
        ),
    ):
        yield span


def _correlation_id() -> str:
    ctx = current_correlation()
    return ctx.correlation_id if ctx is not None else new_correlation_id()


@contextlib.contextmanager
def server_span(
    tracer: trace.Tracer,
    name: str,
    *,
    correlation_id: str | None = None,
    traceparent: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[trace.Span]:
    """A SERVER span for one incoming request, continuing the caller's trace if valid.

    A malformed ``traceparent`` starts a new trace (it is never half-trusted),
    and the span records that with :data:`TRACEPARENT_REJECTED_ATTRIBUTE`.
    """
    parent, rejected = _remote_parent(traceparent)
    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    if rejected:
        span.set_attribute(TRACEPARENT_REJECTED_ATTRIBUTE, True)
    with _bound_span(span, correlation_id or _correlation_id()) as current:
        yield current


@contextlib.contextmanager
def stage_span(
    tracer: trace.Tracer,
    stage: str,
    *,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[trace.Span]:
    """An INTERNAL child span around one gateway stage (``waf``, ``jwt``, ``rate_limit``)."""
    span = tracer.start_span(stage, kind=SpanKind.INTERNAL, attributes=attributes)
    with _bound_span(span, _correlation_id()) as current:
        yield current


@contextlib.contextmanager
def client_span(
    tracer: trace.Tracer,
    name: str,
    *,
    peer: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[trace.Span]:
    """A CLIENT span around one outgoing service call; headers made inside it point at it."""
    span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
    if peer is not None:
        span.set_attribute("peer.service", peer)
    with _bound_span(span, _correlation_id()) as current:
        yield current


def outgoing_headers(
    headers: MutableMapping[str, str] | None = None,
) -> MutableMapping[str, str]:
    """Set ``X-Request-ID`` and ``traceparent`` for an outgoing call; returns ``headers``.

    The ids come from the current span if one is active and valid, else from the
    bound correlation context. A header is left out when there is nothing to
    propagate (outside any request), never filled with a made-up value.
    """
    out: MutableMapping[str, str] = {} if headers is None else headers
    ctx = current_correlation()
    if ctx is not None:
        out[REQUEST_ID_HEADER] = ctx.correlation_id
    sc = trace.get_current_span().get_span_context()
    tp: TraceParent | None = None
    if sc.is_valid:
        tp = TraceParent(f"{sc.trace_id:032x}", f"{sc.span_id:016x}", int(sc.trace_flags))
    elif ctx is not None and ctx.trace_id and ctx.span_id:
        tp = TraceParent(ctx.trace_id, ctx.span_id)
    if tp is not None:
        try:
            out[TRACEPARENT_HEADER] = format_traceparent(tp)
        except InvalidTraceparentError:
            # A correlation context bound by hand with a malformed id: propagate nothing
            # rather than a header the next hop would have to reject.
            out.pop(TRACEPARENT_HEADER, None)
    return out


def httpx_event_hooks() -> dict[str, list]:
    """``event_hooks`` for an ``httpx.AsyncClient`` that add the propagation headers."""

    async def _inject(request: httpx.Request) -> None:
        for key, value in outgoing_headers().items():
            request.headers[key] = value

    return {"request": [_inject]}
