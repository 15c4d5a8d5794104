"""Masking where logs are made: a structlog processor and a stdlib ``logging.Filter``."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Final

from ramparts.masking._masker import Masker

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class MaskingProcessor:
    """A structlog processor that masks every value of the event dict, nested ones too.

    Put it after the processors that add text (``format_exc_info``,
    ``StackInfoRenderer``) and before the renderer, so nothing unmasked is
    rendered::

        structlog.configure(processors=[
            structlog.processors.format_exc_info,
            MaskingProcessor(Masker()),
            structlog.processors.JSONRenderer(),
        ])
    """

    __slots__ = ("masker",)

    def __init__(self, masker: Masker | None = None) -> None:
        self.masker = masker if masker is not None else Masker()

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        masked: MutableMapping[str, Any] = self.masker.mask_record(event_dict)
        return masked

    def __repr__(self) -> str:
        return f"MaskingProcessor({self.masker!r})"


# The processor ``ramparts.telemetry`` puts in every service's chain.
masking_processor: Final = MaskingProcessor()


class MaskingFilter(logging.Filter):
    """A ``logging.Filter`` that masks the message, traceback, stack and extras in place.

    Attach it to **handlers** (``handler.addFilter(MaskingFilter())``): a filter
    on a logger does not see records propagated from its children. The message
    is formatted here (``record.args`` is cleared) so arguments cannot bypass
    masking, and the traceback is formatted and masked here and ``exc_info``
    dropped, so no later formatter renders the raw exception. The filter never
    drops a record.
    """

    def __init__(self, masker: Masker | None = None, name: str = "") -> None:
        super().__init__(name)
        self.masker = masker if masker is not None else Masker()

    def filter(self, record: logging.LogRecord) -> bool:
        mask = self.masker.mask_text
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Arguments that do not fit the format: keep both, masked, rather than
            # let logging print the raw arguments in its error report.
            message = f"{record.msg!s} {record.args!r}"
        record.msg = mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_ATTRS:
                # Masked under its own name (the name is context); the
                # attribute keeps its name even if the name itself is masked.
                (masked,) = self.masker.mask_record({key: value}).values()
                record.__dict__[key] = masked
        return True
