"""A token that never shows itself: masked in repr and str, refused by pickle."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NoReturn

__all__ = ["Secret"]

_MASK = "**********"


class Secret:
    """An API token held in memory; ``reveal()`` is the only way to read it.

    >>> token = Secret("s3cr3t-value")
    >>> token
    Secret('**********')
    >>> f"{token}"
    '**********'
    >>> token.reveal()
    's3cr3t-value'

    Tokens go into HTTP headers, so they must be visible ASCII with no spaces
    (a CR or LF would let a token inject a header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("secret is empty")
        if not all("!" <= ch <= "~" for ch in value):
            raise ValueError("secret must be visible ASCII without spaces or control characters")
        self._value = value

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Secret:
        """Read a token from a regular file that only its owner can read (0600 or 0400).

        One trailing newline is removed. The error names the path, never the contents.
        """
        target = Path(path)
        info = target.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"secret file {target} is not a regular file")
        if info.st_mode & 0o077:
            raise ValueError(
                f"secret file {target} is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it"
            )
        text = target.read_text(encoding="ascii", errors="strict")
        try:
            return cls(text.removesuffix("\n"))
        except ValueError as exc:
            raise ValueError(f"secret file {target}: {exc}") from None

    def reveal(self) -> str:
        """The token itself; call it only where it goes onto the wire."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
