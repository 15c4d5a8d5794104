"""What every exporter shares: the record it exports, the result, the retry loop."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ramparts.telemetry import ecs
from ramparts.telemetry.backoff import Backoff

__all__ = ["ExportRecord", "ExportResult", "FailedRecord"]

_LEAF_HASH = re.compile(r"[0-9a-f]{64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Statuses that mean "try again later" for a request or a bulk item.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One audit-log entry to export.

    Args:
        index: the entry's position in the Merkle log.
        leaf_hash: its RFC 6962 leaf hash, 64 lowercase hex digits (``event.hash``).
        entry: the entry as stored: a security event dict (``SecurityEvent.to_dict()``)
            or an ECS log record (it has ``@timestamp``).
    """

    index: int
    leaf_hash: str
    entry: Mapping[str, Any]

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"export record index must be >= 0, got {self.index}")
        if not _LEAF_HASH.fullmatch(self.leaf_hash):
            raise ValueError(
                f"export record {self.index}: leaf_hash must be 64 lowercase hex digits"
            )

    def to_ecs(self) -> dict[str, Any]:
        """The record as one flat ECS document, with ``event.hash`` and ``event.sequence``."""
        if ecs.TIMESTAMP in self.entry:
            doc = dict(self.entry)
            doc[ecs.EVENT_HASH] = self.leaf_hash
            doc["event.sequence"] = self.index
            return doc
        return ecs.security_event_to_ecs(self.entry, leaf_hash=self.leaf_hash, sequence=self.index)

    def time_ns(self) -> int:
        """The entry's time as integer nanoseconds since the Unix epoch (exact, no float)."""
        raw = self.entry.get(ecs.TIMESTAMP, self.entry.get("time"))
        if isinstance(raw, int | float):
            return int(raw * 1_000_000) * 1000
        if not isinstance(raw, str):
            raise ValueError(f"export record {self.index} has no time")
        when = datetime.fromisoformat(raw)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - _EPOCH) // _MICROSECOND * 1000


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A record that was not exported, and why (status and error type, never the payload)."""

    index: int
    reason: str


@dataclass(slots=True)
class ExportResult:
    """What one :meth:`export` call achieved."""

    sent: int = 0
    failed: list[FailedRecord] = field(default_factory=list)
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(slots=True)
class SendOutcome:
    """How one request went, record by record: done, retry later, or failed for good."""

    done: list[ExportRecord] = field(default_factory=list)
    retry: list[tuple[ExportRecord, str]] = field(default_factory=list)
    failed: list[tuple[ExportRecord, str]] = field(default_factory=list)

    @classmethod
    def all_retry(cls, records: Sequence[ExportRecord], reason: str) -> SendOutcome:
        return cls(retry=[(r, reason) for r in records])

    @classmethod
    def all_failed(cls, records: Sequence[ExportRecord], reason: str) -> SendOutcome:
        return cls(failed=[(r, reason) for r in records])


def _default_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0))


class HTTPExporter:
    """Chunks records into requests and retries what the server says to retry.

    Subclasses implement :meth:`_send`, which makes one request and classifies
    every record in it. Exporting is a copy of the audit log to a search tool,
    so after ``max_attempts`` the remaining records are reported as failed (the
    caller keeps its cursor and exports them again later) instead of retrying
    forever.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        backoff: Backoff | None = None,
        max_attempts: int = 5,
        max_batch: int = 500,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"exporter base_url must be an http(s) URL, got {base_url!r}")
        if max_attempts < 1 or max_batch < 1:
            raise ValueError("exporter max_attempts and max_batch must be positive")
        self.base_url = base_url.rstrip("/")
        self._client_factory = client_factory or _default_client
        self._client: httpx.AsyncClient | None = None
        self._backoff = backoff or Backoff(base=0.5, cap=10.0)
        self._max_attempts = max_attempts
        self._max_batch = max_batch
        self._rng = random.Random()

    async def __aenter__(self) -> HTTPExporter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def export(self, records: Sequence[ExportRecord]) -> ExportResult:
        """Export ``records``; returns counts and the records that failed, with reasons."""
        if self._client is None:
            self._client = self._client_factory()
        result = ExportResult()
        for start in range(0, len(records), self._max_batch):
            await self._export_chunk(self._client, records[start : start + self._max_batch], result)
        return result

    async def _export_chunk(
        self, client: httpx.AsyncClient, records: Sequence[ExportRecord], result: ExportResult
    ) -> None:
        pending = list(records)
        attempt = 0
        while pending:
            attempt += 1
            result.requests += 1
            try:
                outcome = await self._send(client, pending)
            except httpx.TransportError as exc:
                outcome = SendOutcome.all_retry(pending, type(exc).__name__)
            result.sent += len(outcome.done)
            result.failed += [FailedRecord(r.index, why) for r, why in outcome.failed]
            if not outcome.retry:
                return
            if attempt >= self._max_attempts:
                result.failed += [
                    FailedRecord(r.index, f"{why} (gave up after {attempt} attempts)")
                    for r, why in outcome.retry
                ]
                return
            pending = [r for r, _ in outcome.retry]
            await asyncio.sleep(self._backoff.delay(attempt, self._rng))

    async def _send(
        self, client: httpx.AsyncClient, records: Sequence[ExportRecord]
    ) -> SendOutcome:  # pragma: no cover - abstract
        raise NotImplementedError
