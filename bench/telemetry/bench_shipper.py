"""Shipper entries per second to a local audit ingest server, against two no-disk anchors.

Run by hand: ``.venv/bin/python bench/telemetry/bench_shipper.py [entries]``.

The server is a separate process (uvicorn + a 30-line ASGI app implementing the
ingest contract: dedupe by batch_id, append), on 127.0.0.1. Variants, one run:

* anchor A, "POST per entry": each entry sent on its own, no buffer (what a naive
  sink does; loses entries whenever the server is down);
* anchor B, "in-memory batches": the same batch size as the shipper, straight from
  a list, no disk (loses everything buffered on a crash);
* the shipper: submit() to the disk buffer, batches with ids fsync'd first,
  acks, segment deletion; measured producer-side (submit only) and end to end.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ramparts.audit.shipper import Shipper

SERVER = r"""
import json, sys, uvicorn
results, entries = {}, []
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    doc = json.loads(body)
    result = results.get(doc["batch_id"])
    if result is None:
        result = {"batch_id": doc["batch_id"], "first_index": len(entries),
                  "count": len(doc["entries"])}
        entries.extend(doc["entries"])
        results[doc["batch_id"]] = result
    data = json.dumps(result).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            loop="uvloop", http="httptools")
"""

BATCH = 500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("bench server did not start")


def entry(i: int) -> dict:
    return {
        "time": "2026-01-01T00:00:00.000000+00:00",
        "type": "jwt.rejected",
        "service": "gateway",
        "outcome": "deny",
        "reason": "token expired",
        "peer": "203.0.113.9",
        "correlation_id": f"{i:032x}",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "detail": {"kid": "k1", "n": i},
    }


async def per_entry(url: str, n: int) -> float:
    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        for i in range(n):
            body = {"batch_id": secrets.token_hex(16), "entries": [entry(i)]}
            (await client.post(url + "/v1/ingest", json=body)).raise_for_status()
        return n / (time.perf_counter() - start)


async def in_memory_batches(url: str, n: int) -> float:
    async with httpx.AsyncClient() as client:
        start = time.perf_counter()
        items = [entry(i) for i in range(n)]
        for k in range(0, n, BATCH):
            body = json.dumps({"batch_id": secrets.token_hex(16), "entries": items[k : k + BATCH]})
            response = await client.post(
                url + "/v1/ingest", content=body, headers={"Content-Type": "application/json"}
            )
            response.raise_for_status()
        return n / (time.perf_counter() - start)


async def shipper(url: str, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        s = Shipper(Path(tmp) / "buf", url, service="bench", batch_max_entries=BATCH,
                    max_bytes=256 * 1024 * 1024)  # fmt: skip
        s.start()
        start = time.perf_counter()
        for i in range(n):
            s.submit(entry(i))
        submitted = time.perf_counter()
        await s.flush(timeout=300)
        done = time.perf_counter()
        stats = s.statistics()
        await s.aclose()
        assert stats.shipped_entries == n, stats
        return n / (submitted - start), n / (done - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        a = asyncio.run(per_entry(url, min(n, 5_000)))
        b = asyncio.run(in_memory_batches(url, n))
        producer, end_to_end = asyncio.run(shipper(url, n))
    finally:
        server.terminate()
        server.wait(10)
    print(f"{n} entries (anchor A: {min(n, 5_000)}), batch {BATCH}, server: uvicorn on 127.0.0.1")
    print(f"{'variant':48} {'entries/s':>11} {'vs A':>8} {'vs B':>8}")
    rows = [
        ("anchor A: POST per entry, no buffer", a),
        ("anchor B: in-memory batches, no disk", b),
        ("shipper: submit() only (producer side)", producer),
        ("shipper: end to end, disk buffer + acks", end_to_end),
    ]
    for name, rate in rows:
        print(f"{name:48} {rate:11,.0f} {rate / a:7.1f}x {rate / b:7.2f}x")


if __name__ == "__main__":
    main()
