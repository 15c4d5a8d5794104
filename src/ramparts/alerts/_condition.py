"""The Sigma ``condition`` expression: ``and``, ``or``, ``not``, parentheses,
``1 of sel*``, ``all of sel*``, ``1 of them``, ``all of them``.

``not`` binds tighter than ``and``, which binds tighter than ``or``
(sigma-specification, "Condition"). ``them`` leaves out identifiers that start
with an underscore. A pattern that matches no selection is an error, as is an
unknown identifier; both are raised as ValueError for the loader to locate.

The legacy aggregation after a pipe (``sel | count(field) by group > N``) is
split off by :func:`split_aggregation` and parsed by :func:`parse_aggregation`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z0-9_*?.\-]+)|(\S))")
_KEYWORDS = frozenset({"and", "or", "not", "of", "them"})


def all_of(parts: list[Matcher]) -> Matcher:
    """A matcher true when every part is (short-circuit, no generator: this is the hot path)."""
    if len(parts) == 1:
        return parts[0]

    def match(r: Mapping[str, Any]) -> bool:
        for p in parts:  # noqa: SIM110 - a loop, not a generator: the hot path
            if not p(r):
                return False
        return True

    return match


def any_of(parts: list[Matcher]) -> Matcher:
    """A matcher true when some part is."""
    if len(parts) == 1:
        return parts[0]

    def match(r: Mapping[str, Any]) -> bool:
        for p in parts:  # noqa: SIM110 - a loop, not a generator: the hot path
            if p(r):
                return True
        return False

    return match


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        if m.group(4):
            raise ValueError(f"unexpected character {m.group(4)!r} in condition")
        out.append(m.group(1) or m.group(2) or m.group(3))
        pos = m.end()
    return out


@dataclass(frozen=True, slots=True)
class TypeGate:
    """Event types a matcher can possibly accept: exact names or prefixes (lower-case).

    Derived from ``type`` fields in selections, so the engine can skip rules
    that cannot match an event's type without evaluating them. ``None`` in
    place of a gate means "any type".
    """

    exact: frozenset[str]
    prefixes: tuple[str, ...] = ()

    def admits(self, type_: str) -> bool:
        t = type_.lower()
        return t in self.exact or t.startswith(self.prefixes)

    def union(self, other: TypeGate) -> TypeGate:
        return TypeGate(self.exact | other.exact, self.prefixes + other.prefixes)


Gate = TypeGate | None
Node = tuple[Matcher, Gate]


def gate_all(gates: list[Gate]) -> Gate:
    """All must match: any one constraining gate is a sound gate for the whole."""
    return next((g for g in gates if g is not None), None)


def gate_any(gates: list[Gate]) -> Gate:
    """One must match: constrained only if every branch is."""
    if not gates or any(g is None for g in gates):
        return None
    out = gates[0]
    assert out is not None
    for g in gates[1:]:
        assert g is not None
        out = out.union(g)
    return out


class _Parser:
    def __init__(self, text: str, selections: Mapping[str, Node]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.selections = selections

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ValueError("condition ends too early")
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise ValueError("condition is empty")
        node = self.or_expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in condition")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.peek() == "or":
            self.take()
            parts.append(self.and_expr())
        return any_of([m for m, _ in parts]), gate_any([g for _, g in parts])

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while self.peek() == "and":
            self.take()
            parts.append(self.not_expr())
        return all_of([m for m, _ in parts]), gate_all([g for _, g in parts])

    def not_expr(self) -> Node:
        if self.peek() == "not":
            self.take()
            inner, _ = self.not_expr()
            return (lambda r: not inner(r)), None
        return self.primary()

    def primary(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.or_expr()
            if self.take() != ")":
                raise ValueError("missing ')' in condition")
            return node
        if tok in ("1", "all") and self.peek() == "of":
            self.take()
            return self.quantified(tok, self.take())
        if tok.isdigit() and self.peek() == "of":
            raise ValueError(f"'{tok} of' is not Sigma: use '1 of' or 'all of'")
        if tok in _KEYWORDS or tok == ")":
            raise ValueError(f"unexpected {tok!r} in condition")
        if "*" in tok or "?" in tok:
            raise ValueError(f"wildcard {tok!r} is only allowed after '1 of' or 'all of'")
        if tok not in self.selections:
            raise ValueError(f"condition names {tok!r}, which is not a selection in detection")
        return self.selections[tok]

    def quantified(self, quantifier: str, target: str) -> Node:
        if target == "them":
            names = [n for n in self.selections if not n.startswith("_")]
        elif target in _KEYWORDS or target in "()":
            raise ValueError(f"'{quantifier} of' needs a selection pattern or 'them'")
        else:
            names = [n for n in self.selections if fnmatch.fnmatchcase(n, target)]
        if not names:
            raise ValueError(f"'{quantifier} of {target}' matches no selection")
        parts = [self.selections[n] for n in names]
        if quantifier == "all":
            return all_of([m for m, _ in parts]), gate_all([g for _, g in parts])
        return any_of([m for m, _ in parts]), gate_any([g for _, g in parts])


def compile_condition(text: str, selections: Mapping[str, Node]) -> Node:
    """A matcher (and its type gate) for a Sigma condition over named selections."""
    return _Parser(text, selections).parse()


def split_aggregation(text: str) -> tuple[str, str | None]:
    """``'sel | count() > 5'`` -> ``('sel', 'count() > 5')``; no pipe -> ``(text, None)``."""
    head, sep, tail = text.partition("|")
    return (head.strip(), tail.strip()) if sep else (text.strip(), None)


@dataclass(frozen=True, slots=True)
class Aggregation:
    """The legacy ``count([field]) [by a, b] op N`` after the condition's pipe."""

    field: str | None
    group_by: tuple[str, ...]
    op: str
    threshold: int


_AGG = re.compile(
    r"^count\(\s*(?P<field>[\w.\-]*)\s*\)"
    r"(?:\s+by\s+(?P<by>[\w.\-]+(?:\s*,\s*[\w.\-]+)*))?"
    r"\s*(?P<op><=|>=|==|<|>|=)\s*(?P<n>\d+)$"
)
# The legacy operators, mapped to the correlation spec's names.
LEGACY_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "eq", "==": "eq"}


def parse_aggregation(text: str) -> Aggregation:
    """Parse the part after the pipe; only ``count`` is supported."""
    m = _AGG.match(text.strip())
    if m is None:
        word = text.strip().split("(")[0].split()[0] if text.strip() else ""
        if word in ("min", "max", "avg", "sum", "near"):
            raise ValueError(f"aggregation {word!r} is not supported (only count)")
        raise ValueError(f"cannot parse aggregation {text!r}: want 'count([field]) [by f] > N'")
    by = tuple(p.strip() for p in m.group("by").split(",")) if m.group("by") else ()
    return Aggregation(m.group("field") or None, by, LEGACY_OPS[m.group("op")], int(m.group("n")))
