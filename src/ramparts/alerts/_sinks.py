"""Alert sinks and the worker that feeds each one.

A sink delivers a batch of alerts (``async send(alerts)``) and raises
:class:`RetryableSinkError` for what may pass later (5xx, 429, timeouts,
refused connections) or :class:`SinkError` for what will not (other 4xx).

A :class:`SinkWorker` owns one sink: a bounded queue the engine fills with
``offer`` (never waits; a full queue drops and counts), and a task that sends
batches with exponential backoff. A slow or dead sink therefore costs the
engine nothing but dropped alerts on that one sink, which the stats show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from ramparts.alerts._alert import Alert
from ramparts.alerts._errors import RetryableSinkError, SinkError
from ramparts.alerts._formats import alertmanager_payloads, slack_payload, webhook_payload

log = logging.getLogger("ramparts.alerts")


class Sink(Protocol):
    """Somewhere alerts go."""

    name: str

    async def send(self, alerts: Sequence[Alert]) -> None: ...

    async def aclose(self) -> None: ...


class HTTPSink:
    """POSTs JSON; subclasses say what JSON (one or more bodies per batch)."""

    name = "http"

    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"sink URL must be http:// or https://, got {url!r}")
        self.url = url
        self._client = httpx.AsyncClient(
            timeout=timeout,
            headers={
                "content-type": "application/json",
                "user-agent": "ramparts-alerts/1",
                **(headers or {}),
            },
        )

    def bodies(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def send(self, alerts: Sequence[Alert]) -> None:
        for body in self.bodies(alerts):
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            try:
                resp = await self._client.post(self.url, content=data)
            except httpx.TimeoutException as exc:
                raise RetryableSinkError(f"{self.name}: timed out posting to {self.url}") from exc
            except httpx.TransportError as exc:
                raise RetryableSinkError(
                    f"{self.name}: cannot reach {self.url}: {type(exc).__name__}"
                ) from exc
            if resp.status_code >= 500 or resp.status_code == 429:
                raise RetryableSinkError(f"{self.name}: {self.url} answered {resp.status_code}")
            if resp.status_code >= 300:
                raise SinkError(f"{self.name}: {self.url} refused the alert: {resp.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()


class AlertmanagerWebhookSink(HTTPSink):
    """Alertmanager's webhook format (version "4"), for any receiver that speaks it."""

    name = "alertmanager"

    def __init__(
        self,
        url: str,
        *,
        receiver: str = "ramparts",
        external_url: str = "",
        generator_url: str = "",
        group_by: Sequence[str] = ("alertname",),
        max_alerts: int = 0,
        **kw: Any,
    ) -> None:
        super().__init__(url, **kw)
        self.receiver = receiver
        self.external_url = external_url
        self.generator_url = generator_url
        self.group_by = tuple(group_by)
        self.max_alerts = max_alerts

    def bodies(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        return alertmanager_payloads(
            alerts,
            receiver=self.receiver,
            external_url=self.external_url,
            generator_url=self.generator_url,
            group_by=self.group_by,
            max_alerts=self.max_alerts,
        )


class WebhookSink(HTTPSink):
    """Ramparts' own JSON: every alert field, the masked sample event included."""

    name = "webhook"

    def bodies(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        return [webhook_payload(alerts)]


class SlackSink(HTTPSink):
    """A Slack incoming webhook (or anything that takes ``{"text", "blocks"}``)."""

    name = "slack"

    def bodies(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        return [slack_payload(alerts)]


class LogSink:
    """Writes each alert as one JSON line to a logger (``ramparts.alerts`` by default)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.WARNING):
        self.logger = logger or log
        self.level = level

    async def send(self, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            self.logger.log(self.level, "%s", json.dumps(a.to_dict(), sort_keys=True, default=str))

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class SinkStats:
    """A snapshot of one sink worker's counters."""

    sink: str
    sent: int
    dropped: int  # refused at offer: the queue was full
    failed: int  # given up after retries, or refused outright
    retries: int
    queued: int


class SinkWorker:
    """One sink behind a bounded queue, sent from its own task with retry and backoff."""

    def __init__(
        self,
        sink: Sink,
        *,
        queue_size: int = 1000,
        max_batch: int = 64,
        max_attempts: int = 4,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if queue_size < 1 or max_batch < 1 or max_attempts < 1:
            raise ValueError("queue_size, max_batch and max_attempts must be at least 1")
        self.sink = sink
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._busy = 0
        self.sent = self.dropped = self.failed = self.retries = 0
        # Hook for measurement: called with each alert once its batch is delivered.
        self.on_delivered: Callable[[Alert], None] | None = None

    def offer(self, alert: Alert) -> bool:
        """Queue ``alert`` without waiting; False (and counted) if the queue is full."""
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"ramparts-alerts-sink-{self.sink.name}"
            )

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._busy = len(batch)
            try:
                await self._deliver(batch)
            finally:
                self._busy = 0
                for _ in batch:
                    self._queue.task_done()

    async def _deliver(self, batch: list[Alert]) -> None:
        for attempt in range(self.max_attempts):
            try:
                await self.sink.send(batch)
            except RetryableSinkError as exc:
                if attempt + 1 == self.max_attempts:
                    log.warning(
                        "alert sink %s gave up on %d alerts: %s", self.sink.name, len(batch), exc
                    )
                    self.failed += len(batch)
                    return
                self.retries += 1
                await self._sleep(min(self.max_backoff, self.backoff * 2**attempt))
            except SinkError as exc:
                log.warning("alert sink %s refused %d alerts: %s", self.sink.name, len(batch), exc)
                self.failed += len(batch)
                return
            except Exception:
                log.exception("alert sink %s failed", self.sink.name)
                self.failed += len(batch)
                return
            else:
                self.sent += len(batch)
                if self.on_delivered is not None:
                    for a in batch:
                        self.on_delivered(a)
                return

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to empty; True if it did."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop and close the sink."""
        if self._task is not None:
            await self.drain(timeout)
            self.failed += self._busy  # a batch still in flight when time ran out
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.failed += self._queue.qsize()  # left undelivered at shutdown
        await self.sink.aclose()

    def stats(self) -> SinkStats:
        return SinkStats(
            self.sink.name,
            self.sent,
            self.dropped,
            self.failed,
            self.retries,
            self._queue.qsize() + self._busy,
        )
