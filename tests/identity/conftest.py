"""Fixtures for identity tests: an in-memory CA, workload identities, mTLS servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.identity._helpers import whoami_app

from ramparts.config import Topology, default_topology
from ramparts.events import EventEmitter, MemorySink
from ramparts.identity import (
    AuthorizationMiddleware,
    CertificateAuthority,
    IdentitySource,
    ServerThread,
    build_mtls_server,
)


@pytest.fixture(scope="session")
def topo() -> Topology:
    return default_topology()


@pytest.fixture(scope="session")
def ca(topo: Topology) -> CertificateAuthority:
    """One CA for the session: key generation is the slow part of these tests."""
    return CertificateAuthority.in_memory(topo.trust_domain)


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def source_for(ca: CertificateAuthority, topo: Topology) -> Callable[[str], IdentitySource]:
    def make(name: str) -> IdentitySource:
        return IdentitySource(ca.issue_svid(topo.spiffe_id(name)), ca.bundle())

    return make


@pytest.fixture
def serve(sink: MemorySink, topo: Topology) -> Iterator[Callable[..., int]]:
    """Start an mTLS server for a service (with authorisation) in a thread; returns its port."""
    threads: list[ServerThread] = []

    def start(
        source: IdentitySource,
        service: str,
        *,
        authorize: bool = True,
        app: Any = None,
        **options: Any,
    ) -> int:
        emitter = EventEmitter([sink], service=service)
        inner = app or whoami_app()
        if authorize:
            inner = AuthorizationMiddleware(inner, topology=topo, service=service, emitter=emitter)
        server = build_mtls_server(inner, source=source, emitter=emitter, lifespan="off", **options)
        t = ServerThread(server)
        threads.append(t)
        return t.start()

    yield start
    for t in threads:
        t.stop()
