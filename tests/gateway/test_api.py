"""The package's public surface and its runnable docstring examples."""

from __future__ import annotations

import doctest
import importlib

import pytest

import ramparts.gateway

MODULES = ["_paths", "_routes", "_forwarded", "_gateway", "__init__"]


def test_all_matches_the_exports():
    public = {name for name in vars(ramparts.gateway) if not name.startswith("_")}
    modules = {"cli"}  # submodules imported as attributes
    assert set(ramparts.gateway.__all__) == public - modules - {"annotations"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = (
        ramparts.gateway
        if name == "__init__"
        else importlib.import_module(f"ramparts.gateway.{name}")
    )
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
