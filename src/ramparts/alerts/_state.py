"""The engine's time-dependent state: count windows, de-duplication, silence.

All of it runs on times passed in (event time, or the injected clock), never on
``time.time()`` directly, so replays and tests are deterministic. Every map keyed
by values from events is bounded: the least recently used group is evicted.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar

from ramparts.alerts._alert import Alert
from ramparts.alerts._rules import Window

MAX_GROUPS: Final = 10_000
K = TypeVar("K")
V = TypeVar("V")


class _LRU(OrderedDict[K, V], Generic[K, V]):
    """An OrderedDict that forgets its least recently used key past ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def touch(self, key: K, default: V) -> V:
        if key in self:
            self.move_to_end(key)
            return self[key]
        self[key] = default
        if len(self) > self.limit:
            self.popitem(last=False)
        return default


class CountWindow:
    """Sliding-window counts per group for one rule's ``event_count`` or ``value_count``."""

    def __init__(self, window: Window, *, max_groups: int = MAX_GROUPS) -> None:
        self.window = window
        self._times: _LRU[tuple[str, ...], deque[float]] = _LRU(max_groups)
        self._values: _LRU[tuple[str, ...], dict[str, float]] = _LRU(max_groups)

    def add(self, group: tuple[str, ...], at: float, value: str | None = None) -> int | None:
        """Count ``at`` (and ``value``) for ``group``; the count in the window ending at ``at``.

        A value_count event without the counted field is not counted (None).
        """
        horizon = at - self.window.timespan
        if self.window.kind == "event_count":
            times = self._times.touch(group, deque())
            times.append(at)
            while times and times[0] <= horizon:
                times.popleft()
            return len(times)
        if value is None or value == "":
            return None
        values = self._values.touch(group, {})
        values[value] = max(at, values.get(value, at))
        for v in [v for v, t in values.items() if t <= horizon]:
            del values[v]
        return len(values)


@dataclass
class _Open:
    alert: Alert
    until: float
    count: int
    last_at: float


class Deduplicator:
    """Same rule and group within a window: one alert, with a count.

    The first alert goes out at once (latency matters); repeats inside the
    window only add to the count. When the window closes with repeats, one
    update with the final count goes out (``Alert.update``), with the same
    labels, so Alertmanager folds it into the alert it already has.
    """

    def __init__(self, window: float, *, max_keys: int = MAX_GROUPS) -> None:
        if window <= 0:
            raise ValueError(f"dedup window must be positive, got {window}")
        self.window = window
        self._open: _LRU[tuple[str, tuple[tuple[str, str], ...]], _Open] = _LRU(max_keys)
        self.suppressed = 0
        self._next_expiry = float("inf")  # no window closes before this: skip the scan

    def offer(self, alert: Alert, at: float, window: float | None = None) -> list[Alert]:
        """What to send for ``alert`` at time ``at``: itself if new, nothing if merged.

        An expired window for the same key is closed first, so its update (if it
        merged repeats) comes before the new alert.
        """
        key = alert.dedup_key
        st = self._open.get(key)
        if st is not None and at < st.until:
            st.count += 1
            st.last_at = max(st.last_at, alert.last_at)
            self.suppressed += 1
            return []
        out = []
        if st is not None:
            update = self._close(key)
            if update is not None:
                out.append(update)
        until = at + (window or self.window)
        self._open.touch(key, _Open(alert, until, alert.count, alert.last_at))
        self._next_expiry = min(self._next_expiry, until)
        out.append(alert)
        return out

    def expire_at_time(self, now: float) -> list[Alert]:
        """Close windows ending by ``now``; an update for each that merged repeats."""
        if now < self._next_expiry:
            return []
        done = [k for k, st in self._open.items() if st.until <= now]
        self._next_expiry = min(
            (st.until for k, st in self._open.items() if st.until > now), default=float("inf")
        )
        return [u for u in (self._close(k) for k in done) if u is not None]

    def flush(self) -> list[Alert]:
        """Close every window (shutdown, end of a replay)."""
        return [u for u in (self._close(k) for k in list(self._open)) if u is not None]

    def _close(self, key: tuple[str, tuple[tuple[str, str], ...]]) -> Alert | None:
        st = self._open.pop(key)
        if st.count == st.alert.count:
            return None
        return replace(st.alert, count=st.count, last_at=st.last_at, update=True)


class SilenceTracker:
    """Services that have gone quiet: no event for ``after`` seconds.

    Only services seen at least once are watched (a service that never spoke
    has no baseline). A silent service is reported once, and re-armed by its
    next event.
    """

    def __init__(self, after: float, *, max_services: int = MAX_GROUPS) -> None:
        if after <= 0:
            raise ValueError(f"silence threshold must be positive, got {after}")
        self.after = after
        self._last: _LRU[str, float] = _LRU(max_services)
        self._silent: set[str] = set()

    def seen(self, service: str, at: float) -> None:
        prev = self._last.touch(service, at)
        self._last[service] = max(prev, at)
        self._silent.discard(service)

    def silent_at_time(self, now: float) -> list[tuple[str, float]]:
        """Services newly silent at ``now``, with the time each was last heard from."""
        out = []
        for service, last in self._last.items():
            if service not in self._silent and now - last >= self.after:
                self._silent.add(service)
                out.append((service, last))
        return out
