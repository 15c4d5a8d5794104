"""Three gateway processes sharing one Redis admit no more than the limit (plus 1%).

The gateway runs as users run it, ``ramparts gateway run --workers 3`` (three
processes on one port, SO_REUSEPORT), with ``gateway.ratelimit`` pointing at the
real Redis; many client connections spread across the workers.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.gateway.conftest import topology_text

RATE, BURST, WINDOW = 40, 10, 2.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_three_workers_share_one_limit(
    tmp_path: Path, upstream, redis_url: str, redis_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    port = _port()
    routes = f"""
    - prefix: /v1/accounts
      service: accounts
      auth: none
      waf: "off"
      rate_limit: {{rate: {RATE}/s, burst: {BURST}, key: route}}
"""
    extra = f"""  ratelimit:
    backend: redis
    redis_url: {redis_url}
    prefix: "{redis_prefix}"
"""
    text = topology_text(upstream.port, routes=routes, gateway_extra=extra)
    text = text.replace("listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{port}")
    topology = tmp_path / "ramparts.yaml"
    topology.write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ramparts", "gateway", "run", "--topology", str(topology),
         "--workers", "3", "--plain-upstreams", "--access-log", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)

        async def hammer() -> tuple[int, int, float]:
            ok = limited = 0
            start = time.monotonic()

            async def client() -> None:
                nonlocal ok, limited
                # One keep-alive connection per client; the kernel spreads the
                # connections over the three workers.
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                    while time.monotonic() - start < WINDOW:
                        r = await c.get("/v1/accounts/1")
                        ok += r.status_code == 200
                        limited += r.status_code == 429

            await asyncio.gather(*(client() for _ in range(24)))
            return ok, limited, time.monotonic() - start

        ok, limited, elapsed = asyncio.run(hammer())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    ceiling = BURST + RATE * elapsed
    assert limited > 0, "the flood was never limited"
    assert ok <= ceiling * 1.01 + 1, f"admitted {ok} over {elapsed:.2f}s, ceiling {ceiling:.1f}"
    assert ok >= BURST  # the limit admits what it should, too
