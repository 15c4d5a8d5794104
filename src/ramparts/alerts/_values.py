"""Field look-up and Sigma value matching (the ``field|modifier: value`` part of a selection).

Sigma semantics followed here (sigma-specification, "Detection"):

* plain string values match the whole field, case-insensitively, with ``*``
  (any run) and ``?`` (one character) as wildcards and ``\\`` as escape;
* ``|contains``, ``|startswith``, ``|endswith`` add the implied wildcards;
* a list of values is OR, or AND with ``|all``;
* ``|re`` is a case-sensitive search (``|re|i``, ``|re|m``, ``|re|s`` set flags);
* ``|cidr`` matches an IP address in a network; ``|exists`` tests presence;
* ``|gt``, ``|gte``, ``|lt``, ``|lte`` compare numbers; ``|cased`` makes strings
  case-sensitive;
* ``null`` matches a missing field or a JSON null (``''`` matches the empty string).

A field that holds a list matches when any element matches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Predicate = Callable[[Any], bool]

MISSING: Final = object()

SUPPORTED_MODIFIERS: Final = frozenset(
    {
        "contains",
        "startswith",
        "endswith",
        "all",
        "re",
        "i",
        "m",
        "s",
        "cidr",
        "exists",
        "gt",
        "gte",
        "lt",
        "lte",
        "cased",
    }
)
# Named so the error can say "not supported" rather than "unknown".
KNOWN_UNSUPPORTED: Final = frozenset(
    {
        "base64",
        "base64offset",
        "utf16le",
        "utf16be",
        "utf16",
        "wide",
        "windash",
        "expand",
        "fieldref",
        "minute",
        "hour",
        "day",
        "week",
        "month",
        "year",
    }
)
_NUMERIC: Final = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def lookup(record: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` in ``record``: a literal key first, then a dotted path."""
    if name in record:
        return record[name]
    node: Any = record
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def as_text(value: Any) -> str:
    """How a field value reads to a string pattern (YAML spells booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def wildcard_regex(pattern: str, *, prefix: bool, suffix: bool, cased: bool) -> re.Pattern[str]:
    """A compiled full-match regex for a Sigma wildcard string."""
    out: list[str] = [".*"] if prefix else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*?\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    if suffix:
        out.append(".*")
    flags = re.DOTALL | (0 if cased else re.IGNORECASE)
    return re.compile("".join(out), flags)


def _any_element(pred: Predicate) -> Predicate:
    def match(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(pred(v) for v in value)
        return pred(value)

    return match


def value_predicate(value: Any, modifiers: tuple[str, ...]) -> Predicate:
    """A predicate over one field value for one rule value; raises ValueError on misuse."""
    # |all only changes how a list of values combines (the caller's concern).
    mods = set(modifiers) - {"all"}
    if "exists" in mods:
        if not isinstance(value, bool):
            raise ValueError("'|exists' takes true or false")
        return lambda v: (v is not MISSING) is value
    if value is None:
        if mods - {"cased"}:
            raise ValueError("null cannot take modifiers")
        return lambda v: v is MISSING or v is None
    numeric = mods & _NUMERIC.keys()
    if numeric:
        if len(numeric) > 1 or len(mods) > 1:
            raise ValueError("a numeric comparison takes no other modifier")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"'|{next(iter(numeric))}' needs a number, got {value!r}")
        compare = _NUMERIC[next(iter(numeric))]

        def numeric_match(v: Any) -> bool:
            if isinstance(v, bool) or v is MISSING or v is None:
                return False
            try:
                return bool(compare(float(v), float(value)))
            except (TypeError, ValueError):
                return False

        return _any_element(numeric_match)
    if isinstance(value, dict | list):
        raise ValueError(
            f"a value must be a scalar or a list of scalars, got {type(value).__name__}"
        )
    if "cidr" in mods:
        if mods != {"cidr"}:
            raise ValueError("'|cidr' takes no other modifier")
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError as exc:
            raise ValueError(f"'|cidr' needs a network like 10.0.0.0/8, got {value!r}") from exc

        def in_net(v: Any) -> bool:
            try:
                return ipaddress.ip_address(str(v).strip("[]")) in net
            except ValueError:
                return False

        return _any_element(in_net)
    if "re" in mods:
        extra = mods - {"re", "i", "m", "s"}
        if extra:
            raise ValueError(f"'|re' cannot be combined with '|{sorted(extra)[0]}'")
        flags = (
            (re.IGNORECASE if "i" in mods else 0)
            | (re.MULTILINE if "m" in mods else 0)
            | (re.DOTALL if "s" in mods else 0)
        )
        try:
            rx = re.compile(str(value), flags)
        except re.error as exc:
            raise ValueError(f"bad regular expression {value!r}: {exc}") from exc
        return _any_element(
            lambda v: v is not MISSING and v is not None and bool(rx.search(as_text(v)))
        )
    if mods & {"i", "m", "s"}:
        raise ValueError("'|i', '|m' and '|s' only qualify '|re'")
    places = mods & {"contains", "startswith", "endswith"}
    if len(places) > 1:
        raise ValueError(f"'|{'|'.join(sorted(places))}' cannot be combined")
    if isinstance(value, bool | int | float) and not places:
        text = as_text(value).lower()
        return _any_element(
            lambda v: v is not MISSING and v is not None and as_text(v).lower() == text
        )
    cased = "cased" in mods
    text = as_text(value)
    if not any(ch in text for ch in "*?\\"):
        return _any_element(_literal(text, next(iter(places), "equals"), cased=cased))
    rx = wildcard_regex(
        text,
        prefix=bool(places & {"contains", "endswith"}),
        suffix=bool(places & {"contains", "startswith"}),
        cased=cased,
    )
    return _any_element(
        lambda v: v is not MISSING and v is not None and rx.fullmatch(as_text(v)) is not None
    )


def _literal(text: str, place: str, *, cased: bool) -> Predicate:
    """A string comparison without wildcards: plain str methods, no regex (the hot path)."""
    want = text if cased else text.lower()
    test: Callable[[str], bool] = {
        "equals": want.__eq__,
        "contains": lambda s: want in s,
        "startswith": lambda s: s.startswith(want),
        "endswith": lambda s: s.endswith(want),
    }[place]

    def match(v: Any) -> bool:
        if v is MISSING or v is None:
            return False
        s = v if v.__class__ is str else as_text(v)
        return bool(test(s if cased else s.lower()))

    return match
