"""One strict URL parser for both the check and the connection.

SSRF filters are usually bypassed by a disagreement between two parsers: the
filter reads ``http://allowed@evil/`` or ``http://0x7f.1/`` one way and the
HTTP library another. The guard parses a URL exactly once, here, and then
connects to the address it derived from this parse; nothing downstream
re-parses the host.

Host parsing follows the WHATWG URL Standard's host parser for special
schemes (percent-decoding, UTS #46 mapping, the IPv4 number forms: decimal,
octal, hex and short forms such as ``192.168.257``), so a numeric host means
what a browser would make of it. On top of that the guard is stricter than
WHATWG where leniency only serves confusion, and refuses:

* any scheme but ``http`` and ``https``;
* credentials in the URL (``http://allowed@evil``);
* backslashes, which WHATWG reads as ``/`` but other parsers do not;
* tabs, newlines and leading or trailing spaces, which WHATWG silently strips;
* IPv6 zone identifiers (``[fe80::1%25eth0]``).

>>> parse_url("https://Hooks.Example.COM./v1?x=1").host
'hooks.example.com'
>>> parse_url("http://0x7f.1/").host
'127.0.0.1'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote_to_bytes

import idna

DEFAULT_PORTS = {"http": 80, "https": 443}
# WHATWG "forbidden host code points" plus, for domains, C0 controls, '%' and DEL.
_FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|")
_FORBIDDEN_DOMAIN = _FORBIDDEN_HOST | frozenset(chr(c) for c in range(0x20)) | {"%", "\x7f"}
# A DNS name is at most 253 characters (RFC 1035 §2.3.4); refuse longer hosts before any work.
MAX_HOST_LENGTH = 253
MAX_URL_LENGTH = 8192

HostKind = Literal["domain", "ipv4", "ipv6"]


class URLError(ValueError):
    """The URL cannot be used: the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class ParsedURL:
    scheme: str  # "http" or "https"
    host: str  # canonical: lowercase ASCII domain without a trailing dot, or an IP literal
    host_kind: HostKind
    port: int
    target: str  # path and query, percent-encoded ASCII, starting with "/"

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        return ipaddress.ip_address(self.host) if self.host_kind != "domain" else None

    @property
    def origin(self) -> str:
        """``scheme://host:port``: what logs and events may show (no path, no query)."""
        host = f"[{self.host}]" if self.host_kind == "ipv6" else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.origin + self.target


def parse_url(text: str) -> ParsedURL:
    """Parse an absolute http(s) URL strictly; raise :class:`URLError` saying why not."""
    if not isinstance(text, str):
        raise URLError(f"URL must be a string, got {type(text).__name__}")
    if len(text) > MAX_URL_LENGTH:
        raise URLError(f"URL is {len(text)} characters; the limit is {MAX_URL_LENGTH}")
    if text != text.strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r"):
        raise URLError("URL has leading or trailing whitespace or control characters")
    if any(c in text for c in "\t\n\r"):
        raise URLError("URL contains a tab or newline")
    if "\\" in text:
        raise URLError("URL contains a backslash; parsers disagree on what it means")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise URLError(f"only http and https URLs are allowed, got scheme {scheme!r}")
    if not rest.startswith("//"):
        raise URLError("URL must be absolute: expected '//' after the scheme")
    rest = rest[2:]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise URLError("URL contains credentials (user@host); they are not allowed")
    host_text, port = _split_port(authority, scheme)
    host, kind = parse_host(host_text)
    return ParsedURL(scheme, host, kind, port, _target(tail))


def _split_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise URLError("IPv6 host is missing its closing ']'")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise URLError(f"unexpected {after!r} after the IPv6 host")
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = authority.partition(":")
    if port_text == "":
        return host, DEFAULT_PORTS[scheme]
    if not port_text.isascii() or not port_text.isdigit():
        raise URLError(f"port must be digits, got {port_text!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise URLError(f"port must be 1-65535, got {port}")
    return host, port


def _target(tail: str) -> str:
    path_query = tail.split("#", 1)[0]
    if path_query.startswith("?") or not path_query:
        path_query = "/" + path_query
    # Keep existing escapes as they are; escape what may not appear raw in a request line.
    return quote(path_query, safe="/?&=:;@!$'()*+,%-._~[]")


def parse_host(text: str) -> tuple[str, HostKind]:
    """The WHATWG host parser for special schemes, stricter where noted in the module doc."""
    if not text:
        raise URLError("URL has an empty host")
    if len(text) > MAX_HOST_LENGTH * 3:  # room for percent-encoding, still bounded
        raise URLError("host is too long")
    if text.startswith("["):
        if not text.endswith("]"):
            raise URLError("IPv6 host is missing its closing ']'")
        return _parse_ipv6(text[1:-1]), "ipv6"
    try:
        domain = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise URLError("host is not valid UTF-8 after percent-decoding") from None
    ascii_domain = _to_ascii(domain)
    if any(c in _FORBIDDEN_DOMAIN for c in ascii_domain):
        raise URLError("host contains a forbidden character")
    if _ends_in_number(ascii_domain):
        return _parse_ipv4(ascii_domain), "ipv4"
    host = ascii_domain[:-1] if ascii_domain.endswith(".") else ascii_domain
    if not host or len(host) > MAX_HOST_LENGTH or any(not label for label in host.split(".")):
        raise URLError(f"host {host or ascii_domain!r} is not a valid domain name")
    return host, "domain"


def _to_ascii(domain: str) -> str:
    """UTS #46 'domain to ASCII' (non-transitional); ASCII input is only lowercased."""
    if domain.isascii():
        return domain.lower()
    try:
        mapped = idna.uts46_remap(domain, std3_rules=False, transitional=False)
        labels = [
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.split(".")
        ]
    except (idna.IDNAError, UnicodeError) as exc:
        raise URLError(f"host is not a valid internationalised domain name: {exc}") from None
    return ".".join(labels).lower()


def _ends_in_number(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and last.isascii() and last.isdigit():
        return True
    try:
        _ipv4_number(last)
    except URLError:
        return False
    return True


def _ipv4_number(part: str) -> int:
    if not part:
        raise URLError("empty IPv4 part")
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    digits = {10: "0123456789", 8: "01234567", 16: "0123456789abcdefABCDEF"}[base]
    if not all(c in digits for c in part):
        raise URLError(f"{part!r} is not a base-{base} number")
    return int(part, base)


def _parse_ipv4(domain: str) -> str:
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise URLError(f"host {domain!r} looks like an IPv4 address but has {len(parts)} parts")
    try:
        numbers = [_ipv4_number(p) for p in parts]
    except URLError as exc:
        raise URLError(f"host {domain!r} is not a valid IPv4 address: {exc}") from None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise URLError(f"host {domain!r} is an IPv4 address out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


def _parse_ipv6(text: str) -> str:
    if "%" in text:
        raise URLError("IPv6 zone identifiers are not allowed")
    if not text or not all(c in "0123456789abcdefABCDEF:." for c in text):
        raise URLError(f"[{text}] is not an IPv6 address")
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise URLError(f"[{text}] is not an IPv6 address") from None
