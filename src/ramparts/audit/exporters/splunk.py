"""Export to Splunk through the HTTP Event Collector (HEC).

Wire format (Splunk docs, "Format events for HTTP Event Collector")::

    POST {base_url}/services/collector/event
    Authorization: Splunk <HEC token>
    Content-Type: application/json

    {"time":1767225600.123,"host":"gw-1","source":"ramparts","sourcetype":"_json","event":{...}}{"time":...}

Events are JSON objects concatenated back to back in one body; ``time`` is
epoch seconds (milliseconds as the fraction). Success is 200
``{"text":"Success","code":0}``. A 400 with code 6 ("Invalid data format")
names ``invalid-event-number``: the events before it were indexed, that one is
rejected, the ones after it are sent again. 503 (code 9, "Server is busy") and
other 5xx or 429 are retried; 401/403 (token problems) are failures.
"""

from __future__ import annotations

import json
import socket
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

__all__ = ["SplunkHECExporter"]

EVENT_PATH = "/services/collector/event"
_INVALID_DATA_FORMAT = 6


class SplunkHECExporter(HTTPExporter):
    """Sends audit records to a Splunk HEC endpoint.

    Args:
        base_url: the HEC listener, ``https://splunk:8088``.
        token: the HEC token.
        host, source, sourcetype: Splunk's default fields on every event.
        index: the Splunk index, or None for the token's default.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: Secret,
        host: str | None = None,
        source: str = "ramparts",
        sourcetype: str = "_json",
        index: str | None = None,
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
        if not isinstance(token, Secret):
            raise TypeError("splunk token must be a Secret (from a file or memory), not a str")
        self._token = token
        self.host = host or socket.gethostname()
        self.source = source
        self.sourcetype = sourcetype
        self.index = index

    def __repr__(self) -> str:
        return f"SplunkHECExporter({self.base_url!r}, source={self.source!r})"

    def _event(self, record: ExportRecord) -> dict[str, Any]:
        event: dict[str, Any] = {
            "time": round(record.time_ns() / 1_000_000_000, 3),
            "host": self.host,
            "source": self.source,
            "sourcetype": self.sourcetype,
            "event": record.to_ecs(),
        }
        if self.index is not None:
            event["index"] = self.index
        return event

    async def _send(
        self, client: httpx.AsyncClient, records: Sequence[ExportRecord]
    ) -> SendOutcome:
        body = "".join(
            json.dumps(self._event(r), separators=(",", ":"), ensure_ascii=False, default=str)
            for r in records
        ).encode()
        response = await client.post(
            f"{self.base_url}{EVENT_PATH}",
            content=body,
            headers={
                "Authorization": f"Splunk {self._token.reveal()}",
                "Content-Type": "application/json",
            },
        )
        status = response.status_code
        code = _hec_code(response)
        if status == 200 and code == 0:
            return SendOutcome(done=list(records))
        if status == 200:
            return SendOutcome.all_retry(records, f"HEC 200 with code {code}")
        if status in RETRYABLE_STATUSES:
            return SendOutcome.all_retry(records, f"HTTP {status} (HEC code {code})")
        if status == 400 and code == _INVALID_DATA_FORMAT:
            bad = _invalid_event_number(response)
            if bad is not None and 0 <= bad < len(records):
                return SendOutcome(
                    done=list(records[:bad]),
                    failed=[(records[bad], "HEC code 6 invalid data format")],
                    retry=[(r, "after an invalid event") for r in records[bad + 1 :]],
                )
        return SendOutcome.all_failed(records, f"HTTP {status} (HEC code {code})")


def _hec_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _invalid_event_number(response: httpx.Response) -> int | None:
    try:
        number = response.json().get("invalid-event-number")
    except (ValueError, AttributeError):
        return None
    return number if isinstance(number, int) else None
