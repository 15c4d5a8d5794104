"""Log lines/s through Ramparts' structlog JSON pipeline vs stdlib logging + a JSON formatter.

Run by hand: ``.venv/bin/python bench/telemetry/bench_logging.py [lines]``.

Anchor: the stdlib ``logging`` module with a minimal JSON formatter (what most
services do without structlog). Every variant writes the same logical record
(message + three fields + correlation ids) to /dev/null, in one process, one
after another, best of 3 rounds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable

import structlog

from ramparts.telemetry.context import bind_correlation
from ramparts.telemetry.logging import configure_logging, resolve_masker

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


class StdlibJSONFormatter(logging.Formatter):
    """The anchor: a typical hand-written JSON formatter."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "@timestamp": self.formatTime(record),
                "log.level": record.levelname.lower(),
                "message": record.getMessage(),
                "service.name": "bench",
                "correlation_id": getattr(record, "correlation_id", None),
                "trace.id": getattr(record, "trace_id", None),
                "account": getattr(record, "account", None),
                "amount": getattr(record, "amount", None),
                "currency": getattr(record, "currency", None),
            },
            separators=(",", ":"),
        )


def timed(n: int, emit: Callable[[int], None]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            emit(i)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    devnull = open(os.devnull, "w")  # noqa: SIM115
    results: dict[str, float] = {}

    # Anchor: stdlib logging + JSON formatter on its own logger (not through our root handler).
    anchor = logging.getLogger("bench.anchor")
    anchor.propagate = False
    handler = logging.StreamHandler(devnull)
    handler.setFormatter(StdlibJSONFormatter())
    anchor.addHandler(handler)
    anchor.setLevel(logging.INFO)
    extra = {"correlation_id": "req-1", "trace_id": TRACE, "account": "0123456789",
             "amount": 1250, "currency": "NGN"}  # fmt: skip
    results["stdlib + json formatter (anchor)"] = timed(
        n, lambda i: anchor.info("transfer posted", extra=extra)
    )

    def structlog_variant(masker) -> float:
        configure_logging("bench", stream=devnull, masker=masker)
        log = structlog.get_logger("bench")
        with bind_correlation("req-1", trace_id=TRACE, span_id=SPAN):
            return timed(
                n,
                lambda i: log.info(
                    "transfer posted", account="0123456789", amount=1250, currency="NGN"
                ),
            )

    def stdlib_through_pipeline(masker) -> float:
        configure_logging("bench", stream=devnull, masker=masker)
        std = logging.getLogger("bench.std")
        fields = {"account": "0123456789", "amount": 1250, "currency": "NGN"}
        with bind_correlation("req-1", trace_id=TRACE, span_id=SPAN):
            return timed(n, lambda i: std.info("transfer posted", extra=fields))

    results["ramparts structlog pipeline, no masking"] = structlog_variant(False)
    results["stdlib via ramparts pipeline, no masking"] = stdlib_through_pipeline(False)
    real_masker = None
    try:
        real_masker = resolve_masker(None)
    except ImportError as exc:
        print(f"(masking unavailable: {exc})")
    if real_masker is not None:
        results["ramparts structlog pipeline + ramparts.masking"] = structlog_variant(real_masker)
        results["stdlib via ramparts pipeline + ramparts.masking"] = stdlib_through_pipeline(
            real_masker
        )

    anchor_rate = results["stdlib + json formatter (anchor)"]
    print(f"{n} lines per round, best of 3, Python {sys.version.split()[0]}")
    print(f"{'variant':52} {'lines/s':>10} {'vs anchor':>10}")
    for name, rate in results.items():
        print(f"{name:52} {rate:10,.0f} {rate / anchor_rate:9.2f}x")


if __name__ == "__main__":
    main()
