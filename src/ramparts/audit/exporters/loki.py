"""Export to Grafana Loki through the push API.

Wire format (Loki docs, "POST /loki/api/v1/push", JSON form)::

    POST {base_url}/loki/api/v1/push
    Content-Type: application/json
    X-Scope-OrgID: <tenant>                         (multi-tenant Loki only)

    {"streams":[{"stream":{"job":"ramparts","service":"gateway","kind":"event","outcome":"deny"},
                 "values":[["<unix epoch nanoseconds, as a string>","<log line>"], ...]}]}

Success is 204. Labels are low-cardinality only: the configured static labels
plus ``service``, ``kind`` (event or log) and ``outcome`` or ``level``. Ids,
hashes, peers and reasons go into the line, never a label: each distinct label
set is a new stream in Loki, and per-request values would create millions.
Values in a stream are sent oldest first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

import httpx

from ramparts.audit.exporters._base import (
    RETRYABLE_STATUSES,
    ExportRecord,
    HTTPExporter,
    SendOutcome,
)
from ramparts.audit.exporters._secret import Secret
from ramparts.telemetry.backoff import Backoff

__all__ = ["LokiExporter"]

PUSH_PATH = "/loki/api/v1/push"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Values of the per-record labels are bounded sets; anything else becomes "other".
_KNOWN_OUTCOMES = frozenset({"allow", "deny"})
_KNOWN_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
_MAX_SERVICE_LABEL = 63  # a DNS label; service names come from the topology


class LokiExporter(HTTPExporter):
    """Sends audit records to Loki as JSON lines, grouped into low-cardinality streams.

    Args:
        base_url: Loki, ``https://loki:3100``.
        labels: static labels on every stream (``{"job": "ramparts", "env": "prod"}``).
        tenant: the ``X-Scope-OrgID`` header for multi-tenant Loki.
        bearer_token: sent as ``Authorization: Bearer ...`` (a gateway in front of Loki).
    """

    def __init__(
        self,
        base_url: str,
        *,
        labels: Mapping[str, str] | None = None,
        tenant: str | None = None,
        bearer_token: Secret | None = None,
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
        static = dict(labels or {"job": "ramparts"})
        for name in static:
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"loki label name {name!r} is not a valid label name")
            if name in ("service", "kind", "outcome", "level"):
                raise ValueError(f"loki label {name!r} is set per record and cannot be static")
        self.labels = static
        self.tenant = tenant
        self._bearer = bearer_token

    def __repr__(self) -> str:
        return f"LokiExporter({self.base_url!r}, labels={self.labels!r})"

    def _stream_labels(self, record: ExportRecord) -> dict[str, str]:
        entry = record.entry
        labels = dict(self.labels)
        service = entry.get("service", entry.get("service.name"))
        labels["service"] = (
            service
            if isinstance(service, str) and 0 < len(service) <= _MAX_SERVICE_LABEL
            else "other"
        )
        if "log.level" in entry:
            labels["kind"] = "log"
            level = entry["log.level"]
            labels["level"] = level if level in _KNOWN_LEVELS else "other"
        else:
            labels["kind"] = "event"
            outcome = entry.get("outcome")
            labels["outcome"] = outcome if outcome in _KNOWN_OUTCOMES else "other"
        return labels

    def _body(self, records: Sequence[ExportRecord]) -> bytes:
        streams: dict[tuple[tuple[str, str], ...], list[tuple[int, str]]] = {}
        for record in records:
            key = tuple(sorted(self._stream_labels(record).items()))
            line = json.dumps(
                record.to_ecs(), separators=(",", ":"), ensure_ascii=False, default=str
            )
            streams.setdefault(key, []).append((record.time_ns(), line))
        payload = {
            "streams": [
                {"stream": dict(key), "values": [[str(ns), line] for ns, line in sorted(values)]}
                for key, values in streams.items()
            ]
        }
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    async def _send(
        self, client: httpx.AsyncClient, records: Sequence[ExportRecord]
    ) -> SendOutcome:
        headers = {"Content-Type": "application/json"}
        if self.tenant is not None:
            headers["X-Scope-OrgID"] = self.tenant
        if self._bearer is not None:
            headers["Authorization"] = f"Bearer {self._bearer.reveal()}"
        response = await client.post(
            f"{self.base_url}{PUSH_PATH}", content=self._body(records), headers=headers
        )
        status = response.status_code
        if status in (200, 204):
            return SendOutcome(done=list(records))
        if status in RETRYABLE_STATUSES:
            return SendOutcome.all_retry(records, f"HTTP {status}")
        return SendOutcome.all_failed(records, f"HTTP {status}")
