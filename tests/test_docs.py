"""Examples in module docstrings run, so the docs cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ramparts.config",
    "ramparts.events",
    "ramparts.telemetry.context",
    "ramparts.egress",
    "ramparts.egress._url",
    "ramparts.alerts",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
