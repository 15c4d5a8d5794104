"""Ramparts WAF vs nginx + ModSecurity v3, same CRS at PL1, one run (by hand, never in CI).

    .venv/bin/python bench/waf/bench_waf.py [--crs DIR] [--duration 8]

Installs nginx, libnginx-mod-http-modsecurity and wrk from Debian if missing.
Both fronts load the same CRS checkout (default ../shared/conformance/crs,
crs-setup.conf.example, paranoia level 1, blocking) and proxy to the same
upstream (an nginx serving a static 200, never the bottleneck):

* A: the Ramparts gateway with ``WafGatewayHook`` (one process);
* B: nginx (one worker) + ModSecurity v3 (Debian's libmodsecurity3) with
  Debian's modsecurity.conf, ``SecRuleEngine On``, audit log off.

wrk (one thread, 20 connections) replays a clean mix (GETs with query
strings, a form POST, a JSON POST, browser headers) and an attack mix (SQLi,
XSS, LFI, RCE, SSRF, scanner UA), alternating A/B for several rounds so
background load hits both alike; medians are reported, with each server's
own CPU time per request (from /proc, steadier than requests/s on a shared
machine). It also measures the engine alone, in-process, on the same mixes
(requests per CPU-second of one core, no HTTP). Ratios above 1 mean Ramparts is faster.
The attack mix also reports how many requests each side blocked.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CRS = ROOT.parent / "shared" / "conformance" / "crs"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
BROWSER = {
    "User-Agent": UA,
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.7",
    "Accept-Encoding": "gzip, deflate",
}
FORM = "application/x-www-form-urlencoded"

# (method, path, extra headers, body)
CLEAN = [
    ("GET", "/v1/accounts/0123456789/statements?from=2024-01-01&to=2024-03-31&page=2", {}, ""),
    (
        "GET",
        "/v1/search?q=savings+plan&sort=rate&limit=20",
        {"Cookie": "sid=a8f3e9; theme=dark"},
        "",
    ),
    ("GET", "/static/app.js?v=4.2.1", {"Referer": "https://bank.example/"}, ""),
    (
        "POST",
        "/v1/login",
        {"Content-Type": FORM},
        "username=ada%40example.com&password=S3cr3t%21%23",
    ),
    (
        "POST",
        "/v1/payments",
        {"Content-Type": "application/json"},
        '{"amount": 150000, "currency": "NGN", "to": "0123456789", "narration": "Rent Flat 3B"}',
    ),
]
ATTACK = [
    ("GET", "/v1/search?q=1%27%20UNION%20SELECT%20card,cvv%20FROM%20cards--", {}, ""),
    ("GET", "/v1/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", {}, ""),
    ("GET", "/v1/files?name=../../../../etc/passwd", {}, ""),
    ("GET", "/v1/ping?host=8.8.8.8;cat%20/etc/passwd", {}, ""),
    ("POST", "/v1/hooks", {"Content-Type": FORM}, "url=http://169.254.169.254/latest/meta-data/"),
    ("GET", "/v1/accounts", {"User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}, ""),
]


def ensure_tools() -> None:
    need = {"nginx": "nginx", "wrk": "wrk"}
    missing = [pkg for pkg, exe in need.items() if shutil.which(exe) is None]
    if not Path("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so").is_file():
        missing.append("libnginx-mod-http-modsecurity")
    if missing:
        print(f"installing {missing} with apt-get ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def nginx_conf(work: Path, port: int, up: int | None, modsec_rules: Path | None) -> Path:
    (work / "html").mkdir(exist_ok=True)
    (work / "html" / "index.html").write_text("ok\n")
    load = (
        "load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;" if modsec_rules else ""
    )
    modsec = f"modsecurity on; modsecurity_rules_file {modsec_rules};" if modsec_rules else ""
    if up is None:
        location = f"location / {{ root {work}/html; try_files /index.html =404; }}"
    else:
        location = (
            f"location / {{ proxy_pass http://127.0.0.1:{up}; proxy_http_version 1.1; "
            'proxy_set_header Connection ""; }'
        )
    upstream_block = ""
    conf = f"""{load}
worker_processes 1;
daemon off;
pid {work}/nginx-{port}.pid;
error_log {work}/error-{port}.log crit;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body-{port};
  proxy_temp_path {work}/proxy-{port};
  {upstream_block}
  server {{
    listen 127.0.0.1:{port};
    {modsec}
    {location}
    error_page 405 =200 /index.html;
  }}
}}
"""
    path = work / f"nginx-{port}.conf"
    path.write_text(conf)
    return path


def modsec_rules(work: Path, crs: Path) -> Path:
    path = work / "modsec-main.conf"
    path.write_text(
        "Include /etc/nginx/modsecurity.conf\n"
        "SecRuleEngine On\nSecAuditEngine Off\n"
        f"Include {crs}/crs-setup.conf.example\nInclude {crs}/rules/*.conf\n"
    )
    return path


def gateway_topology(work: Path, port: int, admin: int, up: int) -> Path:
    path = work / "ramparts.yaml"
    path.write_text(
        f"""version: 1
trust_domain: bench.local
namespace: bench
services:
  app:
    listen: 127.0.0.1:{up}
gateway:
  listen: 127.0.0.1:{port}
  admin_listen: 127.0.0.1:{admin}
  plain_http: true
  routes:
    - {{prefix: /, service: app, auth: none, methods: [GET, POST], waf: block}}
"""
    )
    return path


GATEWAY_MAIN = """
import sys
from ramparts.events import EventEmitter
from ramparts.gateway import Gateway, GatewayOptions, AccessLog
from ramparts.gateway._serve import serve
from ramparts.waf import WafEngine
from ramparts.waf.hook import WafGatewayHook

engine = WafEngine.load(crs_path=sys.argv[2], paranoia_level=1)
gw = Gateway(
    sys.argv[1],
    emitter=EventEmitter([], service="gateway"),
    options=GatewayOptions(plain_upstreams=True, identity_over_plain=True),
    access_log=AccessLog(enabled=False),
    waf=WafGatewayHook(engine),
)
serve(lambda: gw, watch=False)
"""


def lua_script(work: Path, mix: list[tuple[str, str, dict[str, str], str]]) -> Path:
    reqs = []
    for method, path, extra, body in mix:
        headers = {**BROWSER, "Host": "bank.example", **extra}
        hdr = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
        b = json.dumps(body) if body else "nil"
        reqs.append(f"wrk.format({json.dumps(method)}, {json.dumps(path)}, {{{hdr}}}, {b})")
    script = work / f"mix-{len(mix)}-{abs(hash(str(mix))) % 10000}.lua"
    script.write_text(
        "local reqs = {}\nlocal i = 0\n"
        "init = function(args)\n"
        + "".join(f"  reqs[{n + 1}] = {r}\n" for n, r in enumerate(reqs))
        + "end\n"
        "request = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("NON2XX %d\\n", summary.errors.status))\nend\n'
    )
    return script


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its direct children (nginx workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        me = int(stat.parent.name)
        if me == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def wrk(port: int, script: Path, duration: int, pid: int = 0) -> tuple[float, int, int, float]:
    """(requests/s, total requests, non-2xx responses, server CPU microseconds per request)."""
    argv = ["wrk", "-t1", "-c20", f"-d{duration}s", "-s", str(script), f"http://127.0.0.1:{port}/"]
    cpu0 = tree_cpu(pid) if pid else 0.0
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = (tree_cpu(pid) - cpu0) if pid else 0.0
    if "-v" in sys.argv:
        print(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"NON2XX (\d+)", out)
    return rps, total, int(non2xx.group(1)) if non2xx else 0, cpu / max(total, 1) * 1e6


def engine_only(
    crs: Path, mix: list[tuple[str, str, dict[str, str], str]], seconds: float
) -> float:
    sys.path.insert(0, str(ROOT / "src"))
    from ramparts.waf import WafEngine

    engine = WafEngine.load(crs_path=crs, paranoia_level=1)
    n = 0
    end = time.process_time() + seconds
    start = time.process_time()
    while time.process_time() < end:
        for method, path, extra, body in mix:
            headers = [*BROWSER.items(), ("Host", "bank.example"), *extra.items()]
            if body:
                headers.append(("Content-Length", str(len(body))))
            tx = engine.new_transaction("127.0.0.1", method, path, "1.1", headers)
            if tx.process_request_headers() is None:
                tx.process_request_body(body.encode(), extra.get("Content-Type"))
            n += 1
    return n / (time.process_time() - start)  # CPU time: steady on a shared machine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--crs", type=Path, default=DEFAULT_CRS)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-v", action="store_true", help="print each wrk report")
    args = ap.parse_args()
    ensure_tools()
    crs = args.crs.resolve()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-waf-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as www-data and must read the static file
        try:
            up = free_port()
            procs.append(subprocess.Popen(["nginx", "-c", str(nginx_conf(work, up, None, None))]))
            wait_port(up)
            ms_port = free_port()
            conf = nginx_conf(work, ms_port, up, modsec_rules(work, crs))
            procs.append(subprocess.Popen(["nginx", "-c", str(conf)]))
            wait_port(ms_port)
            gw_port, admin = free_port(), free_port()
            topo = gateway_topology(work, gw_port, admin, up)
            procs.append(
                subprocess.Popen([sys.executable, "-c", GATEWAY_MAIN, str(topo), str(crs)])
            )
            wait_port(gw_port)
            print(f"CRS: {crs}  (PL1, blocking; wrk -t1 -c20 -d{args.duration}s)")
            print(f"median of {args.rounds} alternating rounds; CPU = server CPU per request\n")
            print(
                f"{'mix':7} {'ramparts rps':>12} {'modsec rps':>10} {'ratio':>6}  "
                f"{'ramparts CPU':>12} {'modsec CPU':>10} {'ratio':>6}  blocked (r / m)"
            )
            gw_pid, ms_pid = procs[2].pid, procs[1].pid
            for name, mix in (("clean", CLEAN), ("attack", ATTACK)):
                script = lua_script(work, mix)
                wrk(gw_port, script, 2)  # warm-up
                wrk(ms_port, script, 2)
                rs, ms = [], []
                for _ in range(args.rounds):
                    rs.append(wrk(gw_port, script, args.duration, gw_pid))
                    ms.append(wrk(ms_port, script, args.duration, ms_pid))
                r_rps = statistics.median(x[0] for x in rs)
                m_rps = statistics.median(x[0] for x in ms)
                r_cpu = statistics.median(x[3] for x in rs)
                m_cpu = statistics.median(x[3] for x in ms)
                r_blk = sum(x[2] for x in rs) / sum(x[1] for x in rs)
                m_blk = sum(x[2] for x in ms) / sum(x[1] for x in ms)
                print(
                    f"{name:7} {r_rps:12.0f} {m_rps:10.0f} {r_rps / m_rps:5.2f}x  "
                    f"{r_cpu:10.0f}us {m_cpu:8.0f}us {m_cpu / r_cpu:5.2f}x  "
                    f"{r_blk:.0%} / {m_blk:.0%}"
                )
            print("\nengine alone, in-process, per CPU-second (no HTTP):")
            for name, mix in (("clean", CLEAN), ("attack", ATTACK)):
                print(f"  {name:8} {engine_only(crs, mix, 5):8.0f} requests/s")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
