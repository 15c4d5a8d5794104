"""The package's public surface: exported names and the docstring example."""

from __future__ import annotations

import doctest

from ramparts import ratelimit


def test_all_matches_public_names() -> None:
    """__all__ lists exactly the public names the package defines."""
    public = {name for name in vars(ratelimit) if not name.startswith("_")}
    assert set(ratelimit.__all__) == public


def test_docstring_example_runs() -> None:
    """The example at the top of the package docstring passes as written."""
    result = doctest.testmod(ratelimit, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
