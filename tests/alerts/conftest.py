"""Fixtures for the alert engine tests."""

from __future__ import annotations

import pytest

from ramparts.config import Topology, default_topology


@pytest.fixture(scope="session")
def topology() -> Topology:
    """The reference bank's topology (accounts, ledger, payments, notifications, statements)."""
    return default_topology()
