"""Helpers for the ramparts.jwt tests: token minting, policies, JWKS server state.

Keys are generated at test time (see conftest.py) and never written anywhere
but a test's tmp_path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from ramparts.jwt import IssuerPolicy
from ramparts.jwt._codec import b64url_encode

ISSUER = "https://idp.test"
AUDIENCE = "refbank-api"
#: The fixed instant every rule test is judged at (2026-01-01T00:00:00Z).
NOW = 1_767_225_600.0


@dataclass(frozen=True)
class Keys:
    rsa: RSAKey
    rsa2: RSAKey
    ec: ECKey
    ed: OKPKey
    hmac: OctKey


def public_jwk(key: Any, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key`` (its kid included), plus ``extra`` members."""
    data = dict(key.as_dict(private=False))
    data.update(extra)
    return data


def jwks_of(*keys: Any) -> dict[str, Any]:
    return {"keys": [public_jwk(k) for k in keys]}


def sign_raw(
    header: bytes | Mapping[str, Any], payload: bytes | Mapping[str, Any], key: Any
) -> str:
    """Sign exact header/payload bytes (so tests can build odd JSON) with joserfc's alg."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    payload_bytes = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    alg = json.loads(header_bytes)["alg"]
    signing_input = b64url_encode(header_bytes) + b"." + b64url_encode(payload_bytes)
    signature = JWSRegistry.algorithms[alg].sign(signing_input, key)
    return (signing_input + b"." + b64url_encode(signature)).decode()


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims that pass the default policy at NOW; an override of ``None`` removes a claim."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": int(NOW) - 10,
        "nbf": int(NOW) - 10,
        "exp": int(NOW) + 300,
        "scope": "accounts:read payments:write",
    }
    for name, value in overrides.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def mint(
    key: Any, alg: str = "RS256", *, header: Mapping[str, Any] | None = None, **overrides: Any
) -> str:
    """A token signed by ``key`` under its kid, valid at NOW unless overridden.

    ``header`` entries override the JOSE header; a value of None removes one.
    """
    hdr: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if key.kid is not None:
        hdr["kid"] = key.kid
    hdr.update(header or {})
    hdr = {k: v for k, v in hdr.items() if v is not None}
    return sign_raw(hdr, claims(**overrides), key)


def policy(jwks: str | Path, **overrides: Any) -> IssuerPolicy:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audiences": (AUDIENCE,),
        "algorithms": ("RS256", "ES256", "EdDSA"),
        "jwks": str(jwks),
        "leeway_seconds": 30,
    }
    values.update(overrides)
    return IssuerPolicy(**values)


def write_jwks(path: Path, document: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


@dataclass
class JWKSServer:
    """State of the real HTTP JWKS server (see the ``jwks_server`` fixture)."""

    url: str
    document: dict[str, Any]
    status: int = 200
    fetches: int = 0
    #: When true, each request waits (bounded) until ``release`` is set.
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    waiting: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set_keys(self, *keys: Any) -> None:
        with self.lock:
            self.document = jwks_of(*keys)

    def set_status(self, status: int) -> None:
        with self.lock:
            self.status = status

    def fetch_count(self) -> int:
        with self.lock:
            return self.fetches


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``condition()`` to hold, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.01)
