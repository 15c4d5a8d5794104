"""mTLS service-to-service calls vs plain HTTP, side by side in one run (run by hand).

    .venv/bin/python bench/mtls/bench_mtls.py [--calls 3000] [--rounds 5]

Same server framework (uvicorn + httptools on the asyncio loop, one Starlette
app), same client (httpx.AsyncClient, keep-alive, one pooled connection), same
process layout (servers in a child process, client here). Modes:

* ``plain``      http://, keep-alive;
* ``mtls``       ramparts.identity.build_mtls_server + service_client (TLS 1.3,
                 client certs, SPIFFE check per connection, TLS extension per request);
* ``mtls+authz`` the same plus AuthorizationMiddleware (topology decision + event per request).

Calls are sequential (latency, not throughput) and the modes are interleaved in
rounds so drift on a shared machine hits all of them alike. A second table
measures a new connection per call (TCP connect vs full mTLS handshake).
Goal: mtls p50 within 1.3x of plain.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from typing import Any

import httpx

from ramparts.config import default_topology
from ramparts.events import EventEmitter
from ramparts.identity import (
    X509SVID,
    AuthorizationMiddleware,
    CertificateAuthority,
    IdentitySource,
    TrustBundle,
    build_mtls_server,
    service_client,
)


def _app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def postings(request: Any) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"ok": True, "len": len(body)})

    return Starlette(routes=[Route("/v1/postings", postings, methods=["POST"])])


def _serve(svid_pem: bytes, key_pem: bytes, bundle_json: str, ports: Any) -> None:
    """Child process: three servers on one asyncio loop."""
    import uvicorn
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    topo = default_topology()
    key = serialization.load_pem_private_key(key_pem, None)
    svid = X509SVID.from_parts(x509.load_pem_x509_certificates(svid_pem), key)  # type: ignore[arg-type]
    source = IdentitySource(svid, TrustBundle.from_jwks(topo.trust_domain, bundle_json))
    emitter = EventEmitter([], service="ledger")
    app = _app()
    authz = AuthorizationMiddleware(_app(), topology=topo, service="ledger", emitter=emitter)

    async def main() -> None:
        plain = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                loop="asyncio",
                http="httptools",
                ws="none",
                lifespan="off",
                log_level="warning",
                access_log=False,
                proxy_headers=False,
                timeout_keep_alive=30,
            )
        )
        mtls = build_mtls_server(app, source=source, emitter=emitter, lifespan="off")
        mtls_authz = build_mtls_server(authz, source=source, emitter=emitter, lifespan="off")
        servers = [plain, mtls, mtls_authz]
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        while not all(s.started for s in servers):
            await asyncio.sleep(0.01)
        ports.put([s.servers[0].sockets[0].getsockname()[1] for s in servers])
        await asyncio.gather(*tasks)

    asyncio.run(main())


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def _run(calls: int, rounds: int, fresh_calls: int) -> None:
    topo = default_topology()
    ca = CertificateAuthority.in_memory(topo.trust_domain)
    ledger = ca.issue_svid(topo.spiffe_id("ledger"))
    payments = IdentitySource(ca.issue_svid(topo.spiffe_id("payments")), ca.bundle())
    ports_q: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(
        target=_serve,
        args=(ledger.cert_chain_pem(), ledger.private_key_pem(), ca.bundle().to_json(), ports_q),
        daemon=True,
    )
    proc.start()
    try:
        plain_port, mtls_port, authz_port = ports_q.get(timeout=30)
        body = b'{"debit":"acc-1","credit":"acc-2","amount":"100.00"}'
        ledger_id = topo.spiffe_id("ledger")

        def client(mode: str) -> httpx.AsyncClient:
            if mode == "plain":
                return httpx.AsyncClient(base_url=f"http://127.0.0.1:{plain_port}")
            port = mtls_port if mode == "mtls" else authz_port
            return service_client(payments, ledger_id, f"https://127.0.0.1:{port}")

        reused: dict[str, list[float]] = {k: [] for k in ("plain", "mtls", "mtls+authz")}
        cs = {mode: client(mode) for mode in reused}
        for c in cs.values():  # warm-up: connection, caches, JIT-free but cold paths
            for _ in range(200):
                assert (await c.post("/v1/postings", content=body)).status_code == 200
        for _ in range(rounds):
            for mode, c in cs.items():
                for _ in range(calls // rounds):
                    t = time.perf_counter()
                    r = await c.post("/v1/postings", content=body)
                    reused[mode].append(time.perf_counter() - t)
                    assert r.status_code == 200
        for c in cs.values():
            await c.aclose()

        fresh: dict[str, list[float]] = {k: [] for k in ("plain", "mtls")}
        for _ in range(fresh_calls):
            for mode, samples in fresh.items():
                c = client(mode)
                t = time.perf_counter()
                r = await c.post("/v1/postings", content=body)
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200
                await c.aclose()
    finally:
        proc.terminate()
        proc.join(5)

    def table(title: str, data: dict[str, list[float]]) -> None:
        base = statistics.median(data["plain"])
        print(f"\n{title}")
        print(
            f"{'mode':<12}{'calls':>7}{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}{'p50 ratio':>11}"
        )
        for mode, xs in data.items():
            p50 = statistics.median(xs)
            print(
                f"{mode:<12}{len(xs):>7}{p50 * 1e6:>10.0f}{_pct(xs, 0.9) * 1e6:>10.0f}"
                f"{_pct(xs, 0.99) * 1e6:>10.0f}{p50 / base:>10.2f}x"
            )

    table("Connection reused (keep-alive), sequential calls:", reused)
    table("New connection per call (TCP vs TCP + mTLS handshake):", fresh)
    ratio = statistics.median(reused["mtls"]) / statistics.median(reused["plain"])
    print(
        f"\ngoal: mtls p50 within 1.3x of plain -> {ratio:.2f}x "
        f"{'MET' if ratio <= 1.3 else 'NOT MET'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000, help="calls per mode with connection reuse")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--fresh", type=int, default=200, help="calls per mode with a new connection each"
    )
    args = ap.parse_args()
    asyncio.run(_run(args.calls, args.rounds, args.fresh))


if __name__ == "__main__":
    main()
