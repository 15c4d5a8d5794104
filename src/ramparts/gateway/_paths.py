"""Request-target normalisation: one safe spelling of every path, or a refusal.

The gateway routes on the path and the service behind it routes on the path
again. If the two disagree about what a path means (``/v1/accounts/../admin``,
``/v1/accounts%2F..%2Fadmin``, ``/v1/%61ccounts``) a request authorised for
one route reaches another. So the gateway decides once, here, and forwards the
spelling it decided on:

* only origin-form targets (``/path?query``, RFC 9112 section 3.2.1); the
  absolute form, the authority form and ``*`` are refused;
* percent-encoded *unreserved* characters are decoded and the hex digits of
  every other escape upper-cased (RFC 3986 section 6.2.2: equivalent
  spellings become one);
* refused outright, because servers disagree on them: an encoded ``/``
  (``%2F``), an encoded or raw backslash, an encoded NUL, a malformed escape,
  a dot segment (``.`` or ``..``, in any encoding) and an empty segment
  (``//``); a fragment (``#``) has no place in a request target.

>>> normalise_target(b"/v1/%61ccounts/7?x=%2f")
('/v1/accounts/7', 'x=%2f')
>>> try:
...     normalise_target(b"/v1/a/../b")
... except BadTarget as exc:
...     print(exc)
dot segment in path
"""

from __future__ import annotations

import re

__all__ = ["MAX_TARGET_BYTES", "BadTarget", "normalise_target"]

#: Longest request target accepted (the request line limit is enforced too).
MAX_TARGET_BYTES = 8192

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(rb"%(..)?")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# After normalisation only these may appear in a path (RFC 3986 pchar plus "/").
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
# Escapes refused in a path: "/" and "\" change the segment structure for
# servers that decode before splitting; NUL truncates strings in C code.
_FORBIDDEN_ESCAPES = frozenset({"2F", "5C", "00"})


class BadTarget(ValueError):
    """The request target is refused; the message says why (never echoes it)."""


def _normalise_escapes(path: bytes) -> str:
    if b"%" not in path:
        return path.decode("ascii")
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(path):
        out += path[pos : match.start()]
        pair = match.group(1)
        if pair is None or not (pair[0] in _HEX and pair[1] in _HEX):
            raise BadTarget("malformed percent-escape in path")
        code = int(pair, 16)
        if code in _UNRESERVED:
            out.append(code)
        else:
            upper = pair.upper().decode("ascii")
            if upper in _FORBIDDEN_ESCAPES:
                raise BadTarget(f"encoded %{upper} in path is refused")
            out += b"%" + pair.upper()
        pos = match.end()
    out += path[pos:]
    return out.decode("ascii")


def normalise_target(target: bytes) -> tuple[str, str | None]:
    """Split and normalise an origin-form request target into (path, query).

    Raises:
        BadTarget: for any target the module docstring says is refused.
    """
    if len(target) > MAX_TARGET_BYTES:
        raise BadTarget(f"request target longer than {MAX_TARGET_BYTES} bytes")
    if not target.startswith(b"/"):
        raise BadTarget("request target must be origin-form (start with '/')")
    if b"#" in target:
        raise BadTarget("fragment in request target")
    raw_path, sep, raw_query = target.partition(b"?")
    try:
        path = _normalise_escapes(raw_path)
    except UnicodeDecodeError:
        raise BadTarget("non-ASCII byte in path") from None
    if not _PATH_CHARS.fullmatch(path):
        raise BadTarget("character not allowed in a path (RFC 3986 pchar)")
    if "//" in path:
        raise BadTarget("empty path segment ('//')")
    # "/." and "/.." as whole segments, anywhere (the escapes are decoded by now).
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise BadTarget("dot segment in path")
    if not sep:
        return path, None
    try:
        query = raw_query.decode("ascii")
    except UnicodeDecodeError:
        raise BadTarget("non-ASCII byte in query") from None
    return path, query
