"""Errors the WAF raises at load time.

A rule set that uses something the engine cannot evaluate is refused whole:
silently skipping a directive would leave a hole the operator believes is
covered, so every load error names the file and line it comes from.
"""

from __future__ import annotations

__all__ = ["WafLoadError"]


class WafLoadError(ValueError):
    """A SecLang file could not be loaded; ``file`` and ``line`` say where."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message
