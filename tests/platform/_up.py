"""Helpers to run ``ramparts up`` in tests: a topology on free ports, start, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ramparts.config import Topology, parse_topology

REFBANK = Path(__file__).resolve().parents[2] / "src/ramparts/config/refbank.yaml"
PLATFORM_PORTS = (7000, 7001, 7002, 7003, 7004)
SERVICE_PORTS = (7101, 7102, 7103, 7104, 7105)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def topology_file(tmp: Path) -> tuple[Path, Topology]:
    """The reference bank on free ports, so the test never collides with a running system."""
    text = REFBANK.read_text()
    new = free_ports(len(SERVICE_PORTS) + len(PLATFORM_PORTS) + 2)
    for old, port in zip(SERVICE_PORTS, new, strict=False):
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{port}")
    text = text.replace("listen: 127.0.0.1:8443", f"listen: 127.0.0.1:{new[-2]}")
    text = text.replace("admin_listen: 127.0.0.1:9443", f"admin_listen: 127.0.0.1:{new[-1]}")
    names = ("ca", "secrets", "audit", "witness", "console")
    text += "platform:\n" + "".join(
        f"  {n}: 127.0.0.1:{p}\n" for n, p in zip(names, new[len(SERVICE_PORTS) :], strict=False)
    )
    path = tmp / "ramparts.yaml"
    path.write_text(text)
    return path, parse_topology(text)


def start_up(topology: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    """Start ``ramparts up``; return once it says it is up. Its output keeps being drained
    (into ``proc.output``), as a terminal would, so a full pipe never stalls it."""
    argv = [sys.executable, "-m", "ramparts", "up", "--topology", str(topology)]
    proc = subprocess.Popen(
        [*argv, "--state", str(state), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    up = threading.Event()

    def drain() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if "ramparts is up" in line:
                up.set()

    threading.Thread(target=drain, daemon=True).start()
    proc.output = lines  # type: ignore[attr-defined]
    deadline = time.monotonic() + 90
    while not up.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("ramparts up did not come up:\n" + "".join(lines[-30:]))
    return proc


def stop_up(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0


def children_of(state: Path, marker: str = "") -> list[int]:
    """Live processes whose command line names this run's state directory (and ``marker``)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            zombie = Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except (OSError, IndexError):
            continue
        if str(state) in cmd and marker in cmd and not zombie:
            out.append(int(pid))
    return out


def wait_for(cond, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 1):
            return True
    except OSError:
        return False
