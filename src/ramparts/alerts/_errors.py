"""Errors raised by the alert engine.

::

    AlertsError
     ├── RuleError       a rule file that cannot be loaded (names file and line)
     └── SinkError       a sink that could not deliver (the worker retries or drops)
          └── RetryableSinkError   worth another try: 5xx, 429, timeout, refused
"""

from __future__ import annotations


class AlertsError(Exception):
    """Base class for errors from :mod:`ramparts.alerts`."""


class RuleError(AlertsError):
    """A rule that cannot be loaded: ``str(exc)`` is ``file:line: message``."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class SinkError(AlertsError):
    """A sink refused or failed a delivery; not worth retrying (e.g. HTTP 400)."""


class RetryableSinkError(SinkError):
    """A delivery that may succeed later: 5xx, 429, a timeout or a refused connection."""
