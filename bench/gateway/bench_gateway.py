"""Ramparts gateway vs HAProxy, side by side in one run (run by hand, never in CI).

    .venv/bin/python bench/gateway/bench_gateway.py [--duration 10] [--rounds 3] [--workers 1]

Installs haproxy and wrk from Debian if missing (apt-get), starts one fast
upstream (an HAProxy instance answering every request itself, so it is never
the bottleneck of either side), and measures with wrk on 127.0.0.1:

(a) plain proxying: ramparts gateway (route with ``auth: none``, no limit) vs
    HAProxy ``mode http`` with server keep-alive;
(b) RS256 JWT + rate limit + correlation ID: ramparts (issuer with a JWKS file,
    ``auth: jwt``, a per-IP limit far above the load) vs HAProxy with
    ``jwt_verify`` (plus iss/aud/exp checks), a stick-table ``http_req_rate``
    limit and ``unique-id-header X-Request-ID``.

Rounds alternate A/B so that load from anything else on the machine hits both
sides alike; the median of the rounds is reported, with ratios (gateway /
HAProxy for requests per second, HAProxy / gateway for p99 latency: above 1
means the gateway is faster). Goals: (a) >= 0.8x, (b) >= 2x, p99 no worse.
Access logs are off on both sides (HAProxy logs nothing by default). Each
side's own CPU time per request (user + system, from /proc, all its processes
and threads) is reported too: on a shared 2-core machine it is steadier than
requests per second, which move with whatever else is running.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey

ISSUER = "https://idp.bench"
CONNECTIONS = 50


def ensure_tools() -> None:
    missing = [
        pkg for pkg, exe in (("haproxy", "haproxy"), ("wrk", "wrk")) if shutil.which(exe) is None
    ]
    if missing:
        print(f"installing {missing} with apt-get ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


HAPROXY_DEFAULTS = """
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
  option http-keep-alive
"""


def upstream_cfg(port: int) -> str:
    return f"""
global
  nbthread 1
{HAPROXY_DEFAULTS}
frontend upstream
  bind 127.0.0.1:{port}
  http-request return status 200 content-type application/json string "{{\\"ok\\":true}}"
"""


def haproxy_plain_cfg(port: int, up: int, threads: int) -> str:
    return f"""
global
  nbthread {threads}
{HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:{up}
"""


def haproxy_secure_cfg(port: int, up: int, threads: int, pubkey: Path) -> str:
    return f"""
global
  nbthread {threads}
{HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:{port}
  unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
  unique-id-header X-Request-ID
  stick-table type ip size 100k expire 60s store http_req_rate(1s)
  http-request track-sc0 src
  http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt 1000000 }}
  http-request set-var(txn.bearer) http_auth_bearer
  acl has_token var(txn.bearer) -m found
  acl alg_ok var(txn.bearer),jwt_header_query('$.alg') -m str RS256
  acl iss_ok var(txn.bearer),jwt_payload_query('$.iss') -m str {ISSUER}
  acl aud_ok var(txn.bearer),jwt_payload_query('$.aud') -m str api
  acl sig_ok var(txn.bearer),jwt_verify(RS256,"{pubkey}") -m int 1
  http-request deny deny_status 401 unless has_token alg_ok iss_ok aud_ok
  http-request set-var(txn.now) date()
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request deny deny_status 401 if {{ var(txn.exp),sub(txn.now) -m int lt 0 }}
  http-request deny deny_status 401 unless sig_ok
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:{up}
"""


def gateway_topology(port: int, admin: int, up: int, jwks: Path | None) -> str:
    if jwks is None:
        route = "    - {prefix: /, service: app, auth: none}"
        issuers = ""
    else:
        route = (
            "    - prefix: /\n      service: app\n      auth: jwt\n"
            "      rate_limit: {rate: 1000000/s, burst: 1000000, key: ip}"
        )
        issuers = (
            f"  issuers:\n    - issuer: {ISSUER}\n      jwks: {jwks}\n"
            "      algorithms: [RS256]\n      audiences: [api]\n"
        )
    return f"""version: 1
trust_domain: bench.local
namespace: bench
services:
  app:
    listen: 127.0.0.1:{up}
gateway:
  listen: 127.0.0.1:{port}
  admin_listen: 127.0.0.1:{admin}
  plain_http: true
{issuers}  routes:
{route}
"""


class Procs:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], port: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        wait_port(port)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and all its descendants (all threads)."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _TICK
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wrk(port: int, duration: int, headers: list[str], pid: int) -> tuple[float, float, int, float]:
    """(requests/s, p99 ms, non-2xx count, proxy CPU microseconds per request) from one wrk run."""
    cpu_before = cpu_seconds(pid)
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}/v1/x"], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    assert m is not None, out
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / max(total, 1)
    return rps, p99, int(bad.group(1)) if bad else 0, cpu_us


def check(port: int, headers: list[str]) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/x")
    for h in headers:
        name, _, value = h.partition(": ")
        req.add_header(name, value)
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200, resp.status
        assert resp.headers.get("X-Request-ID") or "ramparts" not in str(port)


def compare(  # noqa: PLR0917 - one call site, read as a sentence
    name: str,
    gw: tuple[int, int],
    hp: tuple[int, int],
    headers: list[str],
    duration: int,
    rounds: int,
) -> dict:
    """``gw`` and ``hp`` are (port, pid)."""
    gw_port, gw_pid = gw
    hp_port, hp_pid = hp
    check(gw_port, headers)
    check(hp_port, headers)
    wrk(gw_port, 2, headers, gw_pid)  # warm-up: pools, JWKS load, verification cache
    wrk(hp_port, 2, headers, hp_pid)
    gw, hp = [], []
    for _ in range(rounds):
        gw.append(wrk(gw_port, duration, headers, gw_pid))
        hp.append(wrk(hp_port, duration, headers, hp_pid))
    g_rps = statistics.median(r[0] for r in gw)
    h_rps = statistics.median(r[0] for r in hp)
    g_p99 = statistics.median(r[1] for r in gw)
    h_p99 = statistics.median(r[1] for r in hp)
    g_cpu = statistics.median(r[3] for r in gw)
    h_cpu = statistics.median(r[3] for r in hp)
    result = {
        "scenario": name,
        "gateway_rps": round(g_rps),
        "haproxy_rps": round(h_rps),
        "rps_ratio": round(g_rps / h_rps, 3),
        "gateway_p99_ms": round(g_p99, 2),
        "haproxy_p99_ms": round(h_p99, 2),
        "p99_ratio_haproxy_over_gateway": round(h_p99 / g_p99, 3),
        "gateway_cpu_us_per_req": round(g_cpu, 1),
        "haproxy_cpu_us_per_req": round(h_cpu, 1),
        "cpu_ratio_haproxy_over_gateway": round(h_cpu / g_cpu, 3),
        "gateway_errors": sum(r[2] for r in gw),
        "haproxy_errors": sum(r[2] for r in hp),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="gateway workers = HAProxy threads")
    parser.add_argument("--only", choices=["a", "b"], default=None)
    args = parser.parse_args()
    ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="ramparts-gw-bench-"))
    procs = Procs()
    py = sys.executable
    gw_cmd = [py, "-c", "from ramparts.gateway.cli import app; app()", "run", "--plain-upstreams",
              "--access-log", "off", "--workers", str(args.workers)]  # fmt: skip
    results = []
    try:
        up = free_port()
        (work / "up.cfg").write_text(upstream_cfg(up))
        procs.start(["haproxy", "-f", str(work / "up.cfg")], up)

        if args.only in (None, "a"):
            hp, gw = free_port(), free_port()
            (work / "plain.cfg").write_text(haproxy_plain_cfg(hp, up, args.workers))
            hp_proc = procs.start(["haproxy", "-f", str(work / "plain.cfg")], hp)
            (work / "plain.yaml").write_text(gateway_topology(gw, free_port(), up, None))
            gw_proc = procs.start([*gw_cmd, "--topology", str(work / "plain.yaml")], gw)
            results.append(
                compare(
                    "a: plain proxy",
                    (gw, gw_proc.pid),
                    (hp, hp_proc.pid),
                    [],
                    args.duration,
                    args.rounds,
                )
            )

        if args.only in (None, "b"):
            key = RSAKey.generate_key(2048, parameters={"kid": "bench"})
            (work / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
            pem = key.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (work / "pub.pem").write_bytes(pem)
            claims = {
                "iss": ISSUER,
                "aud": "api",
                "sub": "bench-user",
                "exp": int(time.time()) + 3600,
            }
            token = jose_jwt.encode({"alg": "RS256", "kid": "bench"}, claims, key)
            hp, gw = free_port(), free_port()
            (work / "secure.cfg").write_text(
                haproxy_secure_cfg(hp, up, args.workers, work / "pub.pem")
            )
            hp_proc = procs.start(["haproxy", "-f", str(work / "secure.cfg")], hp)
            (work / "secure.yaml").write_text(
                gateway_topology(gw, free_port(), up, work / "jwks.json")
            )
            gw_proc = procs.start([*gw_cmd, "--topology", str(work / "secure.yaml")], gw)
            headers = [f"Authorization: Bearer {token}"]
            # Both sides must refuse a forged token, or the comparison is meaningless.
            forged = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)
            for port in (gw, hp):
                try:
                    check(port, [f"Authorization: Bearer {forged}"])
                    raise SystemExit(f"port {port} accepted a forged token")
                except urllib.error.HTTPError as exc:
                    assert exc.code in (401, 403), exc.code
            results.append(
                compare(
                    "b: RS256 JWT + rate limit + request id",
                    (gw, gw_proc.pid), (hp, hp_proc.pid), headers, args.duration, args.rounds,
                )
            )  # fmt: skip
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"{'scenario':40} {'gw r/s':>8} {'hp r/s':>8} {'ratio':>7} {'gw p99':>9} {'hp p99':>9}"
        f" {'gw cpu/req':>11} {'hp cpu/req':>11} {'cpu ratio':>9}"
    )
    for r in results:
        print(
            f"{r['scenario']:40} {r['gateway_rps']:>8} {r['haproxy_rps']:>8} {r['rps_ratio']:>6}x "
            f"{r['gateway_p99_ms']:>7}ms {r['haproxy_p99_ms']:>7}ms "
            f"{r['gateway_cpu_us_per_req']:>9}us {r['haproxy_cpu_us_per_req']:>9}us "
            f"{r['cpu_ratio_haproxy_over_gateway']:>8}x"
        )
    print(
        "ratio = gateway r/s / HAProxy r/s; "
        "cpu ratio = HAProxy CPU per request / gateway's (>1: gateway cheaper)"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
