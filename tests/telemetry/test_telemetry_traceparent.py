"""W3C Trace Context ``traceparent`` parsing: a table of must-accept and must-reject cases.

Cases follow W3C Trace Context Level 1, section 3.2 (the spec's own example is
``00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01``).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ramparts.telemetry.traceparent import (
    InvalidTraceparentError,
    TraceParent,
    format_traceparent,
    new_traceparent,
    parse_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
GOOD = f"00-{TRACE}-{PARENT}-01"

VALID = [
    ("spec-example", GOOD, TraceParent(TRACE, PARENT, 1)),
    ("not-sampled", f"00-{TRACE}-{PARENT}-00", TraceParent(TRACE, PARENT, 0)),
    ("unknown-flags-kept", f"00-{TRACE}-{PARENT}-ff", TraceParent(TRACE, PARENT, 0xFF)),
    (
        "id-with-leading-zeroes",
        f"00-{'0' * 31}1-{'0' * 15}1-01",
        TraceParent("0" * 31 + "1", "0" * 15 + "1", 1),
    ),
]

INVALID = [
    ("empty", ""),
    ("version-01", f"01-{TRACE}-{PARENT}-01"),
    ("version-ff", f"ff-{TRACE}-{PARENT}-01"),
    ("future-version-with-extra-field", f"cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
    ("trailing-field-on-00", f"{GOOD}-00"),
    ("trailing-space", GOOD + " "),
    ("leading-space", " " + GOOD[:-1]),
    ("trailing-newline", GOOD[:-1] + "\n"),
    ("uppercase-trace-id", f"00-{TRACE.upper()}-{PARENT}-01"),
    ("uppercase-version", f"0F-{TRACE}-{PARENT}-01"),
    ("uppercase-flags", f"00-{TRACE}-{PARENT}-0A"),
    ("all-zero-trace-id", f"00-{'0' * 32}-{PARENT}-01"),
    ("all-zero-parent-id", f"00-{TRACE}-{'0' * 16}-01"),
    ("short-trace-id", f"00-{TRACE[:-1]}-{PARENT}0-01"),
    ("short-parent-id", f"00-{TRACE}0-{PARENT[:-1]}-01"),
    ("non-hex-trace-id", f"00-{TRACE[:-1]}g-{PARENT}-01"),
    ("non-hex-parent-id", f"00-{TRACE}-{PARENT[:-1]}z-01"),
    ("underscore-separator", f"00_{TRACE}-{PARENT}-01"),
    ("unicode-digit", f"00-{TRACE[:-1]}١-{PARENT}-01"),
    ("plus-sign-flags", f"00-{TRACE}-{PARENT}-+1"),
]


@pytest.mark.parametrize(("name", "value", "expected"), VALID, ids=[v[0] for v in VALID])
def test_accepts(name: str, value: str, expected: TraceParent) -> None:
    """Valid version-00 headers parse to their fields and format back byte-for-byte."""
    parsed = parse_traceparent(value)
    assert parsed == expected
    assert format_traceparent(parsed) == value


@pytest.mark.parametrize(("name", "value"), INVALID, ids=[v[0] for v in INVALID])
def test_rejects(name: str, value: str) -> None:
    """Every malformed header raises InvalidTraceparentError."""
    with pytest.raises(InvalidTraceparentError):
        parse_traceparent(value)


def test_error_does_not_echo_the_value() -> None:
    """The header is attacker-supplied: the error names the rule, not the input."""
    hostile = f"00-{TRACE[:-5]}<scr>-{PARENT}-01"
    with pytest.raises(InvalidTraceparentError) as info:
        parse_traceparent(hostile)
    assert "<scr>" not in str(info.value)


def test_sampled_flag() -> None:
    assert parse_traceparent(GOOD).sampled
    assert not parse_traceparent(GOOD[:-2] + "00").sampled
    assert parse_traceparent(GOOD[:-2] + "03").sampled


@pytest.mark.parametrize(
    "bad",
    [
        TraceParent("0" * 32, PARENT),
        TraceParent(TRACE, "0" * 16),
        TraceParent(TRACE.upper(), PARENT),
        TraceParent(TRACE, PARENT, 256),
        TraceParent(TRACE, PARENT, -1),
    ],
)
def test_format_refuses_what_parse_would_reject(bad: TraceParent) -> None:
    """format_traceparent never produces a header the next hop must reject."""
    with pytest.raises(InvalidTraceparentError):
        format_traceparent(bad)


def test_new_traceparent_is_valid_and_fresh() -> None:
    a, b = new_traceparent(), new_traceparent(sampled=False)
    assert parse_traceparent(format_traceparent(a)) == a
    assert not b.sampled
    assert a.trace_id != b.trace_id


@given(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    st.integers(0, 255),
)
def test_round_trip_property(trace_id: str, parent_id: str, flags: int) -> None:
    """Any non-zero ids and any flags byte round-trip exactly."""
    tp = TraceParent(trace_id, parent_id, flags)
    if set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        with pytest.raises(InvalidTraceparentError):
            format_traceparent(tp)
    else:
        assert parse_traceparent(format_traceparent(tp)) == tp


@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(value: str) -> None:
    """Arbitrary input either parses or raises InvalidTraceparentError, nothing else."""
    try:
        tp = parse_traceparent(value)
    except InvalidTraceparentError:
        return
    assert format_traceparent(tp) == value
