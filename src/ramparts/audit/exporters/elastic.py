"""Export to Elasticsearch through the ``_bulk`` API, as ECS documents.

Wire format (Elasticsearch reference, "Bulk API")::

    POST {base_url}/_bulk
    Content-Type: application/x-ndjson
    Authorization: ApiKey <encoded API key>

    {"create":{"_index":"logs-ramparts-default","_id":"<index>-<leaf hash>"}}
    {"@timestamp":"...","event.hash":"<leaf hash>","trace.id":"...",...}
    ...                                              (every line ends in \\n)

``create`` rather than ``index``: data streams accept only ``create``, and it makes
a retry idempotent, since a document that was indexed on an earlier attempt
answers 409 and counts as delivered. The ``_id`` is the log index plus the
Merkle leaf hash, unique per entry and stable across retries.

A 200 can still carry per-item failures (``"errors": true``); each item's
status is checked and only the retryable ones (429, 5xx) are sent again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ramparts.audit.exporters._base import (
    RETRYABLE_STATUSES,
    ExportRecord,
    HTTPExporter,
    SendOutcome,
)
from ramparts.audit.exporters._secret import Secret
from ramparts.telemetry.backoff import Backoff

__all__ = ["ElasticExporter"]

NDJSON = "application/x-ndjson"


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


class ElasticExporter(HTTPExporter):
    """Sends audit records to an index or data stream with ``_bulk``.

    Args:
        base_url: the cluster, ``https://es:9200``.
        index: the target index or data stream (``logs-ramparts-default``).
        api_key: the encoded API key (``Authorization: ApiKey ...``), or None for
            an unauthenticated test cluster.
    """

    def __init__(
        self,
        base_url: str,
        *,
        index: str,
        api_key: Secret | None = None,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        backoff: Backoff | None = None,
        max_attempts: int = 5,
        max_batch: int = 500,
    ) -> None:
        super().__init__(
            base_url,
            client_factory=client_factory,
            backoff=backoff,
            max_attempts=max_attempts,
            max_batch=max_batch,
        )
        # Elasticsearch index names: lowercase, no spaces or \/*?"<>|,#: and not starting with -_+.
        if not index or index != index.lower() or any(c in index for c in ' \\/*?"<>|,#:'):
            raise ValueError(f"elastic index name {index!r} is not a valid index name")
        if index.startswith(("-", "_", "+")):
            raise ValueError(f"elastic index name {index!r} must not start with -, _ or +")
        self.index = index
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"ElasticExporter({self.base_url!r}, index={self.index!r})"

    def _body(self, records: Sequence[ExportRecord]) -> bytes:
        lines: list[str] = []
        for record in records:
            action = {"create": {"_index": self.index, "_id": f"{record.index}-{record.leaf_hash}"}}
            lines.append(_compact(action))
            lines.append(_compact(record.to_ecs()))
        return ("\n".join(lines) + "\n").encode()

    async def _send(
        self, client: httpx.AsyncClient, records: Sequence[ExportRecord]
    ) -> SendOutcome:
        headers = {"Content-Type": NDJSON, "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"ApiKey {self._api_key.reveal()}"
        response = await client.post(
            f"{self.base_url}/_bulk", content=self._body(records), headers=headers
        )
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            return SendOutcome.all_retry(records, f"HTTP {status}")
        if status != 200:
            return SendOutcome.all_failed(records, f"HTTP {status}")
        try:
            body = response.json()
            items = body["items"]
        except (ValueError, KeyError, TypeError):
            return SendOutcome.all_retry(records, "bulk response without items")
        if not isinstance(items, list) or len(items) != len(records):
            return SendOutcome.all_retry(records, "bulk response item count differs from request")
        outcome = SendOutcome()
        for record, item in zip(records, items, strict=True):
            result = item.get("create") if isinstance(item, dict) else None
            item_status = result.get("status") if isinstance(result, dict) else None
            if not isinstance(item_status, int):
                outcome.retry.append((record, "bulk item without a status"))
            elif 200 <= item_status < 300 or item_status == 409:
                # 409: created on an earlier attempt whose answer we never saw.
                outcome.done.append(record)
            else:
                error = result.get("error") or {}
                kind = error.get("type", "error") if isinstance(error, dict) else "error"
                reason = f"item HTTP {item_status} {kind}"
                if item_status in RETRYABLE_STATUSES:
                    outcome.retry.append((record, reason))
                else:
                    outcome.failed.append((record, reason))
        return outcome
