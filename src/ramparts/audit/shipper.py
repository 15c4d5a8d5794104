"""Ship a process's security events and logs to the audit log server, losing nothing.

>>> import tempfile
>>> shipper = Shipper(tempfile.mkdtemp() + "/buf", "https://audit.internal:8443", service="gw")
>>> shipper.submit({"type": "jwt.rejected", "outcome": "deny"})  # sync: appends to disk only
True
>>> shipper.statistics().submitted
1
>>> shipper.buffer.close()

In a service: ``shipper.start()`` inside the running event loop starts the
sending task, ``await shipper.flush(timeout=5)`` waits (bounded) until what was
submitted is acknowledged, and ``await shipper.aclose()`` stops it; whatever is
unacknowledged stays on disk for the next start.

Path of an entry::

    submit() -> DiskBuffer (append, on disk) -> batch (id on disk first) -> POST /v1/ingest
             -> 200 {"batch_id", "first_index", "count"} -> ack (segments deleted)

The server contract: ``POST {base_url}/v1/ingest`` with
``{"batch_id": "<id>", "entries": [<objects>]}`` answers 200
``{"batch_id", "first_index", "count"}``; re-sending a batch id returns the
original answer and appends nothing. Because the id is chosen and fsync'd
before the first send and the same entries are re-read from disk on every
retry, delivery is exactly-once end to end even across a ``kill -9``.

Failures:

* connection errors, timeouts, 408, 429 and 5xx are retried forever with capped,
  fully-jittered exponential backoff (``Retry-After`` is honoured up to the cap);
  the buffer keeps accepting (and, when full, drops oldest; see
  :mod:`ramparts.telemetry.diskbuffer`);
* any other 4xx, or a 200 whose body does not acknowledge exactly this batch,
  is a batch the server will never accept as is: it is written to
  ``<directory>/rejected/<batch_id>.json`` (0600), counted, and skipped, so one
  poisoned batch cannot stop the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ramparts.events import Outcome, SecurityEvent
from ramparts.telemetry.backoff import Backoff
from ramparts.telemetry.diskbuffer import DiskBuffer, PendingBatch

__all__ = ["Backoff", "Shipper", "ShipperSink", "ShipperStatistics"]

_log = logging.getLogger(__name__)

INGEST_PATH = "/v1/ingest"
_REJECTED_DIR = "rejected"
# Statuses that mean "not now" rather than "never" (RFC 9110 15.5.9, RFC 6585 4).
_RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ShipperStatistics:
    """A snapshot of what the shipper has done since it started."""

    submitted: int
    shipped_entries: int
    shipped_batches: int
    retries: int
    rejected_batches: int
    dropped: int
    refused: int
    corrupt: int
    disk_bytes: int


def _default_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0))


class Shipper:
    """Buffers entries on disk and delivers them to the audit log server in batches.

    Args:
        directory: the buffer directory (0700; see :class:`DiskBuffer`).
        base_url: the audit server, ``https://host:port`` (``http`` only for tests).
        service: the name written into overflow events.
        client_factory: builds the ``httpx.AsyncClient``; pass one configured for
            mTLS (``verify=ssl_context``) in a deployment.
        max_bytes, segment_bytes, fsync_each_append: the buffer's bounds and durability.
        batch_max_entries, batch_max_bytes: how much one request carries.
        backoff: retry pacing.
        idle_interval: how often an idle shipper looks at the buffer even without a wakeup.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        base_url: str,
        *,
        service: str,
        client_factory: Callable[[], httpx.AsyncClient] = _default_client,
        max_bytes: int = 64 * 1024 * 1024,
        segment_bytes: int | None = None,
        fsync_each_append: bool = False,
        batch_max_entries: int = 500,
        batch_max_bytes: int = 512 * 1024,
        backoff: Backoff | None = None,
        idle_interval: float = 1.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"shipper base_url must be an http(s) URL, got {base_url!r}")
        if not service:
            raise ValueError("shipper needs a service name")
        if batch_max_entries < 1 or batch_max_bytes < 1:
            raise ValueError("shipper batch limits must be positive")
        self.service = service
        self.ingest_url = base_url.rstrip("/") + INGEST_PATH
        self.buffer = DiskBuffer(
            directory,
            max_bytes=max_bytes,
            segment_bytes=segment_bytes,
            fsync_each_append=fsync_each_append,
            overflow_entry=self._overflow_event,
        )
        self._client_factory = client_factory
        self._batch_max_entries = batch_max_entries
        self._batch_max_bytes = batch_max_bytes
        self._backoff = backoff or Backoff()
        self._idle_interval = idle_interval
        self._rng = random.Random()
        # Per-run state: set by start().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Wakeups may come from any thread; this flag keeps it to one call_soon per idle period.
        self._wake_lock = threading.Lock()
        self._wake_pending = False
        # Counters, written only by the sending task.
        self._shipped_entries = 0
        self._shipped_batches = 0
        self._retries = 0
        self._rejected = 0

    def _overflow_event(self, dropped: int) -> dict[str, Any]:
        """The entry that records a gap: it goes into the audit log in place of what was lost.

        It is a security event like any other (``shipper.entries_dropped``) with outcome
        ``deny`` (entries were denied their place in the log), so alert rules and the
        console see lost audit data the way they see any refused action.
        """
        return SecurityEvent(
            type="shipper.entries_dropped",
            service=self.service,
            outcome=Outcome.DENY,
            reason=f"audit buffer full ({self.buffer.max_bytes} bytes): dropped {dropped} entries",
            detail={"dropped": dropped},
        ).to_dict()

    # -- producer side -------------------------------------------------------------------

    def submit(self, entry: Mapping[str, Any]) -> bool:
        """Append ``entry`` to the disk buffer and wake the sender; never waits on the network.

        Returns False if the buffer was full and nothing could be dropped (the entry
        is counted as refused). Safe to call from any thread.

        Raises:
            EntryTooLargeError: the entry can never fit in a segment.
            TypeError, ValueError: the entry is not JSON-serialisable.
        """
        accepted = self.buffer.append(entry)
        self._wake()
        return accepted

    def submit_json(self, line: str) -> bool:
        """Like :meth:`submit` for an entry already rendered as one JSON object line.

        This is the ``forward`` hook for :func:`ramparts.telemetry.logging.configure_logging`:
        the line shipped is byte for byte the masked line that was logged.
        """
        accepted = self.buffer.append_json(line)
        self._wake()
        return accepted

    def _wake(self) -> None:
        loop, event = self._loop, self._wakeup
        if loop is None or event is None:
            return
        with self._wake_lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop has closed; the entry is on disk for the next run
            with self._wake_lock:
                self._wake_pending = False

    # -- the sending task ----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the sending task on the running event loop."""
        if self._task is not None:
            raise RuntimeError("shipper already started")
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="ramparts-audit-shipper")
        return self._task

    async def run(self) -> None:
        """Deliver batches until cancelled; started by :meth:`start`.

        An unexpected error in one round is logged and retried after a backoff
        rather than ending the task: a shipper that silently stopped would turn
        every later entry into a quiet loss.
        """
        async with self._client_factory() as client:
            failures = 0
            while not self._stopping:
                try:
                    await self._round(client)
                    failures = 0
                except Exception:
                    failures += 1
                    _log.exception(
                        "audit shipper round failed",
                        extra={"event_action": "shipper.error"},
                    )
                    await asyncio.sleep(self._backoff.delay(failures, self._rng))

    async def _round(self, client: httpx.AsyncClient) -> None:
        """Send one batch, or wait for entries if there is none."""
        assert self._wakeup is not None
        # Re-arm the wakeup before looking at the buffer, so an entry appended
        # after the look always finds the event clear and sets it.
        with self._wake_lock:
            self._wake_pending = False
        self._wakeup.clear()
        batch = await asyncio.to_thread(
            self.buffer.next_batch, self._batch_max_entries, self._batch_max_bytes
        )
        if batch is None:
            await self._notify_progress()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._idle_interval)
            return
        if batch.entries:
            await self._deliver(client, batch)
        await asyncio.to_thread(self.buffer.ack, batch)
        await self._notify_progress()

    async def _notify_progress(self) -> None:
        assert self._progress is not None
        async with self._progress:
            self._progress.notify_all()

    async def _deliver(self, client: httpx.AsyncClient, batch: PendingBatch) -> None:
        """Send ``batch`` until the server acknowledges it or rejects it for good."""
        body = (
            f'{{"batch_id":{json.dumps(batch.batch_id)},"entries":[{",".join(batch.entries)}]}}'
        ).encode()
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await client.post(
                    self.ingest_url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.status_code == 200:
                    reason = self._ack_problem(response, batch)
                    if reason is None:
                        self._shipped_entries += len(batch.entries)
                        self._shipped_batches += 1
                        return
                    await asyncio.to_thread(self._reject, batch, body, reason)
                    return
                if 400 <= response.status_code < 500 and response.status_code not in _RETRYABLE_4XX:
                    await asyncio.to_thread(
                        self._reject, batch, body, f"HTTP {response.status_code}"
                    )
                    return
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            attempt += 1
            self._retries += 1
            delay = self._backoff.delay(attempt, self._rng)
            if retry_after is not None:
                delay = min(max(delay, retry_after), self._backoff.cap)
            _log.warning(
                "audit ingest failed (%s); retry %d in %.2fs", problem, attempt, delay,
                extra={"event_action": "shipper.retry", "batch_id": batch.batch_id},
            )  # fmt: skip
            await asyncio.sleep(delay)

    @staticmethod
    def _ack_problem(response: httpx.Response, batch: PendingBatch) -> str | None:
        """Why a 200 does not acknowledge ``batch``, or None if it does."""
        try:
            ack = response.json()
        except ValueError:
            return "200 with a body that is not JSON"
        if not isinstance(ack, dict) or ack.get("batch_id") != batch.batch_id:
            return "200 acknowledging a different batch_id"
        count = ack.get("count")
        if type(count) is not int or count != len(batch.entries):
            return f"200 acknowledging count={count!r}, sent {len(batch.entries)}"
        if type(ack.get("first_index")) is not int:
            return "200 without an integer first_index"
        return None

    def _reject(self, batch: PendingBatch, body: bytes, reason: str) -> None:
        """Keep a batch the server will not take, 0600, for a person to look at."""
        folder = self.buffer.directory / _REJECTED_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{batch.batch_id}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._rejected += 1
        _log.error(
            "audit server rejected batch %s (%s); kept in %s",
            batch.batch_id,
            reason,
            Path(_REJECTED_DIR) / path.name,
            extra={"event_action": "shipper.batch_rejected"},
        )

    async def flush(self, timeout: float) -> None:
        """Wait until everything submitted before this call is acknowledged (or dropped).

        Raises:
            TimeoutError: not drained within ``timeout`` seconds.
            RuntimeError: the shipper is not running.
        """
        if self._progress is None or self._task is None:
            raise RuntimeError("shipper is not running; call start() first")
        target = self.buffer.write_position()
        self._wake()
        async with asyncio.timeout(timeout), self._progress:
            while not self.buffer.is_drained(target):
                if self._task.done():
                    raise RuntimeError("shipper task has stopped") from self._task.exception()
                await self._progress.wait()

    async def aclose(self) -> None:
        """Stop sending; whatever is not acknowledged stays on disk for the next start."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._loop = None
        self.buffer.close()

    def statistics(self) -> ShipperStatistics:
        buf = self.buffer.statistics()
        return ShipperStatistics(
            submitted=buf.appended + buf.refused,
            shipped_entries=self._shipped_entries,
            shipped_batches=self._shipped_batches,
            retries=self._retries,
            rejected_batches=self._rejected,
            dropped=buf.dropped,
            refused=buf.refused,
            corrupt=buf.corrupt,
            disk_bytes=buf.disk_bytes,
        )


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (RFC 9110 10.2.3); the HTTP-date form is ignored."""
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


class ShipperSink:
    """An :class:`ramparts.events.EventSink` that ships each event to the audit log."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def write(self, event: SecurityEvent) -> None:
        """Buffer the event; raises if the buffer refused it, as the sink contract asks."""
        if not self.shipper.submit(event.to_dict()):
            raise RuntimeError(f"audit buffer refused event {event.type!r}: buffer full")
