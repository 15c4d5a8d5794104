"""RS256 verification throughput: ramparts.jwt uncached vs cached, against PyJWT and joserfc.

Run by hand from the repository root:

    .venv/bin/python bench/jwt/bench_jwt.py [--seconds 4] [--rounds 5]

PyJWT is a comparison anchor, not a dependency: it is installed on first run
into bench/.venv-pyjwt (a pip --target folder, gitignored) and imported from
there. The anchors do the same job per call: parse, check the RS256 signature
with a 2048-bit key, check exp/iss/aud. "Uncached" is what a proxy that
verifies on every request (HAProxy's jwt_verify, PyJWT in a middleware) pays;
"cached" is the gateway's path for a token it has already accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

from ramparts.jwt import IssuerPolicy, JWTValidator

ROOT = Path(__file__).resolve().parents[2]
PYJWT_DIR = ROOT / "bench" / ".venv-pyjwt"
PYJWT_VERSION = "2.10.1"
ISSUER = "https://idp.bench"
AUDIENCE = "refbank-api"


def load_pyjwt():
    """Import PyJWT from bench/.venv-pyjwt, installing it there on first use."""
    if not (PYJWT_DIR / "jwt").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
             "--target", str(PYJWT_DIR), f"PyJWT=={PYJWT_VERSION}"],
            check=True,
        )  # fmt: skip
    sys.path.insert(0, str(PYJWT_DIR))
    import jwt as pyjwt

    return pyjwt


def measure(contenders: dict[str, Callable[[int], object]], seconds: float, rounds: int) -> dict:
    """Ops per second per contender: ``rounds`` interleaved rounds, best and median kept.

    Interleaving and best-of make the comparison fair on a shared, noisy machine:
    a burst of load from elsewhere hits one round, not one contender.
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for batch in contenders.values():
        batch(50)  # warm-up
    for _ in range(rounds):
        for name, batch in contenders.items():
            calls, start = 0, time.perf_counter()
            deadline = start + seconds / rounds
            while True:
                batch(100)
                calls += 100
                now = time.perf_counter()
                if now >= deadline:
                    break
            samples[name].append(calls / (now - start))
    return {name: (max(v), statistics.median(v)) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per contender")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()

    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1"})
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now,
              "exp": now + 3600, "scope": "accounts:read payments:write"}  # fmt: skip
    token = jose_jwt.encode({"alg": "RS256", "kid": "bench-1", "typ": "JWT"}, claims, key)

    with tempfile.TemporaryDirectory() as tmp:
        jwks = Path(tmp) / "jwks.json"
        jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
        policy = IssuerPolicy(
            issuer=ISSUER, audiences=(AUDIENCE,), algorithms=("RS256",), jwks=str(jwks)
        )
        uncached = JWTValidator([policy], cache_size=0)
        cached = JWTValidator([policy])
        loop = asyncio.new_event_loop()
        loop.run_until_complete(uncached.verify(token))  # load keys outside the timing
        loop.run_until_complete(cached.verify(token))

        async def ramparts_loop(validator: JWTValidator, n: int) -> None:
            # As in the gateway: awaited inside the running event loop.
            for _ in range(n):
                await validator.verify(token)

        def ramparts_uncached(n: int) -> object:
            return loop.run_until_complete(ramparts_loop(uncached, n))

        def ramparts_cached(n: int) -> object:
            return loop.run_until_complete(ramparts_loop(cached, n))

        pyjwt = load_pyjwt()
        public_pem = key.as_pem(private=False)
        pyjwt_key = pyjwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(key.as_dict(private=False)))

        def pyjwt_decode(n: int) -> object:
            for _ in range(n):
                pyjwt.decode(
                    token, pyjwt_key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER
                )
            return None

        public_key = RSAKey.import_key(public_pem)
        registry = JWTClaimsRegistry(iss={"essential": True, "value": ISSUER},
                                     aud={"essential": True, "value": AUDIENCE})  # fmt: skip

        def joserfc_decode(n: int) -> object:
            for _ in range(n):
                decoded = jose_jwt.decode(token, public_key, algorithms=["RS256"])
                registry.validate(decoded.claims)
            return None

        # Every contender must accept the same token before it is timed.
        for batch in (ramparts_uncached, ramparts_cached, pyjwt_decode, joserfc_decode):
            batch(1)

        print(
            f"RS256 verify, 2048-bit key, token {len(token)} bytes; "
            f"{args.rounds} interleaved rounds, {args.seconds:.1f}s per contender"
        )
        print(f"  (PyJWT {pyjwt.__version__}, python {sys.version.split()[0]})")
        results = measure(
            {
                "ramparts.jwt uncached (per-request verify)": ramparts_uncached,
                "ramparts.jwt cached (SHA-256 LRU)": ramparts_cached,
                "PyJWT decode (anchor)": pyjwt_decode,
                "joserfc decode + claims (anchor)": joserfc_decode,
            },
            args.seconds,
            args.rounds,
        )
        loop.close()

    base = results["PyJWT decode (anchor)"][0]
    print(f"  {'contender':<44} {'best ops/s':>12} {'median':>10} {'us/op':>8} {'vs PyJWT':>9}")
    for name, (best, median) in results.items():
        print(
            f"  {name:<44} {best:>12,.0f} {median:>10,.0f} {1e6 / best:>8.1f} {best / base:>8.2f}x"
        )
    ratio = (
        results["ramparts.jwt cached (SHA-256 LRU)"][0]
        / results["ramparts.jwt uncached (per-request verify)"][0]
    )
    print(f"  cached / uncached ramparts.jwt: {ratio:.1f}x")
    print(f"  cache: {cached.cache_statistics()}")


if __name__ == "__main__":
    main()
