"""SecLang targets: which variables exist, and how a target string is parsed.

``ARGS``, ``ARGS:foo``, ``ARGS:/^id_/``, ``!ARGS:foo`` (exclusion) and
``&ARGS`` (count) are parsed once into :class:`Target`. A target naming a
variable the engine does not populate is a load error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ramparts.waf._regex import compile_pcre

__all__ = ["COLLECTIONS", "SCALARS", "Target", "parse_target"]

# Collections: key/value lists, selectable by key or /regex/.
COLLECTIONS = frozenset(
    {
        "ARGS",
        "ARGS_GET",
        "ARGS_POST",
        "ARGS_NAMES",
        "ARGS_GET_NAMES",
        "ARGS_POST_NAMES",
        "REQUEST_HEADERS",
        "REQUEST_HEADERS_NAMES",
        "REQUEST_COOKIES",
        "REQUEST_COOKIES_NAMES",
        "RESPONSE_HEADERS",
        "RESPONSE_HEADERS_NAMES",
        "FILES",
        "FILES_NAMES",
        "FILES_SIZES",
        "MULTIPART_PART_HEADERS",
        "MATCHED_VARS",
        "MATCHED_VARS_NAMES",
        "XML",
        "TX",
        "IP",
        "GLOBAL",
        "SESSION",
        "USER",
        "RESOURCE",
        "ENV",
        "RULE",
    }
)
# Scalars: one value (possibly empty) per transaction.
SCALARS = frozenset(
    {
        "REQUEST_URI",
        "REQUEST_URI_RAW",
        "REQUEST_FILENAME",
        "REQUEST_BASENAME",
        "REQUEST_LINE",
        "REQUEST_METHOD",
        "REQUEST_PROTOCOL",
        "QUERY_STRING",
        "REQUEST_BODY",
        "REQUEST_BODY_LENGTH",
        "REQBODY_PROCESSOR",
        "REQBODY_ERROR",
        "REQBODY_ERROR_MSG",
        "REQBODY_PROCESSOR_ERROR",
        "REQBODY_PROCESSOR_ERROR_MSG",
        "MULTIPART_STRICT_ERROR",
        "MULTIPART_UNMATCHED_BOUNDARY",
        "MULTIPART_BOUNDARY_QUOTED",
        "MULTIPART_BOUNDARY_WHITESPACE",
        "MULTIPART_DATA_BEFORE",
        "MULTIPART_DATA_AFTER",
        "MULTIPART_HEADER_FOLDING",
        "MULTIPART_LF_LINE",
        "MULTIPART_MISSING_SEMICOLON",
        "MULTIPART_INVALID_QUOTING",
        "MULTIPART_INVALID_PART",
        "MULTIPART_INVALID_HEADER_FOLDING",
        "MULTIPART_FILE_LIMIT_EXCEEDED",
        "MULTIPART_CRLF_LF_LINES",
        "MULTIPART_FILENAME",
        "MULTIPART_NAME",
        "ARGS_COMBINED_SIZE",
        "FILES_COMBINED_SIZE",
        "REMOTE_ADDR",
        "REMOTE_HOST",
        "REMOTE_PORT",
        "SERVER_NAME",
        "SERVER_ADDR",
        "SERVER_PORT",
        "UNIQUE_ID",
        "RESPONSE_STATUS",
        "RESPONSE_PROTOCOL",
        "RESPONSE_BODY",
        "RESPONSE_CONTENT_TYPE",
        "RESPONSE_CONTENT_LENGTH",
        "STATUS_LINE",
        "MATCHED_VAR",
        "MATCHED_VAR_NAME",
        "AUTH_TYPE",
        "DURATION",
        "HIGHEST_SEVERITY",
        "INBOUND_DATA_ERROR",
        "OUTBOUND_DATA_ERROR",
        "FULL_REQUEST",
        "FULL_REQUEST_LENGTH",
        "PATH_INFO",
        "TIME",
        "TIME_EPOCH",
        "URLENCODED_ERROR",
    }
)
# The only XPath expressions supported on XML: the root's text, and all attributes.
XML_SELECTORS = frozenset({"/*", "//@*"})


@dataclass(slots=True)
class Target:
    """One parsed target: ``name`` upper-case; ``key`` lower-case literal or ``regex``."""

    name: str
    key: str | None = None
    regex: re.Pattern[str] | None = None
    negated: bool = False
    count: bool = False
    text: str = ""
    # Identity of the values selected (negation and counting aside), for caching.
    ckey: tuple[str, str | None, str | None] = ("", None, None)

    def __post_init__(self) -> None:
        self.ckey = (self.name, self.key, None)

    def selects(self, key: str) -> bool:
        """Whether this (key-selecting) target names ``key``; used for exclusions."""
        if self.regex is not None:
            return self.regex.search(key) is not None
        return self.key is None or self.key == key.lower()


def parse_target(text: str) -> Target:
    """Parse one target; raises ValueError with a message naming what is wrong."""
    raw = text
    negated = count = False
    if text.startswith("!"):
        negated, text = True, text[1:]
    if text.startswith("&"):
        count, text = True, text[1:]
    name, sep, selector = text.partition(":")
    name = name.upper()
    if name not in COLLECTIONS and name not in SCALARS:
        raise ValueError(f"unsupported variable {name}")
    target = Target(name=name, negated=negated, count=count, text=raw)
    if not sep:
        if name == "XML":
            target.key = "/*"
            target.ckey = (name, "/*", None)
        return target
    if name not in COLLECTIONS:
        raise ValueError(f"variable {name} takes no selector ({raw!r})")
    if len(selector) >= 2 and selector[0] == selector[-1] == "'":
        selector = selector[1:-1]
    if name == "XML":
        if selector not in XML_SELECTORS:
            raise ValueError(f"unsupported XPath {selector!r} (only /* and //@*)")
        target.key = selector
        target.ckey = (name, selector, None)
        return target
    if len(selector) >= 2 and selector[0] == "/" and selector[-1] == "/":
        try:
            target.regex = re.compile(
                compile_pcre(selector[1:-1]).pattern, re.ASCII | re.IGNORECASE
            )
        except re.error as exc:
            raise ValueError(f"bad selector regex in {raw!r}: {exc}") from exc
        target.ckey = (name, None, target.regex.pattern)
        return target
    if not selector:
        raise ValueError(f"empty selector in {raw!r}")
    target.key = selector.lower()
    target.ckey = (name, target.key, None)
    return target
