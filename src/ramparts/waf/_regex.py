"""PCRE patterns as SecLang writes them, compiled for Python's ``re``.

ModSecurity runs PCRE on raw bytes without UTF mode; we match ``re`` with
``re.ASCII`` against the latin-1 view of those bytes, which gives the same
classes (``\\w``, ``\\s``, case folding are ASCII-only) and lets ``\\x{bc}``
name the byte 0xbc. Python 3.11 already has possessive quantifiers and
atomic groups; the few PCRE spellings it lacks are rewritten here, and a
pattern that still does not compile is a load error, never skipped.
"""

from __future__ import annotations

import functools
import re

import regex

__all__ = ["RX_SHORT", "RX_TIMEOUT", "compile_pcre", "compile_rx", "translate_pcre"]

# Seconds one @rx search may run. ModSecurity bounds PCRE with
# SecPcreMatchLimit and flags TX:MSC_PCRE_LIMITS_EXCEEDED when a search hits
# it; we bound by time (the `regex` engine can stop a search) and flag the
# same variable, which engine.conf's rule 200005 turns into a deny. Several
# CRS patterns are quadratic on long runs of quotes or keywords.
RX_TIMEOUT = 0.05
# Values up to this length run on `re` (faster; the worst CRS pattern needs a
# few milliseconds there); longer ones on `regex` with the timeout above.
RX_SHORT = 256

_SIMPLE = {
    "z": r"\Z",
    "Z": r"(?=\n?\Z)",
    "h": r"[ \t]",
    "H": r"[^ \t]",
    "e": r"\x1b",
}
_SIMPLE_IN_CLASS = {"h": r" \t", "e": r"\x1b"}
_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": r" \t\n\r\f\v",
    "xdigit": "0-9A-Fa-f",
    "punct": r"!-/:-@\[-`{-~",
    "word": r"\w",
}
_GLOBAL_FLAGS = re.compile(r"\(\?([imsx]+)\)")


def _hex_escape(code: int) -> str:
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def translate_pcre(pattern: str) -> str:
    """Rewrite PCRE-only syntax into ``re`` syntax with the same meaning on bytes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "x" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.index("}", i + 3)
                out.append(_hex_escape(int(pattern[i + 3 : end], 16)))
                i = end + 1
                continue
            table = _SIMPLE_IN_CLASS if in_class else _SIMPLE
            if nxt in table:
                out.append(table[nxt])
                i += 2
                continue
            if nxt == "/":
                out.append("/")
                i += 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end > 0 and pattern[i + 2 : end] in _POSIX:
                    out.append(_POSIX[pattern[i + 2 : end]])
                    i = end + 2
                    continue
            if c == "[":
                out.append(r"\[")
                i += 1
                continue
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append(r"\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    text = _split_lookbehinds("".join(out))
    # PCRE lets an inline flag group appear anywhere; Python wants global
    # flags first. Lifting them widens them to the prefix, which in practice
    # is an anchor (``^(?i)up``).
    flags = "".join(m.group(1) for m in _GLOBAL_FLAGS.finditer(text) if m.start() > 0)
    if flags:
        text = _GLOBAL_FLAGS.sub(lambda m: m.group(0) if m.start() == 0 else "", text)
        text = f"(?{''.join(sorted(set(flags)))})" + text
    return text


def _group_end(text: str, start: int) -> int:
    """Index of the ``)`` closing the group opened at ``start`` (escapes and classes skipped)."""
    depth, i, in_class = 0, start, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if text.startswith("[^]", i) or text.startswith("[]", i):
                i += 2 if text[i + 1] == "]" else 3
                continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("unbalanced parenthesis")


def _top_level_branches(body: str) -> list[str]:
    parts, depth, i, in_class, start = [], 0, 0, False, 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    parts.append(body[start:])
    return parts


def _split_lookbehinds(text: str) -> str:
    """PCRE allows ``(?<!a|bc)`` (branches of different fixed widths); ``re`` does not.

    ``(?<!a|bc)`` becomes ``(?<!a)(?<!bc)`` and ``(?<=a|bc)`` becomes
    ``(?:(?<=a)|(?<=bc))``, which mean the same.
    """
    for kind in ("(?<!", "(?<="):
        pos = 0
        while (start := text.find(kind, pos)) >= 0:
            end = _group_end(text, start)
            branches = _top_level_branches(text[start + 4 : end])
            if len(branches) < 2:
                pos = end
                continue
            if kind == "(?<!":
                new = "".join(f"(?<!{b})" for b in branches)
            else:
                new = "(?:" + "|".join(f"(?<={b})" for b in branches) + ")"
            text = text[:start] + new + text[end + 1 :]
            pos = start + len(new)
    return text


@functools.lru_cache(maxsize=4096)
def compile_pcre(pattern: str) -> re.Pattern[str]:
    """Compile once per pattern; raises ``re.error`` for a pattern ``re`` cannot run."""
    return re.compile(translate_pcre(pattern), re.ASCII)


@functools.lru_cache(maxsize=4096)
def compile_rx(pattern: str) -> regex.Pattern[str]:
    """Compile an ``@rx`` pattern for the ``regex`` engine, which can be stopped by a timeout.

    Same translated syntax and byte semantics as :func:`compile_pcre` (``V0`` is
    ``re``-compatible mode); raises ``regex.error`` for a pattern it cannot run.
    """
    return regex.compile(translate_pcre(pattern), regex.ASCII | regex.V0)
