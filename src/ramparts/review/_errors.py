"""What can go wrong while reading a deployment, located by file and line.

A file that cannot be read is reported and skipped; the scan goes on with the
others, and the command still exits non-zero so CI never passes on a partial
read.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScanError:
    """One input we could not use: which file, where in it, and why."""

    file: str
    line: int | None  # 1-based
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"
