"""Errors raised while loading a topology."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a topology file, located as precisely as we can."""

    file: str
    line: int | None  # 1-based; None when the field is absent from the file
    field: str  # dotted path, e.g. "services.payments.calls[1]"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class TopologyError(ValueError):
    """The topology file cannot be used. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"invalid topology ({len(self.problems)} {noun}):\n{lines}")
