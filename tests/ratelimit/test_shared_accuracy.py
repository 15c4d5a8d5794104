"""Three gateway processes share one Redis limit: together they stay within it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.services

WORKER = Path(__file__).with_name("accuracy_worker.py")
PROCESSES = 3
RATE, PER, BURST = 300, 1.0, 30
DURATION = 1.5


def test_three_processes_share_one_limit(redis_url: str, redis_prefix: str) -> None:
    """Admitted across all processes <= burst + rate * window (+1% +1), and the limit binds."""
    start_at = time.time() + 1.0  # time for every interpreter to import and connect
    args = [str(a) for a in (redis_url, redis_prefix, start_at, DURATION, RATE, PER, BURST)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        results.append(json.loads(out))

    admitted = sum(r["admitted"] for r in results)
    denied = sum(r["denied"] for r in results)
    # Every decision was taken by Redis between the earliest send and the latest reply.
    window = max(r["last"] for r in results) - min(r["first"] for r in results)
    ceiling = BURST + window * RATE / PER
    assert admitted <= ceiling * 1.01 + 1, (admitted, ceiling, results)
    # The limit was binding, and it was not starving either (else the test proves nothing).
    assert denied > admitted, results
    assert admitted >= BURST + 0.8 * DURATION * RATE / PER, (admitted, results)
    assert all(r["admitted"] > 0 for r in results), results
