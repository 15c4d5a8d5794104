"""The audit shipper against a real HTTP server on 127.0.0.1 implementing the ingest contract.

The fake server is the contract, exactly: ``POST /v1/ingest`` with
``{"batch_id", "entries"}`` returns 200 ``{"batch_id", "first_index", "count"}``;
a repeated batch id returns the first answer and appends nothing (and is
counted, so tests can see that a retry happened).
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ramparts.audit.shipper import Backoff, Shipper, ShipperSink
from ramparts.events import EventEmitter

FAST = Backoff(base=0.01, cap=0.1)


class IngestStore:
    """What the audit server has appended, kept across server restarts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.duplicate_batches = 0
        self.requests = 0
        # Hooks for failure scenarios.
        self.hold_first = False
        self.stored_first = threading.Event()
        self.release = threading.Event()
        self.drop_reply_once = False
        self.reject_if: Callable[[list[dict[str, Any]]], bool] | None = None
        self.batches_seen = threading.Condition(self.lock)

    def seqs(self) -> list[int]:
        with self.lock:
            return [e["seq"] for e in self.entries if "seq" in e]


class IngestHandler(BaseHTTPRequestHandler):
    store: IngestStore  # set per server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._reply(405, {"error": "method"})

    def do_POST(self) -> None:
        store = self.store
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/v1/ingest":
            return self._reply(404, {"error": "path"})
        if self.headers.get("Content-Type") != "application/json":
            return self._reply(415, {"error": "content-type"})
        try:
            body = json.loads(raw)
        except ValueError:
            return self._reply(400, {"error": "json"})
        if (
            not isinstance(body, dict)
            or set(body) != {"batch_id", "entries"}
            or not isinstance(body["batch_id"], str)
            or not body["batch_id"]
            or not isinstance(body["entries"], list)
            or not body["entries"]
            or not all(isinstance(e, dict) for e in body["entries"])
        ):
            return self._reply(400, {"error": "shape"})
        entries = body["entries"]
        if store.reject_if is not None and store.reject_if(entries):
            return self._reply(422, {"error": "poison"})
        with store.lock:
            store.requests += 1
            result = store.results.get(body["batch_id"])
            if result is not None:
                store.duplicate_batches += 1
            else:
                result = {
                    "batch_id": body["batch_id"],
                    "first_index": len(store.entries),
                    "count": len(entries),
                }
                store.entries.extend(entries)
                store.results[body["batch_id"]] = result
            store.batches_seen.notify_all()
            first = len(store.results) == 1 and store.hold_first
            drop = store.drop_reply_once
            store.drop_reply_once = False
        if first and not store.release.is_set():
            store.stored_first.set()
            store.release.wait(20)
            return None  # the client was killed; answer nobody
        if drop:
            self.close_connection = True
            return None  # stored, but the reply is lost: the client must re-send the same id
        return self._reply(200, result)


class IngestServer:
    """A stoppable, restartable server on a fixed 127.0.0.1 port."""

    def __init__(self, store: IngestStore, port: int) -> None:
        self.store = store
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        handler = type("Handler", (IngestHandler,), {"store": self.store})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def store() -> IngestStore:
    return IngestStore()


@pytest.fixture
def server(store: IngestStore):
    srv = IngestServer(store, free_port())
    yield srv
    if srv._server is not None:
        store.release.set()
        srv.stop()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def make_shipper(tmp_path: Path, url: str, **kw: Any) -> Shipper:
    options: dict[str, Any] = {"service": "test", "backoff": FAST, "batch_max_entries": 10}
    options.update(kw)
    return Shipper(tmp_path / "buffer", url, **options)


class TestDelivery:
    def test_delivers_every_entry_once_in_order(self, tmp_path: Path, server: IngestServer):
        """Entries arrive in submission order, each exactly once, in batches."""
        server.start()

        async def scenario() -> Shipper:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            for i in range(95):
                assert shipper.submit({"seq": i})
            await shipper.flush(timeout=10)
            await shipper.aclose()
            return shipper

        shipper = asyncio.run(scenario())
        assert server.store.seqs() == list(range(95))
        assert server.store.duplicate_batches == 0
        stats = shipper.statistics()
        assert (stats.submitted, stats.shipped_entries, stats.shipped_batches) == (95, 95, 10)

    def test_submit_from_many_threads(self, tmp_path: Path, server: IngestServer):
        """Producers on several threads while batches are read and acked: none lost or doubled,
        each thread's entries in its own order."""
        server.start()

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url, max_bytes=1 << 20, segment_bytes=4096)
            shipper.start()

            def produce(t: int) -> None:
                for i in range(250):
                    shipper.submit({"seq": t * 1000 + i, "pad": "p" * 40})

            threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
            for thread in threads:
                thread.start()
            await asyncio.to_thread(lambda: [thread.join() for thread in threads])
            await shipper.flush(timeout=15)
            await shipper.aclose()

        asyncio.run(scenario())
        got = server.store.seqs()
        assert sorted(got) == sorted(t * 1000 + i for t in range(4) for i in range(250))
        for t in range(4):
            mine = [s for s in got if s // 1000 == t]
            assert mine == sorted(mine)

    def test_buffer_files_are_private(self, tmp_path: Path, server: IngestServer):
        """The buffer directory is 0700 and every file in it 0600."""
        shipper = make_shipper(tmp_path, server.url)
        shipper.submit({"seq": 1})
        shipper.buffer.next_batch()
        assert stat.S_IMODE((tmp_path / "buffer").stat().st_mode) == 0o700
        files = list((tmp_path / "buffer").iterdir())
        assert {f.suffix for f in files} == {".seg", ".journal", ".lock"}
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        shipper.buffer.close()

    def test_lost_reply_resends_same_batch_id(self, tmp_path: Path, server: IngestServer):
        """A batch stored by the server whose reply is lost is re-sent under the same id."""
        server.store.drop_reply_once = True
        server.start()

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            for i in range(25):
                shipper.submit({"seq": i})
            await shipper.flush(timeout=10)
            await shipper.aclose()

        asyncio.run(scenario())
        assert server.store.seqs() == list(range(25))
        assert server.store.duplicate_batches == 1

    def test_poison_batch_is_set_aside(self, tmp_path: Path, server: IngestServer):
        """A batch the server refuses with a 4xx is kept in rejected/ (0600); the rest flows on."""
        server.store.reject_if = lambda entries: any(e.get("poison") for e in entries)
        server.start()

        async def scenario() -> Shipper:
            shipper = make_shipper(tmp_path, server.url, batch_max_entries=5)
            shipper.start()
            for i in range(5):
                shipper.submit({"seq": i, "poison": i == 2})
            await shipper.flush(timeout=10)
            for i in range(5, 10):
                shipper.submit({"seq": i})
            await shipper.flush(timeout=10)
            await shipper.aclose()
            return shipper

        shipper = asyncio.run(scenario())
        assert server.store.seqs() == list(range(5, 10))
        rejected = list((tmp_path / "buffer" / "rejected").iterdir())
        assert len(rejected) == 1
        assert stat.S_IMODE(rejected[0].stat().st_mode) == 0o600
        kept = json.loads(rejected[0].read_text())
        assert [e["seq"] for e in kept["entries"]] == list(range(5))
        assert shipper.statistics().rejected_batches == 1

    def test_event_sink_ships_security_events(self, tmp_path: Path, server: IngestServer):
        """EventEmitter -> ShipperSink -> audit server, as SecurityEvent dicts."""
        server.start()

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            emitter = EventEmitter([ShipperSink(shipper)], service="gateway")
            emitter.deny("jwt.rejected", reason="token expired", peer="10.0.0.1")
            await shipper.flush(timeout=10)
            await shipper.aclose()

        asyncio.run(scenario())
        (entry,) = server.store.entries
        assert (entry["type"], entry["outcome"], entry["service"]) == (
            "jwt.rejected",
            "deny",
            "gateway",
        )


class TestOutages:
    def test_server_down_then_up(self, tmp_path: Path, server: IngestServer):
        """While the server is down entries wait on disk; when it comes up all arrive, once."""

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            for i in range(60):
                shipper.submit({"seq": i})
            await wait_until(lambda: shipper.statistics().retries >= 3)
            server.start()
            await shipper.flush(timeout=10)
            await shipper.aclose()

        asyncio.run(scenario())
        assert server.store.seqs() == list(range(60))
        assert server.store.duplicate_batches == 0

    def test_server_restarted_mid_stream(self, tmp_path: Path, server: IngestServer):
        """A server that goes away after some batches and returns loses and duplicates nothing."""
        server.start()

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            for i in range(100):
                shipper.submit({"seq": i})
            await wait_until(lambda: len(server.store.results) >= 3)
            server.stop()
            retries = shipper.statistics().retries
            for i in range(100, 200):
                shipper.submit({"seq": i})
            await wait_until(lambda: shipper.statistics().retries >= retries + 2)
            server.start()
            await shipper.flush(timeout=15)
            await shipper.aclose()

        asyncio.run(scenario())
        assert server.store.seqs() == list(range(200))

    def test_resumes_from_disk_after_restart(self, tmp_path: Path, server: IngestServer):
        """Entries buffered by a shipper that stopped before sending are sent by the next one."""

        async def first() -> None:
            shipper = make_shipper(tmp_path, server.url)
            for i in range(30):
                shipper.submit({"seq": i})
            shipper.buffer.close()

        async def second() -> None:
            server.start()
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            await shipper.flush(timeout=10)
            await shipper.aclose()

        asyncio.run(first())
        asyncio.run(second())
        assert server.store.seqs() == list(range(30))


CHILD = """
import asyncio, sys
from ramparts.audit.shipper import Backoff, Shipper

async def main():
    directory, url, start, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    shipper = Shipper(directory, url, service="child", backoff=Backoff(0.01, 0.1),
                      batch_max_entries=20)
    shipper.start()
    for i in range(start, start + count):
        shipper.submit({"seq": i})
        print("ok", i, flush=True)
    await shipper.flush(timeout=30)
    print("drained", flush=True)
    await shipper.aclose()

asyncio.run(main())
"""


def spawn_child(directory: Path, url: str, start: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), url, str(start), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class TestCrash:
    def test_kill_9_mid_batch_then_restart(self, tmp_path: Path, server: IngestServer):
        """Killed (-9) after the server stored a batch but before the ack: the restarted
        shipper re-sends that batch under the same id, then everything else; no loss,
        no duplicate."""
        server.store.hold_first = True
        server.start()
        directory = tmp_path / "buffer"
        child = spawn_child(directory, server.url, 0, 200)
        try:
            assert server.store.stored_first.wait(30), "first batch never reached the server"
            child.kill()
            child.wait(10)
        finally:
            if child.poll() is None:  # pragma: no cover
                child.kill()
        printed = [int(line.split()[1]) for line in child.stdout if line.startswith("ok ")]
        assert child.returncode == -9
        assert printed == list(range(200))
        server.store.release.set()
        first_batch_id = next(iter(server.store.results))

        resumed = spawn_child(directory, server.url, 200, 50)
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        assert out.strip().endswith("drained")
        assert server.store.seqs() == list(range(250))
        assert server.store.duplicate_batches == 1
        assert server.store.results[first_batch_id]["first_index"] == 0


class TestBufferFull:
    def test_drops_oldest_and_records_the_gap(self, tmp_path: Path, server: IngestServer):
        """Full buffer: oldest unsent entries are dropped (never the in-flight batch), the
        count goes into the audit log as an event, disk use stays bounded."""
        submitted = 400
        max_bytes = 16 * 1024

        async def scenario() -> Shipper:
            shipper = make_shipper(tmp_path, server.url, max_bytes=max_bytes, segment_bytes=2048)
            shipper.start()
            shipper.submit({"seq": 0, "pad": "x" * 60})
            await wait_until(lambda: shipper.statistics().retries >= 1)  # batch 1 in flight
            for i in range(1, submitted):
                shipper.submit({"seq": i, "pad": "x" * 60})
                assert shipper.buffer.statistics().disk_bytes <= max_bytes
            assert shipper.statistics().dropped > 0
            server.start()
            await shipper.flush(timeout=10)
            await shipper.aclose()
            return shipper

        shipper = asyncio.run(scenario())
        stats = shipper.statistics()
        seqs = server.store.seqs()
        markers = [e for e in server.store.entries if e.get("type") == "shipper.entries_dropped"]
        assert seqs[0] == 0, "the in-flight batch must never be dropped"
        assert seqs[-1] == submitted - 1, "the newest entries must survive"
        assert len(seqs) == len(set(seqs))
        lost = sum(m["detail"]["dropped"] for m in markers)
        assert lost == stats.dropped + stats.refused > 0
        assert len(seqs) + lost == submitted
        assert all(m["outcome"] == "deny" and m["service"] == "test" for m in markers)


class TestValidation:
    def test_doctest(self) -> None:
        import doctest

        import ramparts.audit.shipper as mod

        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0

    @pytest.mark.parametrize("url", ["ftp://audit", "audit:8443", "https://"])
    def test_rejects_bad_base_url(self, tmp_path: Path, url: str):
        with pytest.raises(ValueError, match="base_url"):
            Shipper(tmp_path / "b", url, service="x")

    def test_backoff_is_capped_and_jittered(self):
        import random

        backoff = Backoff(base=0.5, cap=4.0)
        rng = random.Random(7)
        delays = [backoff.delay(n, rng) for n in range(1, 40)]
        assert all(0 <= d <= 4.0 for d in delays)
        assert max(delays[:1]) <= 0.5
        assert len(set(delays)) == len(delays)

    def test_backoff_rejects_nonsense(self):
        with pytest.raises(ValueError, match="backoff"):
            Backoff(base=0, cap=1)

    def test_flush_before_start_refuses(self, tmp_path: Path):
        shipper = Shipper(tmp_path / "b", "http://127.0.0.1:1", service="x")
        with pytest.raises(RuntimeError, match="not running"):
            asyncio.run(shipper.flush(timeout=1))
        shipper.buffer.close()


class TestLogShipping:
    def test_masked_log_lines_reach_the_server(self, tmp_path: Path, server: IngestServer):
        """configure_logging(forward=shipper.submit_json): lines arrive masked, as ECS objects."""
        import io
        import logging

        import structlog

        from ramparts.telemetry.context import bind_correlation
        from ramparts.telemetry.logging import configure_logging, reset_logging

        def mask(_: object, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
            return {k: "[MASKED]" if k == "card" else v for k, v in event_dict.items()}

        server.start()

        async def scenario() -> None:
            shipper = make_shipper(tmp_path, server.url)
            shipper.start()
            configure_logging(
                "payments", stream=io.StringIO(), masker=mask, forward=shipper.submit_json
            )
            try:
                with bind_correlation("req-42"):
                    structlog.get_logger().info("charged", card="4111111111111111")
                    logging.getLogger("payments.db").warning("slow query")
                await shipper.flush(timeout=10)
            finally:
                reset_logging()
                await shipper.aclose()

        asyncio.run(scenario())
        shipped = [e for e in server.store.entries if e.get("correlation_id") == "req-42"]
        assert [e["message"] for e in shipped] == ["charged", "slow query"]
        assert shipped[0]["card"] == "[MASKED]"
        assert all(e["service.name"] == "payments" for e in shipped)
