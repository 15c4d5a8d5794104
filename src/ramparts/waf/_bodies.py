"""Request body processors: URLENCODED, MULTIPART, JSON, XML.

Each returns a :class:`BodyResult` with the arguments it found (CRS names:
JSON ``{"a": {"b": 1}}`` gives ``json.a.b``; arrays give ``json.a.array_0``
as ModSecurity v3 does) and, on malformed input, an error message, which
sets ``REQBODY_ERROR``. The multipart parser is our own and strict: it sets
ModSecurity's ``MULTIPART_*`` flags (data before/after the boundaries, bad
quoting, LF-only lines, header folding, unmatched boundary), because a
lenient parser that reads a part differently from the application behind it
is a classic WAF bypass. XML goes through defusedxml (no entities, no DTD
network access).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from ramparts.waf._transforms import url_decode

__all__ = ["BodyResult", "parse_json", "parse_multipart", "parse_urlencoded", "parse_xml"]

Pairs = list[tuple[str, str]]


@dataclass
class BodyResult:
    args: Pairs = field(default_factory=list)
    error: str | None = None
    files: Pairs = field(default_factory=list)  # (field name, file name)
    file_sizes: Pairs = field(default_factory=list)
    part_headers: Pairs = field(default_factory=list)  # (part name, "Header: value")
    flags: dict[str, int] = field(default_factory=dict)
    xml: dict[str, list[str]] = field(default_factory=dict)


def parse_urlencoded(text: str, separator: str = "&") -> Pairs:
    """``a=1&b`` -> ``[("a", "1"), ("b", "")]``, each side URL-decoded (``+`` is a space)."""
    out: Pairs = []
    for piece in text.split(separator):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        out.append((url_decode(name), url_decode(value)))
    return out


# -- JSON --------------------------------------------------------------------
def _wire(text: str) -> str:
    """Decoded text back to its UTF-8 bytes, one char per byte (what rules see)."""
    return text if text.isascii() else text.encode("utf-8", "surrogatepass").decode("latin-1")


def _json_walk(prefix: str, node: object, out: Pairs, depth: int) -> None:
    if depth > 512:
        raise ValueError("JSON nesting too deep")
    if isinstance(node, dict):
        if not node:
            out.append((prefix, ""))
        for k, v in node.items():
            _json_walk(f"{prefix}.{_wire(k)}", v, out, depth + 1)
    elif isinstance(node, list):
        if not node:
            out.append((prefix, ""))
        for i, v in enumerate(node):
            _json_walk(f"{prefix}.array_{i}", v, out, depth + 1)
    elif node is True:
        out.append((prefix, "true"))
    elif node is False:
        out.append((prefix, "false"))
    elif node is None:
        out.append((prefix, ""))
    elif isinstance(node, str):
        out.append((prefix, _wire(node)))
    else:
        out.append((prefix, json.dumps(node)))


def parse_json(body: str) -> BodyResult:
    res = BodyResult()
    try:
        raw = body.encode("latin-1").decode("utf-8")
        doc = json.loads(raw)
        _json_walk("json", doc, res.args, 0)
    except (ValueError, RecursionError) as exc:
        res.error = f"JSON parsing error: {str(exc)[:120]}"
    return res


# -- XML ---------------------------------------------------------------------
def parse_xml(body: str) -> BodyResult:
    res = BodyResult()
    try:
        root: Element = SafeET.fromstring(body.encode("latin-1"), forbid_dtd=False)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        res.error = f"XML parsing error: {str(exc)[:120]}"
        return res

    res.xml["/*"] = [_wire("".join(root.itertext()))]
    res.xml["//@*"] = [_wire(v) for el in root.iter() for v in el.attrib.values()]
    return res


# -- multipart ---------------------------------------------------------------
_BOUNDARY = re.compile(r"""boundary\s*=\s*("[^"]*"|[^;,\s]*)""", re.I)
_PARAM = re.compile(
    r"""\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^;\s]*)\s*(?:;|$)""", re.S
)


def multipart_boundary(content_type: str) -> tuple[str | None, dict[str, int]]:
    flags: dict[str, int] = {}
    found = _BOUNDARY.findall(content_type)
    if len(found) != 1:
        return None, flags
    b = found[0]
    if b.startswith('"'):
        flags["MULTIPART_BOUNDARY_QUOTED"] = 1
        b = b[1:-1]
    if not b or len(b) > 70 or re.search(r"[^0-9A-Za-z'()+_,\-./:=? ]", b):
        return None, flags
    if b != b.strip():
        flags["MULTIPART_BOUNDARY_WHITESPACE"] = 1
    return b, flags


def _disposition(value: str, res: BodyResult) -> tuple[str | None, str | None]:
    kind, _, rest = value.partition(";")
    if kind.strip().lower() != "form-data":
        res.flags["MULTIPART_INVALID_PART"] = 1
        return None, None
    name = filename = None
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None:
            res.flags["MULTIPART_INVALID_QUOTING"] = 1
            break
        key, val = m.group(1).lower(), m.group(2)
        if val.startswith("'"):
            res.flags["MULTIPART_INVALID_QUOTING"] = 1
            val = val[1:-1]
        elif val.startswith('"'):
            val = re.sub(r'\\(["\\])', r"\1", val[1:-1])
        if key == "name":
            name = val
        elif key in ("filename", "filename*"):
            filename = val
        pos = m.end()
    return name, filename


def parse_multipart(body: str, content_type: str) -> BodyResult:
    boundary, flags = multipart_boundary(content_type)
    res = BodyResult(flags=dict(flags))
    if boundary is None:
        res.error = "Multipart: invalid or missing boundary"
        res.flags["MULTIPART_STRICT_ERROR"] = 1
        return res
    delim = "--" + boundary
    first = body.find(delim)
    if first < 0:
        res.error = "Multipart: no boundary in body"
        res.flags["MULTIPART_STRICT_ERROR"] = 1
        res.flags["MULTIPART_UNMATCHED_BOUNDARY"] = 1
        return res
    if body[:first].strip("\r\n"):
        res.flags["MULTIPART_DATA_BEFORE"] = 1
    pieces = re.split(r"\r?\n" + re.escape(delim), body[first + len(delim) :])
    # pieces[0] is the rest of the first boundary line + the first part, etc.
    closed = False
    for i, piece in enumerate(pieces):
        if piece.startswith("--"):
            closed = True
            if piece[2:].strip("\r\n"):
                res.flags["MULTIPART_DATA_AFTER"] = 1
            if i != len(pieces) - 1:
                res.flags["MULTIPART_DATA_AFTER"] = 1
            break
        if piece.startswith("\r\n"):
            _part(piece[2:], res)
        elif piece.startswith("\n"):
            res.flags["MULTIPART_LF_LINE"] = 1
            _part(piece[1:], res)
        else:
            res.flags["MULTIPART_INVALID_PART"] = 1
    if not closed:
        res.flags["MULTIPART_UNMATCHED_BOUNDARY"] = 1
        res.error = "Multipart: final boundary missing"
    if any(
        res.flags.get(f)
        for f in (
            "MULTIPART_DATA_BEFORE",
            "MULTIPART_DATA_AFTER",
            "MULTIPART_INVALID_QUOTING",
            "MULTIPART_INVALID_PART",
            "MULTIPART_INVALID_HEADER_FOLDING",
            "MULTIPART_UNMATCHED_BOUNDARY",
        )
    ):
        res.flags["MULTIPART_STRICT_ERROR"] = 1
    return res


def _part(piece: str, res: BodyResult) -> None:
    sep = piece.find("\r\n\r\n")
    sep_len = 4
    lf = piece.find("\n\n")
    if sep < 0 or (0 <= lf < sep):
        if lf < 0:
            res.flags["MULTIPART_INVALID_PART"] = 1
            return
        sep, sep_len = lf, 2
        res.flags["MULTIPART_LF_LINE"] = 1
    head, data = piece[:sep], piece[sep + sep_len :]
    lines: list[str] = []
    for line in re.split(r"\r?\n", head):
        if line[:1] in (" ", "\t") and lines:
            res.flags["MULTIPART_HEADER_FOLDING"] = 1
            lines[-1] += " " + line.strip()
            continue
        lines.append(line)
    name = filename = None
    headers: list[str] = []
    for line in lines:
        hname, colon, hvalue = line.partition(":")
        if not colon or not hname:
            res.flags["MULTIPART_INVALID_PART"] = 1
            continue
        headers.append(line)
        if hname.strip().lower() == "content-disposition":
            if name is not None:
                res.flags["MULTIPART_INVALID_PART"] = 1
            name, filename = _disposition(hvalue.strip(), res)
    if name is None:
        res.flags["MULTIPART_INVALID_PART"] = 1
        name = ""
    for h in headers:
        res.part_headers.append((name, h))
    if filename is not None:
        res.files.append((name, filename))
        res.file_sizes.append((name, str(len(data))))
    else:
        res.args.append((name, data))
