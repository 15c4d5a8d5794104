"""The public surface: __all__ matches the exports, and the module example runs."""

from __future__ import annotations

import doctest

import ramparts.alerts


def test_all_matches_public_names() -> None:
    public = {n for n in dir(ramparts.alerts) if not n.startswith("_")}
    modules = {"cli"}  # a submodule imported by the CLI test, not an export
    assert set(ramparts.alerts.__all__) == public - modules


def test_module_example_runs() -> None:
    result = doctest.testmod(ramparts.alerts, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_builtin_rules_load_and_every_family_has_a_test_file() -> None:
    """Each default rule file has its own test file (audit.yaml -> test_rule_audit.py...)."""
    from pathlib import Path

    rules = ramparts.alerts.default_rules()
    assert len(rules.detections) >= 14 and len(rules.correlations) >= 3
    here = Path(__file__).parent
    tests = " ".join(p.name for p in here.glob("test_rule_*.py"))
    files = sorted(ramparts.alerts.default_rules_dir().glob("*.yaml"))
    assert len(files) >= 9
    for f in files:
        assert f.stem in tests, f"no test file covers {f.name}"
