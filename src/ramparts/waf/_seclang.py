"""The SecLang lexer: files into directives, directives into their parts.

It follows Apache's config syntax as ModSecurity reads it: a trailing
backslash continues a line, ``#`` starts a comment line, arguments are split
on whitespace unless quoted, and inside quotes only ``\\"`` (or ``\\'``) is an
escape; every other backslash is kept for the regex that follows.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from ramparts.waf._errors import WafLoadError

__all__ = ["Directive", "parse_file", "parse_text", "split_actions", "split_variables"]


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive with its arguments and where it was written."""

    name: str
    args: tuple[str, ...]
    file: str
    line: int

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent

    def error(self, message: str) -> WafLoadError:
        return WafLoadError(self.file, self.line, message)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not buf:
            start = no
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, "".join(buf)))
        buf = []
    if buf:
        out.append((start, "".join(buf)))
    return out


def _words(line: str, file: str, no: int) -> list[str]:
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        quote = line[i]
        if quote in "\"'":
            i += 1
            part: list[str] = []
            while i < n and line[i] != quote:
                if line[i] == "\\" and i + 1 < n and line[i + 1] == quote:
                    part.append(quote)
                    i += 2
                    continue
                part.append(line[i])
                i += 1
            if i >= n:
                raise WafLoadError(file, no, f"unterminated {quote} quote")
            i += 1
            words.append("".join(part))
        else:
            j = i
            while j < n and line[j] not in " \t":
                j += 1
            words.append(line[i:j])
            i = j
    return words


def parse_text(text: str, file: str) -> list[Directive]:
    """Directives of one file's text, with Include expanded relative to ``file``."""
    out: list[Directive] = []
    for no, line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = _words(stripped, file, no)
        name, args = words[0], tuple(words[1:])
        if name.lower() == "include":
            if len(args) != 1:
                raise WafLoadError(file, no, "Include takes one path")
            pattern = str(Path(file).parent / args[0])
            matches = sorted(glob.glob(pattern))
            if not matches and not glob.has_magic(args[0]):
                raise WafLoadError(file, no, f"Include: no such file {args[0]!r}")
            for path in matches:
                out.extend(parse_file(path))
            continue
        out.append(Directive(name, args, file, no))
    return out


def parse_file(path: str | Path) -> list[Directive]:
    p = Path(path)
    try:
        text = p.read_text(encoding="latin-1")
    except OSError as exc:
        raise WafLoadError(str(p), 0, f"cannot read rule file: {exc.strerror}") from exc
    return parse_text(text, str(p))


def split_actions(text: str, where: Directive) -> list[tuple[str, str | None]]:
    """``"id:1,msg:'a, b',pass"`` -> ``[("id", "1"), ("msg", "a, b"), ("pass", None)]``."""
    actions: list[tuple[str, str | None]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and text[j] not in ":,":
            j += 1
        name = text[i:j].strip()
        if j >= n or text[j] == ",":
            actions.append((name, None))
            i = j + 1
            continue
        j += 1  # past ':'
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == "'":
            j += 1
            part: list[str] = []
            while j < n and text[j] != "'":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "'":
                    part.append("'")
                    j += 2
                    continue
                part.append(text[j])
                j += 1
            if j >= n:
                raise where.error(f"unterminated quote in action {name!r}")
            value = "".join(part)
            j += 1
            while j < n and text[j] != ",":
                if text[j] not in " \t":
                    raise where.error(f"unexpected text after quoted value of action {name!r}")
                j += 1
        else:
            k = j
            while k < n and text[k] != ",":
                k += 1
            value = text[j:k].strip()
            j = k
        actions.append((name, value))
        i = j + 1
    return actions


def split_variables(text: str, where: Directive) -> list[str]:
    """Split ``ARGS|!ARGS:/a|b/|REQUEST_HEADERS:'x'`` on the pipes between targets."""
    parts: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "|":
            parts.append("".join(buf))
            buf = []
            i += 1
            continue
        xpath = "".join(buf).lstrip("!&").upper() == "XML"
        if c == ":" and i + 1 < n and text[i + 1] in "/'" and not xpath:
            buf.append(":")
            i += 1
            quote = text[i]
            end_quote = quote
            if quote == "'" and i + 1 < n and text[i + 1] == "/":
                end_quote = "'"
            buf.append(quote)
            i += 1
            while i < n and text[i] != end_quote:
                if text[i] == "\\" and i + 1 < n:
                    buf.append(text[i : i + 2])
                    i += 2
                    continue
                buf.append(text[i])
                i += 1
            if i >= n:
                raise where.error(f"unterminated selector in targets {text!r}")
            buf.append(text[i])
            i += 1
            continue
        buf.append(c)
        i += 1
    parts.append("".join(buf))
    if any(not p.strip() for p in parts):
        raise where.error(f"empty target in {text!r}")
    return [p.strip() for p in parts]
