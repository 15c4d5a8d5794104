"""Every refbank database test runs on both engines: PostgreSQL and embedded SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'service.db'}"
