"""SecLang transformations (``t:...``), with ModSecurity's byte semantics.

Every value the engine inspects is a ``str`` holding one character per wire
byte (a latin-1 view of the bytes), so a transformation here behaves as
ModSecurity's does on raw bytes: ``lowercase`` folds ASCII only, a decoded
``%uFF41`` becomes the byte ``a`` (full-width forms map to ASCII, other code
points keep their low byte), and regexes with ``\\x{bc}`` see byte 0xbc.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable

__all__ = ["TRANSFORMS", "to_wire"]

Transform = Callable[[str], str]

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_ASCII_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_HEX = "0123456789abcdefABCDEF"
# ModSecurity's whitespace set for compressWhitespace/removeWhitespace
# includes the non-breaking space (0xa0).
_WS = " \t\n\r\f\v\xa0"


def to_wire(value: str | bytes) -> str:
    """The latin-1 view of what a client sent: bytes as-is, text as its UTF-8 bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _unicode_byte(code: int) -> str:
    """ModSecurity's default %u / \\u mapping: full-width ASCII to ASCII, else the low byte."""
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return chr(code & 0xFF)


def lowercase(s: str) -> str:
    return s.lower() if s.isascii() else s.translate(_ASCII_LOWER)


def uppercase(s: str) -> str:
    return s.upper() if s.isascii() else s.translate(_ASCII_UPPER)


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_PCT_U = re.compile(r"%(?:([0-9A-Fa-f]{2})|[uU]([0-9A-Fa-f]{4}))")


def url_decode(s: str) -> str:
    if "%" not in s and "+" not in s:
        return s
    s = s.replace("+", " ")
    return _PCT.sub(lambda m: chr(int(m.group(1), 16)), s)


def url_decode_uni(s: str) -> str:
    if "%" not in s and "+" not in s:
        return s
    s = s.replace("+", " ")

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return chr(int(m.group(1), 16))
        return _unicode_byte(int(m.group(2), 16))

    return _PCT_U.sub(sub, s)


def url_encode(s: str) -> str:
    out = []
    for ch in s:
        if (ch.isalnum() and ch.isascii()) or ch in "*-._":
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append(f"%{ord(ch):02x}")
    return "".join(out)


# ModSecurity decodes only a handful of named entities (not the full HTML table),
# with or without the ';'.
_NAMED = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0"}
_ENTITY = re.compile(r"&(?:#[xX]([0-9A-Fa-f]+);?|#([0-9]+);?|(quot|amp|lt|gt|nbsp);?)", re.I)


def html_entity_decode(s: str) -> str:
    if "&" not in s:
        return s

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return chr(int(m.group(1)[-8:], 16) & 0xFF)
        if m.group(2) is not None:
            return chr(int(m.group(2)[-9:]) & 0xFF)
        return _NAMED[m.group(3).lower()]

    return _ENTITY.sub(sub, s)


_JS = re.compile(r"\\(?:[uU]([0-9A-Fa-f]{4})|[xX]([0-9A-Fa-f]{2})|([0-7]{1,3})|(.))", re.S)
_JS_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def js_decode(s: str) -> str:
    if "\\" not in s:
        return s

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return _unicode_byte(int(m.group(1), 16))
        if m.group(2) is not None:
            return chr(int(m.group(2), 16))
        if m.group(3) is not None:
            return chr(int(m.group(3), 8) & 0xFF)
        c = m.group(4)
        return _JS_SIMPLE.get(c, c)

    return _JS.sub(sub, s)


_CSS = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[ \t\n\r\f]?|(\n)|(.))", re.S)


def css_decode(s: str) -> str:
    if "\\" not in s:
        return s

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            h = m.group(1)
            code = int(h, 16)
            if len(h) >= 5 and 0xFF01 <= code <= 0xFF5E:
                return chr(code - 0xFEE0)
            return chr(code & 0xFF)
        if m.group(2) is not None:
            return ""
        return m.group(3)

    return _CSS.sub(sub, s)


_ESC = re.compile(r"\\(?:[xX]([0-9A-Fa-f]{1,2})|([0-7]{1,3})|(.))", re.S)
_ESC_SIMPLE = {**_JS_SIMPLE, "?": "?", "'": "'", '"': '"', "\\": "\\"}


def escape_seq_decode(s: str) -> str:
    if "\\" not in s:
        return s

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return chr(int(m.group(1), 16))
        if m.group(2) is not None:
            return chr(int(m.group(2), 8) & 0xFF)
        c = m.group(3)
        return _ESC_SIMPLE.get(c, "\\" + c)

    return _ESC.sub(sub, s)


_CMD_DEL = str.maketrans("", "", "\\\"'^")
_CMD_SPACE = re.compile(r"[,; \t\n\r\f\v]+")
_CMD_BEFORE = re.compile(r" (?=[/(])")


def cmd_line(s: str) -> str:
    s = s.translate(_CMD_DEL)
    s = _CMD_SPACE.sub(" ", s)
    s = _CMD_BEFORE.sub("", s)
    return lowercase(s)


_WS_RUN = re.compile(f"[{_WS}]+")
_WS_ALL = str.maketrans("", "", _WS)


def compress_whitespace(s: str) -> str:
    return _WS_RUN.sub(" ", s)


def remove_whitespace(s: str) -> str:
    return s.translate(_WS_ALL)


def remove_nulls(s: str) -> str:
    return s.replace("\0", "") if "\0" in s else s


def replace_nulls(s: str) -> str:
    return s.replace("\0", " ") if "\0" in s else s


_C_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)


def replace_comments(s: str) -> str:
    if "/*" not in s:
        return s
    return _C_COMMENT.sub(" ", s)


_ANY_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)|<!--.*?(?:-->|\Z)|--.*?(?:\n|\Z)|#.*?(?:\n|\Z)", re.S)


def remove_comments(s: str) -> str:
    return _ANY_COMMENT.sub("", s)


_COMMENT_CHARS = re.compile(r"/\*|\*/|<!--|-->|--|#")


def remove_comments_char(s: str) -> str:
    return _COMMENT_CHARS.sub("", s)


def normalize_path(s: str) -> str:
    if not s:
        return s
    absolute = s.startswith("/")
    trailing = s.endswith(("/", "/.", "/.."))
    out: list[str] = []
    for seg in s.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not absolute:
                out.append("..")
            continue
        out.append(seg)
    res = "/".join(out)
    if absolute:
        res = "/" + res
    if trailing and res and not res.endswith("/"):
        res += "/"
    return res


def normalize_path_win(s: str) -> str:
    return normalize_path(s.replace("\\", "/"))


def utf8_to_unicode(s: str) -> str:
    if s.isascii():
        return s
    raw = s.encode("latin-1")
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        width = 0
        if b >= 0xF0 and b < 0xF8:
            width = 4
        elif b >= 0xE0:
            width = 3 if b < 0xF0 else 0
        elif b >= 0xC0:
            width = 2
        if width and i + width <= n:
            chunk = raw[i : i + width]
            try:
                cp = ord(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                cp = -1
            if cp >= 0:
                out.append(f"%u{cp:04x}")
                i += width
                continue
        out.append(chr(b))
        i += 1
    return "".join(out)


_B64_CLEAN = re.compile(r"[^A-Za-z0-9+/]")


def base64_decode(s: str) -> str:
    data = s.split("=", 1)[0]
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4)).decode("latin-1")
    except (binascii.Error, ValueError):
        return s


def base64_decode_ext(s: str) -> str:
    return base64_decode(_B64_CLEAN.sub("", s))


def base64_encode(s: str) -> str:
    return base64.b64encode(s.encode("latin-1")).decode("ascii")


def hex_encode(s: str) -> str:
    return s.encode("latin-1").hex()


def hex_decode(s: str) -> str:
    try:
        return bytes.fromhex(s).decode("latin-1")
    except ValueError:
        return s


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode("latin-1"), usedforsecurity=False).digest().decode("latin-1")


def md5(s: str) -> str:
    return hashlib.md5(s.encode("latin-1"), usedforsecurity=False).digest().decode("latin-1")


def length(s: str) -> str:
    return str(len(s))


def trim(s: str) -> str:
    return s.strip(" \t\n\r\f\v\0")


def trim_left(s: str) -> str:
    return s.lstrip(" \t\n\r\f\v\0")


def trim_right(s: str) -> str:
    return s.rstrip(" \t\n\r\f\v\0")


def none(s: str) -> str:
    return s


# Names are matched case-insensitively, as ModSecurity does.
TRANSFORMS: dict[str, Transform] = {
    name.lower(): fn
    for name, fn in {
        "lowercase": lowercase,
        "uppercase": uppercase,
        "urlDecode": url_decode,
        "urlDecodeUni": url_decode_uni,
        "urlEncode": url_encode,
        "htmlEntityDecode": html_entity_decode,
        "jsDecode": js_decode,
        "cssDecode": css_decode,
        "escapeSeqDecode": escape_seq_decode,
        "cmdLine": cmd_line,
        "compressWhitespace": compress_whitespace,
        "removeWhitespace": remove_whitespace,
        "removeNulls": remove_nulls,
        "replaceNulls": replace_nulls,
        "replaceComments": replace_comments,
        "removeComments": remove_comments,
        "removeCommentsChar": remove_comments_char,
        "normalizePath": normalize_path,
        "normalisePath": normalize_path,
        "normalizePathWin": normalize_path_win,
        "normalisePathWin": normalize_path_win,
        "utf8toUnicode": utf8_to_unicode,
        "base64Decode": base64_decode,
        "base64DecodeExt": base64_decode_ext,
        "base64Encode": base64_encode,
        "hexEncode": hex_encode,
        "hexDecode": hex_decode,
        "sha1": sha1,
        "md5": md5,
        "length": length,
        "trim": trim,
        "trimLeft": trim_left,
        "trimRight": trim_right,
        "none": none,
    }.items()
}
