"""The alert engine: events in, rules evaluated, alerts de-duplicated and sent.

Two ways in:

* offline: :meth:`AlertEngine.replay` over events (e.g. a JSON-lines file),
  with time taken from the events themselves;
* online: :meth:`AlertEngine.write` is an ``EventSink`` (add the engine to an
  ``EventEmitter``); it never blocks and never raises, it appends to a bounded
  inbox that an asyncio task drains. A full inbox drops and counts.

The core is synchronous and clock-free: :meth:`process_at_time` and
:meth:`tick_at_time` take the current time as an argument, so tests replay
exact sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ramparts.alerts._alert import Alert, build_alert
from ramparts.alerts._enrich import Enricher
from ramparts.alerts._rules import Rule, RuleSet, default_rules, rule_value
from ramparts.alerts._sinks import Sink, SinkStats, SinkWorker
from ramparts.alerts._state import CountWindow, Deduplicator, SilenceTracker
from ramparts.config import Topology
from ramparts.events import Outcome, SecurityEvent
from ramparts.masking import Masker

SILENCE_EVENT = "alerts.source_silent"
ENGINE_SERVICE = "alerts"
MAX_TYPES = 4096


@dataclass(frozen=True, slots=True)
class EngineStats:
    """A snapshot of the engine's counters."""

    events: int
    alerts: int
    suppressed: int  # repeats merged into an open alert by de-duplication
    dropped_events: int  # refused by write() because the inbox was full
    sinks: tuple[SinkStats, ...]


class AlertEngine:
    """Evaluates Sigma rules over security events and sends alerts to sinks.

    Args:
        rules: the rules (default: the built-in ones).
        sinks: where alerts go; each gets its own bounded queue and task (pass a
            :class:`SinkWorker` to choose its queue size, batching and retries).
        topology: for expected edges and known identities (``derived.*`` fields).
        dedup_window: seconds during which the same rule and group raise one alert.
        silence_after: seconds without events after which a service is reported
            silent (``alerts.source_silent``); None turns it off.
        clock: the wall clock for online use; replays use event time.
    """

    def __init__(
        self,
        rules: RuleSet | None = None,
        *,
        sinks: Iterable[Sink | SinkWorker] = (),
        topology: Topology | None = None,
        masker: Masker | None = None,
        dedup_window: float = 300.0,
        silence_after: float | None = 300.0,
        clock: Callable[[], float] = time.time,
        inbox_size: int = 10_000,
        sink_queue_size: int = 1000,
        tick_interval: float = 1.0,
    ) -> None:
        self.rules = rules if rules is not None else default_rules()
        self.masker = masker or Masker()
        self.enricher = Enricher(topology, self.masker)
        self.dedup = Deduplicator(dedup_window)
        self.silence = SilenceTracker(silence_after) if silence_after else None
        self.clock = clock
        self.workers = [
            s if isinstance(s, SinkWorker) else SinkWorker(s, queue_size=sink_queue_size)
            for s in sinks
        ]
        self.tick_interval = tick_interval
        self._windows = {r.key: CountWindow(r.window) for r in self.rules.rules if r.window}
        self._correlations: dict[str, list[Rule]] = {}
        for c in self.rules.correlations:
            for ref in c.refs:
                self._correlations.setdefault(ref, []).append(c)
        self._by_type: dict[str, tuple[Rule, ...]] = {}
        self.events = 0
        self.alerts = 0
        # Online state: the inbox is a deque (append and popleft are atomic), so
        # write() can be called from any thread without a lock.
        self._inbox: deque[SecurityEvent] = deque()
        self._inbox_size = inbox_size
        self.dropped_events = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._wakeup_pending = False
        self._tasks: list[asyncio.Task[None]] = []
        self.on_alert: Callable[[Alert], None] | None = None

    # -- the synchronous core ------------------------------------------------------------

    def process_at_time(self, event: SecurityEvent, now: float) -> list[Alert]:
        """Evaluate one event at wall time ``now``; the alerts to send, in order."""
        out = self.tick_at_time(now)
        if self.silence is not None and event.type != SILENCE_EVENT:
            self.silence.seen(event.service, event.time)
        out += self._evaluate(event, now)
        return out

    def tick_at_time(self, now: float) -> list[Alert]:
        """Advance time: report newly silent services and close de-duplication windows."""
        out = self.dedup.expire_at_time(now)
        if self.silence is not None:
            for service, last in self.silence.silent_at_time(now):
                out += self._evaluate(_silence_event(service, last, now), now)
        return out

    def flush(self) -> list[Alert]:
        """Close every de-duplication window: the final counts of merged alerts."""
        return self.dedup.flush()

    def replay(self, events: Iterable[SecurityEvent], *, until: float | None = None) -> list[Alert]:
        """Every alert the events raise, time taken from the events; windows flushed at the end.

        ``until`` advances time after the last event (to see a service go silent).
        """
        out: list[Alert] = []
        for e in events:
            out += self.process_at_time(e, e.time)
        if until is not None:
            out += self.tick_at_time(until)
        out += self.flush()
        return out

    def _evaluate(self, event: SecurityEvent, now: float) -> list[Alert]:
        self.events += 1
        record = self.enricher.record(event)
        at = event.time
        candidates: list[tuple[Rule, tuple[tuple[str, str], ...], int]] = []
        fired_corr: set[str] = set()
        for rule in self._candidates(event.type):
            if rule.matcher is None or not rule.matcher(record):
                continue
            if rule.window is not None:
                hit = self._count(rule, record, at)
                if hit is not None:
                    candidates.append(hit)
            elif rule.key not in self.rules.quiet:
                candidates.append((rule, _group(rule.group_by, record), 1))
            for corr in self._correlations.get(rule.key, ()):
                if corr.key in fired_corr:
                    continue  # one event counts once per correlation
                fired_corr.add(corr.key)
                hit = self._count(corr, record, at)
                if hit is not None:
                    candidates.append(hit)
        out: list[Alert] = []
        for rule, group, count in candidates:
            alert = build_alert(
                rule, record, group, count, masker=self.masker, fired_at=now, event_time=at
            )
            out += self.dedup.offer(alert, at, rule.dedup)
        self.alerts += sum(1 for a in out if not a.update)
        return out

    def _candidates(self, type_: str) -> tuple[Rule, ...]:
        """Detection rules whose type gate admits ``type_``, computed once per type."""
        found = self._by_type.get(type_)
        if found is None:
            found = tuple(
                r for r in self.rules.detections if r.gate is None or r.gate.admits(type_)
            )
            # Event types come from code, not from clients, but bound the memo anyway.
            if len(self._by_type) < MAX_TYPES:
                self._by_type[type_] = found
        return found

    def _count(
        self, rule: Rule, record: dict[str, Any], at: float
    ) -> tuple[Rule, tuple[tuple[str, str], ...], int] | None:
        assert rule.window is not None
        group = _group(rule.window.group_by, record)
        value = rule_value(record, rule.window.field) if rule.window.field else None
        n = self._windows[rule.key].add(tuple(v for _, v in group), at, value)
        if n is None or not rule.window.satisfied(n):
            return None
        return rule, group, n

    # -- online: an EventSink fed from anywhere, drained by a task ---------------------------

    def write(self, event: SecurityEvent) -> None:
        """Queue ``event`` for evaluation; never blocks, never raises (drops when full)."""
        if len(self._inbox) >= self._inbox_size:
            self.dropped_events += 1
            return
        self._inbox.append(event)
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or self._wakeup_pending:
            return
        self._wakeup_pending = True
        if threading.get_ident() == self._loop_thread:
            wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(wakeup.set)

    async def start(self) -> None:
        """Start the consumer, the ticker and one task per sink on the running loop."""
        if self._tasks:
            raise RuntimeError("alert engine already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        for w in self.workers:
            w.start()
        self._tasks = [
            self._loop.create_task(self._consume(), name="ramparts-alerts-consumer"),
            self._loop.create_task(self._tick(), name="ramparts-alerts-ticker"),
        ]
        if self._inbox:
            self._wakeup.set()

    async def _consume(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._wakeup_pending = False
            self._drain_inbox()
            await asyncio.sleep(0)

    def _drain_inbox(self) -> None:
        # Bounded per turn so a flood cannot starve the sink tasks on the same loop.
        for _ in range(1000):
            if not self._inbox:
                return
            event = self._inbox.popleft()
            self._dispatch(self.process_at_time(event, self.clock()))
        if self._inbox and self._wakeup is not None:
            self._wakeup.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self._dispatch(self.tick_at_time(self.clock()))

    def _dispatch(self, alerts: list[Alert]) -> None:
        for a in alerts:
            if self.on_alert is not None:
                self.on_alert(a)
            for w in self.workers:
                w.offer(a)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the inbox is empty and every sink queue is drained."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._inbox or self._wakeup_pending:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        for w in self.workers:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await w.drain(left):
                return False
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Evaluate what is queued, flush de-duplication, deliver (bounded), stop."""
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        while self._inbox:
            self._dispatch(self.process_at_time(self._inbox.popleft(), self.clock()))
        self._dispatch(self.flush())
        for w in self.workers:
            await w.aclose(timeout)

    def stats(self) -> EngineStats:
        return EngineStats(
            self.events,
            self.alerts,
            self.dedup.suppressed,
            self.dropped_events,
            tuple(w.stats() for w in self.workers),
        )


def _group(fields: tuple[str, ...], record: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((f, rule_value(record, f)) for f in fields)


def _silence_event(service: str, last: float, now: float) -> SecurityEvent:
    last_iso = datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds")
    return SecurityEvent(
        type=SILENCE_EVENT,
        service=service,
        # Like a dropped audit entry, a silent source is something denied to the
        # record; "deny" keeps it with the things a reviewer must look at.
        outcome=Outcome.DENY,
        reason=f"no events from {service} since {last_iso}",
        detail={"silent_for": round(now - last, 3), "last_seen": last_iso},
        time=now,
    )
