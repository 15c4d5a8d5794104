"""A small process supervisor: dependency order, readiness, restarts with backoff, clean stop.

Each component is a child process in its own session, so a Ctrl-C at the
terminal reaches only the supervisor, which then stops components in reverse
dependency order (SIGTERM, then SIGKILL after a grace period). On Linux every
child also gets ``PR_SET_PDEATHSIG``: if the supervisor itself is killed with
SIGKILL, the kernel stops its children, so no stray process is left behind.

Secrets never travel through here: children get paths (identity directory,
topology file) on their command line and fetch credentials at runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ramparts.masking import Masker

ReadyCheck = Callable[[], Awaitable[bool]]
LineSink = Callable[[str, str], None]  # (component, line)

PR_SET_PDEATHSIG = 1


class ComponentState(enum.StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


class StartupError(RuntimeError):
    """A component did not become ready; the message says which and what its log said last."""


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: tuple[str, ...]
    ready: ReadyCheck
    depends_on: tuple[str, ...] = ()
    url: str = ""
    identity: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 30.0


@dataclass
class _Running:
    spec: ComponentSpec
    state: ComponentState = ComponentState.PENDING
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    last_lines: list[str] = field(default_factory=list)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tcp_ready(host: str, port: int) -> ReadyCheck:
    async def check() -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    return check


def order(specs: Sequence[ComponentSpec]) -> list[ComponentSpec]:
    """Dependencies first; raises ValueError on an unknown dependency or a cycle."""
    by_name = {s.name: s for s in specs}
    out: list[ComponentSpec] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"dependency cycle: {' -> '.join((*path, name))}")
        if name not in by_name:
            raise ValueError(f"{path[-1]} depends on unknown component {name!r}")
        state[name] = 1
        for dep in by_name[name].depends_on:
            visit(dep, (*path, name))
        state[name] = 2
        out.append(by_name[name])

    for s in specs:
        visit(s.name, ())
    return out


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ComponentSpec],
        *,
        log_dir: str | os.PathLike[str],
        on_line: LineSink | None = None,
        on_change: Callable[[Supervisor], None] | None = None,
        max_restarts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stop_grace: float = 5.0,
        masker: Masker | None = None,
    ) -> None:
        self.ordered = order(specs)
        # Children mask their own logs; this second pass catches anything a
        # child printed before its logging was configured (a crash traceback).
        self.masker = masker or Masker()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.on_line = on_line
        self.on_change = on_change
        self.max_restarts = max_restarts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stop_grace = stop_grace
        self.components = {s.name: _Running(s) for s in self.ordered}
        self._stopping = False
        self._monitor: asyncio.Task[None] | None = None
        self.failed = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start every component in order, each ready before the next; raise StartupError if not."""
        for spec in self.ordered:
            run = self.components[spec.name]
            await self._spawn(run)
            await self._wait_ready(run)
        self._monitor = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop components in reverse order: SIGTERM, then SIGKILL after the grace period."""
        self._stopping = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for spec in reversed(self.ordered):
            await self._terminate(self.components[spec.name])

    def pids(self) -> dict[str, int | None]:
        return {n: (r.process.pid if r.process else None) for n, r in self.components.items()}

    # -- internals ----------------------------------------------------------

    def _set(self, run: _Running, state: ComponentState) -> None:
        run.state = state
        if self.on_change:
            self.on_change(self)

    async def _spawn(self, run: _Running) -> None:
        self._set(run, ComponentState.STARTING)
        env = {**os.environ, **run.spec.env}
        run.process = await asyncio.create_subprocess_exec(
            *run.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        run.started_at = time.monotonic()
        run.pumps = [asyncio.create_task(self._pump(run, run.process))]

    async def _pump(self, run: _Running, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        log = (self.log_dir / f"{run.spec.name}.log").open("a", encoding="utf-8")
        os.chmod(log.name, 0o600)
        try:
            async for raw in proc.stdout:
                line = self.masker.mask_text(raw.decode("utf-8", "replace").rstrip("\n"))
                log.write(line + "\n")
                log.flush()
                run.last_lines = [*run.last_lines[-19:], line]
                if self.on_line:
                    self.on_line(run.spec.name, line)
        finally:
            log.close()

    async def _wait_ready(self, run: _Running) -> None:
        deadline = time.monotonic() + run.spec.ready_timeout
        while time.monotonic() < deadline:
            assert run.process is not None
            if run.process.returncode is not None:
                break
            if await run.spec.ready():
                self._set(run, ComponentState.READY)
                return
            await asyncio.sleep(0.1)
        self._set(run, ComponentState.FAILED)
        code = run.process.returncode if run.process else None
        why = (
            f"exited with code {code}"
            if code is not None
            else f"not ready after {run.spec.ready_timeout:.0f}s"
        )
        tail = "\n".join(f"    {x}" for x in run.last_lines[-10:]) or "    (no output)"
        raise StartupError(
            f"{run.spec.name} {why}; last output:\n{tail}\n"
            f"Full log: {self.log_dir / (run.spec.name + '.log')}"
        )

    async def _watch(self) -> None:
        waits = {
            asyncio.create_task(r.process.wait()): r for r in self.components.values() if r.process
        }
        while waits:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                run = waits.pop(task)
                if self._stopping:
                    continue
                restarted = await self._restart(run)
                if restarted and run.process is not None:
                    waits[asyncio.create_task(run.process.wait())] = run

    async def _restart(self, run: _Running) -> bool:
        """Restart with exponential backoff until ready, or give up after ``max_restarts``."""
        while True:
            # A component that ran for a while before dying gets a fresh budget.
            if time.monotonic() - run.started_at > 60:
                run.restarts = 0
            if run.restarts >= self.max_restarts:
                self._set(run, ComponentState.FAILED)
                self.failed.set()
                return False
            delay = min(self.backoff_initial * 2**run.restarts, self.backoff_max)
            run.restarts += 1
            self._set(run, ComponentState.RESTARTING)
            await asyncio.sleep(delay)
            await self._spawn(run)
            try:
                await self._wait_ready(run)
                return True
            except StartupError:
                await self._terminate(run)

    async def _terminate(self, run: _Running) -> None:
        proc = run.process
        if proc is None or proc.returncode is not None:
            self._set(run, ComponentState.STOPPED)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        for pump in run.pumps:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(pump, 2)
        self._set(run, ComponentState.STOPPED)
