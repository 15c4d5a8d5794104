"""Helpers for tests that run `ramparts audit` servers as real subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {deadline}s waiting for {what}")


class CLIServer:
    """A `ramparts audit` server command in a subprocess on 127.0.0.1, ready once it answers."""

    def __init__(self, args: list[str], port: int, probe: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ramparts.audit.cli", *args, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._probe = probe
        wait_for(self._ready, f"`{args[0]}` to answer on {self.url}")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            raise AssertionError(f"server exited: {err}")
        try:
            httpx.get(self.url + self._probe, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
