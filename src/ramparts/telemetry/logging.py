"""Structured logging: one JSON line per record, ECS field names, masked before rendering.

>>> import io, json, structlog
>>> out = io.StringIO()
>>> _ = configure_logging("ledger", level="INFO", stream=out, masker=False)
>>> structlog.get_logger().info("posted", amount=10)
>>> line = json.loads(out.getvalue())
>>> line["message"], line["log.level"], line["service.name"], line["amount"]
('posted', 'info', 'ledger', 10)

Both structlog loggers and stdlib ``logging`` loggers (uvicorn, httpx, ...) go
through the same processor chain and the same writer, so every line in a
process has the same shape and passes the same masking step:

    merge contextvars -> level -> @timestamp -> correlation/trace ids ->
    service.name -> exception text -> ECS names -> MASKING -> JSON (-> forward)

Masking runs after everything that adds text to the record (the message, the
formatted traceback) and before anything leaves it (the renderer, whose line
is also what the ``forward`` hook hands the audit shipper), so nothing unmasked
is ever rendered or shipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from ramparts.telemetry import ecs
from ramparts.telemetry.context import current_correlation

if TYPE_CHECKING:
    from ramparts.events import SecurityEvent

__all__ = [
    "LogEventSink",
    "LoggingSetup",
    "configure_logging",
    "reset_logging",
    "resolve_masker",
]

_STDLIB_EXTRA_SKIP = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


@dataclass(frozen=True, slots=True)
class LoggingSetup:
    """What :func:`configure_logging` installed; ``masking`` says whether a masker runs."""

    service: str
    level: int
    masking: bool
    handler: logging.Handler


def resolve_masker(masker: Processor | Literal[False] | None) -> Processor | None:
    """The masking processor to use: the one given, ``ramparts.masking``'s, or none.

    ``None`` means "use ``ramparts.masking.masking_processor`` if that module is
    installed". It is imported lazily so telemetry does not depend on masking at
    import time. Only the absence of ``ramparts.masking`` itself is tolerated: an
    import error *inside* it propagates, because a broken masker must stop the
    process rather than let it log unmasked. ``False`` turns masking off (benchmarks
    and tests of this module only).
    """
    if masker is False:
        return None
    if masker is not None:
        return masker
    try:
        from ramparts.masking import masking_processor  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name in ("ramparts.masking", "ramparts"):
            return None
        raise
    return masking_processor


class _LineWriter:
    """The single place lines are written: one lock, one stream, one write per line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    # structlog calls the wrapped logger's method named after the level.
    def msg(self, message: str) -> None:
        self.write_line(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    if ecs.TIMESTAMP not in event_dict:
        event_dict[ecs.TIMESTAMP] = ecs.ecs_timestamp(time.time())
    return event_dict


def _add_correlation(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in ecs.correlation_fields(current_correlation()).items():
        event_dict.setdefault(key, value)
    return event_dict


def _service_adder(service: str) -> Processor:
    def _add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault(ecs.SERVICE_NAME, service)
        return event_dict

    return _add_service


# structlog's own key -> ECS key. ``event_<x>`` keyword arguments become ``event.<x>``
# (structlog reserves the bare ``event`` key for the message).
_RENAMES = {
    "event": ecs.MESSAGE,
    "level": ecs.LOG_LEVEL,
    "logger": ecs.LOG_LOGGER,
    "exception": ecs.ERROR_STACK_TRACE,
}


def _to_ecs(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for old, new in _RENAMES.items():
        if old in event_dict:
            event_dict[new] = event_dict.pop(old)
    for key in [k for k in event_dict if k[:6] == "event_"]:
        event_dict["event." + key[6:]] = event_dict.pop(key)
    return event_dict


def _render(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
    return json.dumps(event_dict, default=str, separators=(",", ":"))


def _forwarding_renderer(forward: Callable[[str], object]) -> Processor:
    def _render_and_forward(_: WrappedLogger, __: str, event_dict: EventDict) -> str:
        line = json.dumps(event_dict, default=str, separators=(",", ":"))
        # A shipping failure must not take the caller down; the line is still written
        # locally, and the shipper counts what it drops.
        with contextlib.suppress(Exception):
            forward(line)
        return line

    return _render_and_forward


class _StdlibHandler(logging.Handler):
    """Sends stdlib log records through the structlog chain, to the same writer."""

    def __init__(self, chain: list[Processor], writer: _LineWriter) -> None:
        super().__init__()
        self._chain = chain
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method = record.levelname.lower()
            event_dict: MutableMapping[str, Any] = {
                "event": record.getMessage(),
                "level": method,
                "logger": record.name,
                ecs.TIMESTAMP: ecs.ecs_timestamp(record.created),
            }
            fields = record.__dict__
            for key in fields.keys() - _STDLIB_EXTRA_SKIP:  # what came in through extra=
                if not key.startswith("_"):
                    event_dict.setdefault(key, fields[key])
            if record.exc_info:
                event_dict["exc_info"] = record.exc_info
            rendered: Any = event_dict
            for processor in self._chain:
                rendered = processor(None, method, rendered)
            self._writer.write_line(rendered)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failed record without its contents.

        The stdlib default prints the raw message and arguments to stderr, which
        would bypass masking exactly when the masker itself failed.
        """
        if logging.raiseExceptions:
            exc = sys.exc_info()[1]
            sys.stderr.write(
                f"ramparts logging: a record from logger {record.name!r} could not be "
                f"written ({type(exc).__name__})\n"
            )


QUIET_LIBRARIES = ("httpx", "httpcore", "hpack")


def configure_logging(
    service: str,
    *,
    level: int | str = "INFO",
    stream: IO[str] | None = None,
    masker: Processor | Literal[False] | None = None,
    forward: Callable[[str], object] | None = None,
) -> LoggingSetup:
    """Configure structlog and stdlib logging to write masked ECS JSON lines.

    Args:
        service: ``service.name`` on every line.
        level: minimum level, a name (``"INFO"``) or a ``logging`` number.
        stream: where lines go; standard error by default.
        masker: a structlog processor that redacts secrets and PII in place, run
            before rendering. ``None`` uses ``ramparts.masking.masking_processor``
            if installed (see :func:`resolve_masker`); ``False`` disables masking.
        forward: called with each rendered (masked) JSON line, without the newline;
            pass ``Shipper.submit_json`` to ship logs to the audit log.

    Calling it again replaces the previous configuration. Loggers already
    obtained and cached by structlog keep writing to the old stream, so get
    loggers after configuring.
    """
    if not service:
        raise ValueError("configure_logging needs a service name")
    numeric = logging.getLevelNamesMapping().get(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level must be a logging level name or number, got {level!r}")
    masking = resolve_masker(masker)
    writer = _LineWriter(stream if stream is not None else sys.stderr)

    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_timestamp,
        _add_correlation,
        _service_adder(service),
        structlog.processors.format_exc_info,
        _to_ecs,
    ]
    if masking is not None:
        chain.append(masking)
    chain.append(_render if forward is None else _forwarding_renderer(forward))

    structlog.configure(
        processors=chain,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_: writer,
        cache_logger_on_first_use=True,
    )

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    handler = _StdlibHandler(chain, writer)
    root.addHandler(handler)
    root.setLevel(numeric)
    # HTTP client libraries log every request at INFO. That is noise, and worse with
    # `forward`: each batch the shipper sends would log a line that ships another batch.
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    if masking is None and masker is None:
        structlog.get_logger("ramparts.telemetry").warning(
            "log masking unavailable: ramparts.masking is not installed",
            event_action="logging.masking_unavailable",
        )
    return LoggingSetup(service, numeric, masking is not None, handler)


def reset_logging() -> None:
    """Undo :func:`configure_logging`: structlog's defaults, our root handler removed."""
    structlog.reset_defaults()
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.setLevel(logging.WARNING)
    for chatty in QUIET_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.NOTSET)


class LogEventSink:
    """An ``EventSink`` that also writes each security event as one ECS log line.

    Deny decisions log at WARNING, allows at INFO, with ``event.action``,
    ``event.outcome``, ``event.reason`` and the event's own time and correlation
    ids, so ``grep`` on a service's log shows its decisions. The line passes the
    same masking as every other line.
    """

    def __init__(self, logger: Any = None) -> None:
        self._log = logger if logger is not None else structlog.get_logger("ramparts.events")

    def write(self, event: SecurityEvent) -> None:
        fields = ecs.security_event_to_ecs(event.to_dict())
        message = fields.pop(ecs.MESSAGE)
        method = self._log.warning if fields["event.outcome"] == "failure" else self._log.info
        method(message, **fields)
