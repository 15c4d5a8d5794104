"""Running the gateway as a process: event loop, signals, file watching, workers.

``serve`` runs one gateway on uvloop until SIGTERM/SIGINT; SIGHUP (or a change
of the topology file's modification time, if ``watch`` is set) reloads it.
``serve_workers`` starts N such processes sharing the listen port through
SO_REUSEPORT (the kernel spreads connections across them) and forwards
SIGHUP and SIGTERM to each. Only worker 0 opens the admin listener; every
worker publishes a metrics snapshot each second to a shared private directory
and worker 0 adds them up on each scrape.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path

import uvloop

from ramparts.gateway._gateway import Gateway

__all__ = ["serve", "serve_workers"]

_WATCH_INTERVAL = 2.0
_IDENTITY_REFRESH = 30.0


def serve(build: Callable[[], Gateway], *, watch: bool = False) -> None:
    """Build and run one gateway in this process until told to stop."""
    uvloop.run(_serve(build, watch))


async def _serve(build: Callable[[], Gateway], watch: bool) -> None:
    gateway = build()
    await gateway.start()
    # Everything loaded so far (modules, config, keys) lives as long as the
    # process: move it out of the collector's way, so a full collection walks
    # only per-request garbage and does not stall every connection for
    # milliseconds (p99 latency).
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, functools.partial(_reload_all, gateway))
    tasks = []
    if watch and gateway.path is not None:
        tasks.append(loop.create_task(_watch(gateway)))
    if gateway.identity is not None and gateway.identity_dir is not None:
        tasks.append(loop.create_task(_refresh_identity(gateway)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await gateway.close()


def _reload_all(gateway: Gateway) -> None:
    """SIGHUP: pick up rotated SVID files, then the topology."""
    _refresh_identity_once(gateway)
    gateway.reload()


def _refresh_identity_once(gateway: Gateway) -> None:
    if gateway.identity is None or gateway.identity_dir is None:
        return
    try:
        # A changed SVID notifies the gateway, which rebuilds its upstream pools.
        gateway.identity.refresh_from_dir(gateway.identity_dir)
    except Exception as exc:  # keep serving with the SVID we have; say why loudly
        gateway.access_log.log("error", "gateway.identity_refresh_failed", reason=str(exc))


async def _refresh_identity(gateway: Gateway) -> None:
    """Re-read the SVID files the rotator writes, well within an SVID's half-life."""
    while True:
        await asyncio.sleep(_IDENTITY_REFRESH)
        _refresh_identity_once(gateway)


async def _watch(gateway: Gateway) -> None:
    """Reload when the topology file's mtime or size changes (polling: portable, cheap)."""
    path = gateway.path
    assert path is not None
    last = _stamp(path)
    while True:
        await asyncio.sleep(_WATCH_INTERVAL)
        now = _stamp(path)
        if now != last:
            last = now
            gateway.reload()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def serve_workers(target: Callable[[int], None], workers: int) -> int:
    """Run ``target(index)`` in ``workers`` processes; return the first non-zero exit code."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(i,), name=f"gateway-{i}") for i in range(workers)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = 0
    for proc in procs:
        proc.join()
        exitcode = proc.exitcode or 0
        # A worker stopped by the signal we forwarded ended as asked.
        if exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = code or (exitcode if exitcode > 0 else 1)
    return code
