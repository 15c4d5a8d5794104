"""The whole bank in-process on real PostgreSQL: one database per service, calls authorised
by the topology, a customer journey from onboarding to a PDF statement, and webhooks that
cannot be turned into SSRF."""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from pypdf import PdfReader
from tests.egress._server import http_server
from tests.refbank._harness import AsCaller, LocalServices

from ramparts.config import EgressRule, default_topology
from ramparts.egress import EgressClient, EgressPolicy
from ramparts.events import EventEmitter, MemorySink
from refbank._db import open_database
from refbank._pii import PIIVault
from refbank.accounts.app import create_app as accounts_app
from refbank.ledger.app import create_app as ledger_app
from refbank.notifications.app import create_app as notifications_app
from refbank.payments.app import create_app as payments_app
from refbank.statements.app import create_app as statements_app

SERVICES = ("accounts", "ledger", "payments", "notifications", "statements")
PARTNER = "hooks.partner.test"


@pytest.fixture(params=["postgres", "sqlite"])
def bank_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh database per service (PostgreSQL, or SQLite files as in the embedded default)."""
    if request.param == "sqlite":
        yield {svc: f"sqlite:///{tmp_path / svc}.db" for svc in SERVICES}
        return
    pg_admin_dsn = request.getfixturevalue("pg_admin_dsn")
    suffix = secrets.token_hex(4)
    names = {svc: f"rp_bank_{svc}_{suffix}" for svc in SERVICES}
    base = pg_admin_dsn.rsplit("/", 1)[0]
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield {svc: f"{base}/{name}" for svc, name in names.items()}
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            for name in names.values():
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


class Bank:
    def __init__(self, dbs: dict[str, str], partner_port: int) -> None:
        topo = default_topology()
        self.apps: dict[str, FastAPI] = {}
        self.services = LocalServices(topo, self.apps, "gateway")
        self.egress_events = MemorySink()

        async def partner_dns(host: str, port: int) -> list[Any]:
            return [ipaddress.ip_address("127.0.0.1")] if host == PARTNER else []

        policy = EgressPolicy(
            "notifications",
            [EgressRule.parse(f"{PARTNER}:{partner_port}")],
            # The partner's test server lives on loopback; nothing else does.
            dangerously_allowed_networks=[ipaddress.ip_network("127.0.0.1/32")],
        )
        egress = EgressClient(policy, EventEmitter([self.egress_events]), resolver=partner_dns)
        self.apps.update(
            accounts=accounts_app(open_database(dbs["accounts"]), vault=PIIVault(os.urandom(32))),
            ledger=ledger_app(open_database(dbs["ledger"])),
            payments=payments_app(
                open_database(dbs["payments"]), services=self.services.as_("payments")
            ),
            notifications=notifications_app(open_database(dbs["notifications"]), egress=egress),
            statements=statements_app(
                open_database(dbs["statements"]), services=self.services.as_("statements")
            ),
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Bank]:
        async with contextlib.AsyncExitStack() as stack:
            for app in self.apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield self

    async def as_user(
        self, sub: str, service: str, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        """A request as the gateway makes it: over its verified connection, with the subject."""
        transport = httpx.ASGITransport(app=AsCaller(self.apps[service], "gateway"))
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
            return await client.request(method, path, headers={"X-Ramparts-Subject": sub}, **kw)


def _ok(method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return 204, {}, b""


def test_customer_journey_end_to_end(bank_dbs: dict[str, str]) -> None:
    """Onboard, open accounts, fund, transfer, webhook, statement PDF; BVNs stay masked."""

    async def run() -> None:
        async with http_server(_ok) as partner:
            bank = Bank(bank_dbs, partner.port)
            async with bank.running():
                alice = await bank.as_user(
                    "alice",
                    "accounts",
                    "POST",
                    "/v1/customers",
                    json={"name": "Alice Obi", "bvn": "22212345678", "nin": "12345678901"},
                )
                assert alice.status_code == 201, alice.text
                assert alice.json()["bvn"] == "*******5678"
                assert "22212345678" not in alice.text
                await bank.as_user(
                    "bob",
                    "accounts",
                    "POST",
                    "/v1/customers",
                    json={"name": "Bob Eze", "bvn": "22298765432", "nin": "10987654321"},
                )
                a_acct = (await bank.as_user("alice", "accounts", "POST", "/v1/accounts")).json()[
                    "nuban"
                ]
                b_acct = (await bank.as_user("bob", "accounts", "POST", "/v1/accounts")).json()[
                    "nuban"
                ]

                hook = await bank.as_user(
                    "bob",
                    "notifications",
                    "POST",
                    "/v1/webhooks",
                    json={"url": f"http://{PARTNER}:{partner.port}/x"},
                )
                assert hook.status_code == 201, hook.text
                ssrf = await bank.as_user(
                    "bob",
                    "notifications",
                    "POST",
                    "/v1/webhooks",
                    json={"url": "http://169.254.169.254/latest/meta-data/"},
                )
                assert ssrf.status_code == 422
                assert "cloud metadata" in ssrf.json()["detail"]

                dep = await bank.as_user(
                    "ops",
                    "payments",
                    "POST",
                    "/v1/deposits",
                    json={"to_account": a_acct, "amount": 100_000, "idempotency_key": "d1"},
                )
                assert dep.status_code == 201, dep.text
                body = {
                    "from_account": a_acct,
                    "to_account": b_acct,
                    "amount": 25_050,
                    "narration": "rent share",
                    "idempotency_key": "t1",
                }
                t1 = await bank.as_user("alice", "payments", "POST", "/v1/transfers", json=body)
                assert (t1.status_code, t1.json()["status"]) == (201, "completed"), t1.text
                replay = await bank.as_user("alice", "payments", "POST", "/v1/transfers", json=body)
                assert (replay.status_code, replay.json()["id"]) == (200, t1.json()["id"])

                # Bob cannot move Alice's money, and learns nothing about her account.
                theft = await bank.as_user(
                    "bob",
                    "payments",
                    "POST",
                    "/v1/transfers",
                    json={
                        **body,
                        "from_account": a_acct,
                        "to_account": b_acct,
                        "idempotency_key": "x",
                    },
                )
                assert theft.status_code == 404
                too_much = await bank.as_user(
                    "alice",
                    "payments",
                    "POST",
                    "/v1/transfers",
                    json={**body, "amount": 10**6, "idempotency_key": "t2"},
                )
                assert too_much.status_code == 409

                # Bob's webhook heard about the money he received, through the egress guard.
                deliveries = (
                    await bank.as_user("bob", "notifications", "GET", "/v1/webhooks/deliveries")
                ).json()
                assert [(d["event_type"], d["outcome"]) for d in deliveries] == [
                    ("transfer.received", "delivered")
                ]
                assert [(r[0], r[1]) for r in partner.requests] == [("POST", "/x")]
                assert (
                    await bank.as_user("alice", "notifications", "GET", "/v1/webhooks/deliveries")
                ).json() == []
                pdf = await bank.as_user(
                    "alice",
                    "statements",
                    "GET",
                    f"/v1/statements/{a_acct}",
                    params={"month": _this_month()},
                )
                assert pdf.status_code == 200, pdf.text
                assert pdf.headers["content-type"] == "application/pdf"
                text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
                assert a_acct in text
                assert "rent share" in text
                assert "Closing balance: NGN 749.50" in text
                not_hers = await bank.as_user(
                    "alice",
                    "statements",
                    "GET",
                    f"/v1/statements/{b_acct}",
                    params={"month": _this_month()},
                )
                assert not_hers.status_code == 404

    asyncio.run(run())


def _this_month() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


# What each caller would legitimately ask of each callee (within any per-path rules).
PROBES = {
    "accounts": ("GET", "/v1/accounts/0000014579"),
    "ledger": {
        "payments": ("POST", "/v1/postings"),
        "statements": ("GET", "/v1/accounts/0000014579/balance"),
    },
    "payments": ("GET", "/v1/transfers/1"),
    "notifications": ("POST", "/v1/events"),
    "statements": ("GET", "/v1/statements/0000014579"),
}


def test_authorization_matrix_follows_the_topology(bank_dbs: dict[str, str]) -> None:
    """Each service can call exactly what the topology allows; everything else is 403."""
    topo = default_topology()

    async def run() -> None:
        async with http_server(_ok) as partner:
            bank = Bank(bank_dbs, partner.port)
            async with bank.running():
                for caller in SERVICES:
                    for callee in SERVICES:
                        if caller == callee:
                            continue
                        probe = PROBES[callee]
                        method, path = (
                            probe.get(caller, ("GET", "/")) if isinstance(probe, dict) else probe
                        )
                        r = await bank.services.as_(caller).call(callee, method, path, json={})
                        if (caller, callee) in topo.edges:
                            assert r.status_code != 403, (caller, callee, r.text)
                        else:
                            assert r.status_code == 403, (caller, callee)
                            assert "no edge" in r.json()["detail"]
                # Within an allowed edge, the per-path rules still bind: statements cannot post.
                r = await bank.services.as_("statements").call(
                    "ledger", "POST", "/v1/postings", json={}
                )
                assert r.status_code == 403
                assert "statements may not POST /v1/postings on ledger" in r.json()["detail"]

    asyncio.run(run())
