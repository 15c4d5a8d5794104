"""Each service publishes an OpenAPI document, and the committed copies are current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refbank.openapi import documents, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
EXPECTED_PATHS = {
    "accounts": {
        "/v1/customers",
        "/v1/customers/{customer_id}",
        "/v1/accounts",
        "/v1/accounts/{nuban}",
    },
    "ledger": {"/v1/postings", "/v1/accounts/{account}/balance", "/v1/accounts/{account}/entries"},
    "payments": {"/v1/transfers", "/v1/deposits"},
    "notifications": {"/v1/webhooks", "/v1/events", "/v1/webhooks/deliveries"},
    "statements": {"/v1/statements/{account}"},
}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, object]]:
    return documents()


@pytest.mark.parametrize("service", sorted(EXPECTED_PATHS))
def test_document_lists_the_service_paths(docs: dict[str, dict[str, object]], service: str) -> None:
    assert set(docs[service]["paths"]) == EXPECTED_PATHS[service]  # type: ignore[arg-type]


@pytest.mark.parametrize("service", sorted(EXPECTED_PATHS))
def test_committed_document_is_current(docs: dict[str, dict[str, object]], service: str) -> None:
    committed = (DOCS / f"{service}.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(render(docs[service])), (
        f"docs/openapi/{service}.json is stale: run python -m refbank.openapi"
    )
