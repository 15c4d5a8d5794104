"""A secret value that never shows itself by accident.

``repr``, ``str`` and formatting all print ``**********``; the value comes out
only through :meth:`Secret.reveal`, so a secret reaching a log line, an
exception message or a debugger's repr shows the mask instead.
Equality compares in constant time; a Secret cannot be pickled.
"""

from __future__ import annotations

import hmac

MASK = "**********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, got {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Pass it straight to the API that needs it; never log it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
