"""Parse and format the W3C Trace Context ``traceparent`` header, strictly.

A pure function pair with no I/O and no OpenTelemetry import, so the gateway can
call it on its hot path for every request.

>>> tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
>>> tp.trace_id, tp.parent_id, tp.sampled
('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', True)
>>> format_traceparent(tp)
'00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

Strictness (W3C Trace Context Level 1, section 3.2): only version ``00`` is
accepted, every field is lowercase hex of its exact length, the all-zero
trace-id and parent-id are invalid, and nothing may follow the flags. The spec
lets a receiver try to parse a *future* version's prefix; we do not, because
this header crosses our trust boundary at the gateway and an unparsed header
is simply replaced by a fresh trace (the caller starts a new one).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

__all__ = [
    "TRACEPARENT_HEADER",
    "InvalidTraceparentError",
    "TraceParent",
    "format_traceparent",
    "new_traceparent",
    "parse_traceparent",
]

TRACEPARENT_HEADER = "traceparent"

# W3C Trace Context 3.2.2: version "00" has exactly four dash-separated fields,
# 2 + 32 + 16 + 2 lowercase hex digits (55 characters in all).
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACEPARENT_LEN = 55
_INVALID_TRACE_ID = "0" * 32  # 3.2.2.3: all zeroes is an invalid trace-id
_INVALID_PARENT_ID = "0" * 16  # 3.2.2.4: all zeroes is an invalid parent-id
_FLAG_SAMPLED = 0x01  # 3.2.2.5.1


class InvalidTraceparentError(ValueError):
    """The ``traceparent`` value is not a valid version-00 header."""


@dataclass(frozen=True, slots=True)
class TraceParent:
    """The three fields of a version-00 ``traceparent`` header."""

    trace_id: str
    parent_id: str
    flags: int = _FLAG_SAMPLED

    @property
    def sampled(self) -> bool:
        return bool(self.flags & _FLAG_SAMPLED)


def parse_traceparent(value: str) -> TraceParent:
    """Parse a ``traceparent`` header value.

    Raises:
        InvalidTraceparentError: the value is not exactly a version-00 header
            (wrong version, length, case or separators, or an all-zero id).
            The message names what was wrong, never echoing the value, which is
            attacker-supplied.
    """
    if len(value) != _TRACEPARENT_LEN:
        raise InvalidTraceparentError(
            f"traceparent must be {_TRACEPARENT_LEN} characters, found {len(value)}"
        )
    match = _VERSION_00.fullmatch(value)
    if match is None:
        raise InvalidTraceparentError(
            "traceparent must be '00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>'"
        )
    trace_id, parent_id, flags = match.groups()
    if trace_id == _INVALID_TRACE_ID:
        raise InvalidTraceparentError("traceparent trace-id is all zeroes")
    if parent_id == _INVALID_PARENT_ID:
        raise InvalidTraceparentError("traceparent parent-id is all zeroes")
    return TraceParent(trace_id, parent_id, int(flags, 16))


def format_traceparent(tp: TraceParent) -> str:
    """Format a version-00 ``traceparent`` value; raises on fields that would not parse back."""
    value = f"00-{tp.trace_id}-{tp.parent_id}-{tp.flags:02x}"
    parse_traceparent(value)  # one definition of "valid": the same check both ways
    return value


def new_traceparent(*, sampled: bool = True) -> TraceParent:
    """A fresh random ``traceparent`` for a request that arrived without a valid one."""
    trace_id = secrets.token_hex(16)
    parent_id = secrets.token_hex(8)
    # 2**-128 and 2**-64: astronomically unlikely, but an invalid id must never be sent.
    while trace_id == _INVALID_TRACE_ID:  # pragma: no cover
        trace_id = secrets.token_hex(16)
    while parent_id == _INVALID_PARENT_ID:  # pragma: no cover
        parent_id = secrets.token_hex(8)
    return TraceParent(trace_id, parent_id, _FLAG_SAMPLED if sampled else 0)
