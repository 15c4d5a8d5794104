"""A bare TCP health probe is not a TLS attempt: no ``mtls.rejected`` for it, one for garbage."""

from __future__ import annotations

import contextlib
import socket

from tests.identity._helpers import wait_for_event

from ramparts.events import MemorySink

LEDGER = "ledger"


def test_connect_and_close_is_not_a_security_event(serve, source_for, sink: MemorySink) -> None:
    """What a supervisor or kubelet tcpSocket probe does: connect, send nothing, close."""
    port = serve(source_for(LEDGER), LEDGER)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    # Then a real TLS failure, so the test knows events would have arrived by now.
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(2)
        with contextlib.suppress(OSError):
            s.recv(100)
    event = wait_for_event(sink, "mtls.rejected")
    assert [e.type for e in sink.events] == ["mtls.rejected"]
    assert "remote" in event.detail
