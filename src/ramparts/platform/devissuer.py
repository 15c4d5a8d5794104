"""A development token issuer for ``ramparts up``, so the gateway can be tried at once.

``up`` creates an ES256 key (0600, in the state directory) for the first
issuer in the topology and publishes its public half as the JWKS file the
topology names; ``ramparts token`` mints short-lived tokens with it. This is
for a laptop: in production the issuer is your identity provider, and the
topology points at its JWKS URL.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from joserfc import jwt
from joserfc.jwk import ECKey

from ramparts.config import Topology

KEY_FILE = "dev-issuer.jwk"
MAX_TTL = 3600


def jwks_path(topology: Topology, topology_file: Path) -> Path | None:
    """Where the first issuer's JWKS lives, if it is a local file."""
    if not topology.gateway.issuers:
        return None
    jwks = topology.gateway.issuers[0].jwks
    if jwks.startswith(("http://", "https://")):
        return None
    path = Path(jwks)
    return path if path.is_absolute() else topology_file.parent / path


def ensure(topology: Topology, topology_file: Path, state: Path) -> Path | None:
    """Create the key once; (re)write the JWKS. Returns the key file, or None if the
    topology's issuer is not a local file (a real identity provider)."""
    target = jwks_path(topology, topology_file)
    if target is None:
        return None
    key_file = state / "keys" / KEY_FILE
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not key_file.exists():
        key = ECKey.generate_key(
            "P-256", parameters={"kid": f"dev-{uuid.uuid4().hex[:8]}", "alg": "ES256", "use": "sig"}
        )
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(key.as_dict(private=True), f)
    key = _load(key_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2) + "\n")
    return key_file


def _load(key_file: Path) -> ECKey:
    if key_file.stat().st_mode & 0o077:
        raise PermissionError(f"{key_file} is readable by others; chmod 600 {key_file}")
    return ECKey.import_key(json.loads(key_file.read_text()))


def mint(
    topology: Topology,
    state: Path,
    *,
    subject: str,
    scopes: list[str],
    ttl: int = 900,
    now: float | None = None,
) -> str:
    """A signed token for the first issuer and audience of the topology."""
    if not 0 < ttl <= MAX_TTL:
        raise ValueError(f"ttl must be 1-{MAX_TTL} seconds, got {ttl}")
    issuer = topology.gateway.issuers[0]
    key = _load(state / "keys" / KEY_FILE)
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer.issuer,
        "aud": issuer.audiences[0],
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "jti": uuid.uuid4().hex,
    }
    header = {"alg": "ES256", "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key)
