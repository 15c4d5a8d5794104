"""Macro expansion: ``%{tx.score}``, ``%{MATCHED_VAR}``, ``%{REQUEST_HEADERS.host}``.

A macro string is split once at load into literal text and variable
references, so expanding it per request is a join.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ramparts.waf._transaction import Transaction

__all__ = ["Macro"]

_REF = re.compile(r"%\{([^}]+)\}")


class Macro:
    __slots__ = ("dynamic", "parts", "text")

    def __init__(self, text: str, parts: list[str | tuple[str, str | None]]) -> None:
        self.text = text
        self.parts = parts
        self.dynamic = any(not isinstance(p, str) for p in parts)

    @classmethod
    def parse(cls, text: str) -> Macro:
        parts: list[str | tuple[str, str | None]] = []
        pos = 0
        for m in _REF.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            ref = m.group(1).strip()
            coll, sep, key = ref.partition(".")
            if not sep:
                coll, sep, key = ref.partition(":")
            parts.append((coll.upper(), key if sep else None))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return cls(text, parts)

    def expand(self, tx: Transaction | None) -> str:
        if not self.dynamic:
            return "".join(p for p in self.parts if isinstance(p, str))
        assert tx is not None
        out: list[str] = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                out.append(tx.macro_value(p[0], p[1]))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Macro({self.text!r})"
