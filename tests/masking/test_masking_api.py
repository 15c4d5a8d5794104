"""The public surface: exactly the names in __all__, and doc examples that run."""

from __future__ import annotations

import doctest
import importlib

import pytest

import ramparts.masking


def test_all_matches_public_names() -> None:
    """Every public name is exported and __all__ names nothing else."""
    public = {n for n in dir(ramparts.masking) if not n.startswith("_")}
    # Submodules appear as attributes once imported; they are not API.
    public -= {"cli"}
    assert set(ramparts.masking.__all__) == public


@pytest.mark.parametrize("name", ["ramparts.masking", "ramparts.masking._masker"])
def test_doc_examples_run(name: str) -> None:
    """Module and class docstring examples are real."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
