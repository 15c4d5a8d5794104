"""The package's public surface, and the doctests in its modules."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ramparts.telemetry

MODULES = ["ecs", "backoff", "traceparent", "diskbuffer"]


def test_all_names_resolve() -> None:
    """Every name in __all__ is importable from the package (lazy ones included)."""
    for name in ramparts.telemetry.__all__:
        assert getattr(ramparts.telemetry, name) is not None, name


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = ramparts.telemetry.no_such_thing


def test_events_do_not_import_the_sdk() -> None:
    """Importing ramparts.events (every service does) must not load OpenTelemetry or structlog."""
    code = (
        "import sys, ramparts.events, ramparts.telemetry;"
        "print(any(m.startswith(('opentelemetry', 'structlog')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(f"ramparts.telemetry.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_package_doctest() -> None:
    result = doctest.testmod(ramparts.telemetry)
    assert result.failed == 0 and result.attempted > 0


def test_logging_doctest() -> None:

    import ramparts.telemetry.logging as mod

    try:
        result = doctest.testmod(mod)
    finally:
        mod.reset_logging()
    assert result.failed == 0 and result.attempted > 0


@given(st.floats(min_value=0, max_value=2**33, allow_nan=False))
def test_ecs_timestamp_agrees_with_datetime(epoch: float) -> None:
    """The fast @timestamp formatter matches datetime's RFC 3339 output to the millisecond."""
    from datetime import UTC, datetime

    from ramparts.telemetry.ecs import ecs_timestamp

    expected = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    assert ecs_timestamp(epoch) == expected
