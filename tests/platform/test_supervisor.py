"""The supervisor with real child processes: order, readiness, restarts, clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from ramparts.platform import ComponentSpec, ComponentState, StartupError, Supervisor, tcp_ready

SERVER = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("listening on", sys.argv[1], "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig", flush=True)
while True:
    c, _ = s.accept(); c.close()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server(name: str, port: int, *deps: str, timeout: float = 10.0) -> ComponentSpec:
    return ComponentSpec(
        name=name,
        argv=(sys.executable, "-c", SERVER, str(port)),
        ready=tcp_ready("127.0.0.1", port),
        depends_on=deps,
        ready_timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


async def _until(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_starts_in_dependency_order_and_stops_cleanly(tmp_path: Path) -> None:
    async def run() -> None:
        started: list[str] = []
        sup = Supervisor(
            [
                _server("gateway", _port(), "ca", "ledger"),
                _server("ledger", _port(), "ca"),
                _server("ca", _port()),
            ],
            log_dir=tmp_path,
            on_change=lambda s: started.extend(
                n
                for n, r in s.components.items()
                if r.state == ComponentState.READY and n not in started
            ),
        )
        await sup.start()
        assert started == ["ca", "ledger", "gateway"]
        pids = [p for p in sup.pids().values() if p]
        assert all(_alive(p) for p in pids)
        await sup.stop()
        assert not any(_alive(p) for p in pids)
        log = (tmp_path / "ledger.log").read_text()
        assert "listening on" in log
        assert "eyJhbGciOiJIUzI1NiJ9" not in log  # aggregated logs are masked
        assert all(r.state == ComponentState.STOPPED for r in sup.components.values())

    asyncio.run(run())


def test_a_killed_component_is_restarted(tmp_path: Path) -> None:
    async def run() -> None:
        sup = Supervisor([_server("audit", _port())], log_dir=tmp_path, backoff_initial=0.05)
        await sup.start()
        first = sup.pids()["audit"]
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await _until(
            lambda: (
                sup.pids()["audit"] != first
                and sup.components["audit"].state == ComponentState.READY
            )
        )
        assert sup.components["audit"].restarts == 1
        await sup.stop()

    asyncio.run(run())


def test_gives_up_after_max_restarts(tmp_path: Path) -> None:
    async def run() -> None:
        crash = ComponentSpec(
            "flaky",
            (sys.executable, "-c", "import sys; sys.exit(3)"),
            ready=tcp_ready("127.0.0.1", _port()),
        )
        ok = _server("ok", _port())
        sup = Supervisor([ok], log_dir=tmp_path)
        await sup.start()
        await sup.stop()
        sup = Supervisor([crash], log_dir=tmp_path, max_restarts=2, backoff_initial=0.01)
        with pytest.raises(StartupError, match=r"flaky exited with code 3"):
            await sup.start()
        await sup.stop()

    asyncio.run(run())


def test_startup_error_names_component_and_shows_its_output(tmp_path: Path) -> None:
    async def run() -> None:
        never = ComponentSpec(
            "secrets",
            (
                sys.executable,
                "-c",
                "print('sealed: give 3 unseal shares', flush=True); import time; time.sleep(30)",
            ),
            ready=tcp_ready("127.0.0.1", _port()),
            ready_timeout=1.0,
        )
        sup = Supervisor([never], log_dir=tmp_path)
        with pytest.raises(StartupError) as info:
            await sup.start()
        await sup.stop()
        assert "secrets not ready after 1s" in str(info.value)
        assert "sealed: give 3 unseal shares" in str(info.value)

    asyncio.run(run())


def test_supervisor_killed_leaves_no_children(tmp_path: Path) -> None:
    """SIGKILL of the supervisor itself: the kernel stops its children (PR_SET_PDEATHSIG)."""
    port = _port()
    script = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / "src")!r})
from ramparts.platform import Supervisor, ComponentSpec, tcp_ready
SERVER = {SERVER!r}
async def main():
    spec = ComponentSpec(
        "svc", (sys.executable, "-c", SERVER, "{port}"), ready=tcp_ready("127.0.0.1", {port})
    )
    sup = Supervisor([spec], log_dir={str(tmp_path)!r})
    await sup.start()
    print(sup.pids()["svc"], flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""

    async def run() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        child = int((await asyncio.wait_for(proc.stdout.readline(), 20)).decode())
        assert _alive(child)
        proc.kill()
        await proc.wait()
        await _until(lambda: not _alive(child))

    asyncio.run(run())


def test_dependency_errors() -> None:
    with pytest.raises(ValueError, match="unknown component 'db'"):
        Supervisor([_server("a", 1, "db")], log_dir="/tmp/unused-rp")
    with pytest.raises(ValueError, match="dependency cycle: a -> b -> a"):
        Supervisor([_server("a", 1, "b"), _server("b", 2, "a")], log_dir="/tmp/unused-rp")
