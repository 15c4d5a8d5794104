"""Fixtures for ramparts.jwt: keys generated at test time and a real JWKS server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from tests.jwt.jwt_helpers import FakeMonotonic, JWKSServer, Keys, jwks_of


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Fresh signing keys for this session (RSA generation is the slow part)."""
    return Keys(
        rsa=RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}),
        rsa2=RSAKey.generate_key(2048, parameters={"kid": "rsa-2"}),
        ec=ECKey.generate_key("P-256", parameters={"kid": "ec-1"}),
        ed=OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"}),
        hmac=OctKey.generate_key(256, parameters={"kid": "hs-1"}),
    )


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JWKSServer]:
    """A JWKS endpoint on a real 127.0.0.1 socket; counts every fetch."""
    state = JWKSServer(url="", document=jwks_of(keys.rsa))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.fetches += 1
                status = state.status
                body = json.dumps(state.document).encode()
            if state.hold:
                state.waiting.release()
                state.release.wait(timeout=10)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()
