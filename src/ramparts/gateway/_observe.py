"""Access log lines and Prometheus metrics, one of each per request.

The access log is one JSON object a line, buffered and flushed at most every
``flush_interval`` seconds (or when the buffer is large), so logging costs a
``json.dumps`` per request and not a system call.
"""

from __future__ import annotations

import json
import os
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ramparts.masking import Masker

if TYPE_CHECKING:
    from ramparts.gateway._request import Request

__all__ = ["AccessLog", "GatewayMetrics"]

_FLUSH_BYTES = 64 * 1024
_MASK_CACHE = 4096
_MAX_SERIES = 4096
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class AccessLog:
    """Writes one JSON line per finished request to a text stream.

    The path and the subject come from the client (or its token) and may hold
    PII (a phone number, a card number, an e-mail address in a URL), so they
    pass through ``ramparts.masking`` first; the query string is never logged.
    Masked paths are cached (bounded), since hot paths repeat.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        enabled: bool = True,
        masker: Callable[[str], str] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        self.mask = masker if masker is not None else Masker().mask_text
        self._masked: dict[str, str] = {}
        self._buffer: list[str] = []
        self._size = 0

    def _mask(self, text: str | None) -> str | None:
        if not text:
            return text
        hit = self._masked.get(text)
        if hit is None:
            hit = self.mask(text)
            if len(self._masked) >= _MASK_CACHE:
                self._masked.clear()
            self._masked[text] = hit
        return hit

    def record(self, req: Request, latency: float) -> None:
        if not self.enabled:
            return
        route = req.route
        line = json.dumps(
            {
                "time": round(time.time(), 6),
                "event": "access",
                "correlation_id": req.correlation_id or None,
                "trace_id": req.trace_id,
                "client_ip": req.client_ip,
                "method": req.method or None,
                "path": self._mask(req.path),
                "route": route.prefix if route is not None else None,
                "service": route.service if route is not None else None,
                "status": req.status,
                "latency_ms": round(latency * 1000, 3),
                "subject": self._mask(req.subject),
            },
            separators=(",", ":"),
        )
        self._buffer.append(line)
        self._size += len(line) + 1
        if self._size >= _FLUSH_BYTES:
            self.flush()

    def log(self, level: str, message: str, **fields: Any) -> None:
        """An operational log line (reload results, errors), written at once."""
        entry = {"time": round(time.time(), 6), "level": level, "event": message, **fields}
        self._buffer.append(json.dumps(entry, separators=(",", ":"), default=str))
        self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = "\n".join(self._buffer) + "\n"
        self._buffer.clear()
        self._size = 0
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed log stream must not take the data path down


class GatewayMetrics(Collector):
    """The gateway's Prometheus metrics, kept in plain dicts and rendered when scraped.

    prometheus-client's labelled Counter and Histogram take a lock and a
    label lookup per update, several microseconds per request on the hot
    path; a dict increment on the event loop's thread needs neither.

    With several worker processes each worker :meth:`publish` es a snapshot
    to a shared directory, and the worker serving ``/metrics`` adds the other
    workers' latest snapshots (:meth:`read_peers_from`), so a scrape sees the
    whole gateway.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.denies: dict[str, int] = {}
        self.upstream_errors: dict[tuple[str, int], int] = {}
        self.reloads: dict[str, int] = {}
        self.generation = 0
        self.connections: Callable[[], int] = lambda: 0
        self._peer_dir: Path | None = None
        self._own_name: str | None = None
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)

    # -- updates (event loop thread) ----------------------------------------

    def observe(self, req: Request, latency: float) -> None:
        route = req.route.prefix if req.route is not None else "none"
        key = (route, req.status)
        counts = self.requests
        # routes x statuses is small unless something is wrong: bound it anyway.
        if key in counts or len(counts) < _MAX_SERIES:
            counts[key] = counts.get(key, 0) + 1
        hist = self.buckets.get(route)
        if hist is None:
            if len(self.buckets) >= _MAX_SERIES:
                return
            hist = self.buckets[route] = [0] * (len(_LATENCY_BUCKETS) + 1)
            self.sums[route] = 0.0
        hist[bisect_left(_LATENCY_BUCKETS, latency)] += 1
        self.sums[route] += latency

    def deny(self, type_: str) -> None:
        if type_ in self.denies or len(self.denies) < _MAX_SERIES:
            self.denies[type_] = self.denies.get(type_, 0) + 1

    def upstream_error(self, service: str, status: int) -> None:
        key = (service, status)
        self.upstream_errors[key] = self.upstream_errors.get(key, 0) + 1

    def reload(self, result: str) -> None:
        self.reloads[result] = self.reloads.get(result, 0) + 1

    # -- several workers ----------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": [[r, s, n] for (r, s), n in self.requests.items()],
            "buckets": {r: list(h) for r, h in self.buckets.items()},
            "sums": dict(self.sums),
            "denies": dict(self.denies),
            "upstream_errors": [[svc, s, n] for (svc, s), n in self.upstream_errors.items()],
            "reloads": dict(self.reloads),
            "generation": self.generation,
            "connections": self.connections(),
        }

    def publish(self, directory: str | os.PathLike[str], name: str) -> None:
        """Write this worker's snapshot atomically as ``<directory>/<name>.json``."""
        target = Path(directory) / f"{name}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        os.replace(tmp, target)

    def read_peers_from(self, directory: str | os.PathLike[str], own_name: str) -> None:
        """Add the snapshots other workers publish in ``directory`` to every scrape."""
        self._peer_dir = Path(directory)
        self._own_name = own_name

    def _peers(self) -> list[dict[str, Any]]:
        if self._peer_dir is None:
            return []
        out = []
        for path in sorted(self._peer_dir.glob("*.json")):
            if path.stem == self._own_name:
                continue
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue  # a worker mid-restart: its next snapshot will be whole
        return out

    # -- scrape -------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        snaps = [self.snapshot(), *self._peers()]
        requests: dict[tuple[str, str], int] = {}
        buckets: dict[str, list[int]] = {}
        sums: dict[str, float] = {}
        denies: dict[str, int] = {}
        errors: dict[tuple[str, str], int] = {}
        reloads: dict[str, int] = {}
        for snap in snaps:
            for route, status, n in snap["requests"]:
                requests[(route, str(status))] = requests.get((route, str(status)), 0) + n
            for route, hist in snap["buckets"].items():
                acc = buckets.setdefault(route, [0] * len(hist))
                for i, n in enumerate(hist):
                    acc[i] += n
                sums[route] = sums.get(route, 0.0) + snap["sums"][route]
            for type_, n in snap["denies"].items():
                denies[type_] = denies.get(type_, 0) + n
            for svc, status, n in snap["upstream_errors"]:
                errors[(svc, str(status))] = errors.get((svc, str(status)), 0) + n
            for result, n in snap["reloads"].items():
                reloads[result] = reloads.get(result, 0) + n

        family = CounterMetricFamily(
            "ramparts_gateway_requests",
            "Requests answered, by route and status.",
            labels=["route", "status"],
        )
        for (route, status), n in sorted(requests.items()):
            family.add_metric([route, status], n)
        yield family
        latency = HistogramMetricFamily(
            "ramparts_gateway_request_duration_seconds",
            "Time from request start to response end, by route.",
            labels=["route"],
        )
        for route, hist in sorted(buckets.items()):
            cumulative, total = [], 0
            for bound, n in zip((*_LATENCY_BUCKETS, float("inf")), hist, strict=True):
                total += n
                cumulative.append(("+Inf" if bound == float("inf") else repr(bound), total))
            latency.add_metric([route], cumulative, sums[route])
        yield latency
        family = CounterMetricFamily(
            "ramparts_gateway_denies", "Requests denied, by event type.", labels=["type"]
        )
        for type_, n in sorted(denies.items()):
            family.add_metric([type_], n)
        yield family
        family = CounterMetricFamily(
            "ramparts_gateway_upstream_errors",
            "Upstream failures, by service and status.",
            labels=["service", "status"],
        )
        for (svc, status), n in sorted(errors.items()):
            family.add_metric([svc, status], n)
        yield family
        family = CounterMetricFamily(
            "ramparts_gateway_reloads", "Configuration reloads, by result.", labels=["result"]
        )
        for result, n in sorted(reloads.items()):
            family.add_metric([result], n)
        yield family
        yield GaugeMetricFamily(
            "ramparts_gateway_config_generation",
            "Lowest configuration generation in use by a worker.",
            value=min(snap["generation"] for snap in snaps),
        )
        yield GaugeMetricFamily(
            "ramparts_gateway_workers",
            "Worker processes whose counts are included.",
            value=len(snaps),
        )
        yield GaugeMetricFamily(
            "ramparts_gateway_client_connections",
            "Open client connections, all workers.",
            value=sum(snap["connections"] for snap in snaps),
        )
