"""A real HTTP receiver on 127.0.0.1 that records every request, for sink wire-format tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records requests; answers from ``statuses`` (then 200); can hang until released."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.hang = False
        self.release = threading.Event()
        self._cond = threading.Condition()
        self.url = ""

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``n`` requests arrived (or fail after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} requests, wanted {n}")
                self._cond.wait(left)
            return list(self.requests)

    def _record(self, req: Received) -> int:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
            return self.statuses.pop(0) if self.statuses else 200


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = rec._record(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if rec.hang:
                rec.release.wait(10)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
