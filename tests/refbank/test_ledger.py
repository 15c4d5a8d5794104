"""The ledger on real PostgreSQL: balanced postings, idempotency, invariants under concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import sqlite3

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.refbank._harness import running

from refbank._db import open_database
from refbank.ledger.app import create_app
from refbank.nuban import make_nuban

BANK = "000011"


def nuban() -> str:
    return make_nuban(BANK, secrets.randbelow(10**9))


def posting(debit: str, credit: str, amount: int, key: str | None = None) -> dict[str, object]:
    return {
        "idempotency_key": key or secrets.token_hex(8),
        "debit": debit,
        "credit": credit,
        "amount": amount,
    }


async def fund(client, account: str, amount: int) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/v1/postings", json=posting("internal:settlement", account, amount))
    assert r.status_code == 201, r.text


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    """Run SQL on either engine, straight to the database, not through the service."""
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return conn.execute(sql).fetchall()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def invariants(url: str) -> None:
    """Money is conserved, no customer is overdrawn, every balance equals its derivation."""
    assert query(url, "SELECT coalesce(sum(balance), 0) FROM ledger_accounts") == [(0,)]
    overdrawn = "SELECT count(*) FROM ledger_accounts WHERE kind='customer' AND balance < 0"
    assert query(url, overdrawn) == [(0,)]
    drift = query(
        url,
        "SELECT a.account FROM ledger_accounts a WHERE a.balance <> "
        " coalesce((SELECT sum(amount) FROM postings WHERE credit = a.account), 0)"
        " - coalesce((SELECT sum(amount) FROM postings WHERE debit = a.account), 0)",
    )
    assert drift == []


class TestPostings:
    def test_transfer_moves_money_and_balances(self, database_url: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_database(database_url))) as client:
                await fund(client, a, 10_000)
                r = await client.post(
                    "/v1/postings", json={**posting(a, b, 2_500), "credit_owner": "cust-b"}
                )
                assert r.status_code == 201
                assert (await client.get(f"/v1/accounts/{a}/balance")).json()["balance"] == 7_500
                bal_b = (await client.get(f"/v1/accounts/{b}/balance")).json()
                assert (bal_b["balance"], bal_b["owner"]) == (2_500, "cust-b")
                entries = (await client.get(f"/v1/accounts/{a}/entries")).json()["entries"]
                assert [(e["direction"], e["amount"]) for e in entries] == [
                    ("credit", 10_000),
                    ("debit", 2_500),
                ]

        asyncio.run(run())
        invariants(database_url)

    def test_overdraft_is_refused_by_the_database(self, database_url: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_database(database_url))) as client:
                await fund(client, a, 100)
                r = await client.post("/v1/postings", json=posting(a, b, 101))
                assert (r.status_code, r.json()["detail"]) == (409, "insufficient funds")

        asyncio.run(run())
        invariants(database_url)

    def test_idempotent_replay_returns_the_original(self, database_url: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_database(database_url))) as client:
                await fund(client, a, 1_000)
                body = posting(a, b, 300, key="transfer-42")
                first = await client.post("/v1/postings", json=body)
                again = await client.post("/v1/postings", json=body)
                assert (first.status_code, again.status_code) == (201, 200)
                assert first.json()["id"] == again.json()["id"]
                assert (await client.get(f"/v1/accounts/{a}/balance")).json()["balance"] == 700
                changed = await client.post("/v1/postings", json={**body, "amount": 301})
                assert changed.status_code == 409
                assert "different posting" in changed.json()["detail"]

        asyncio.run(run())
        invariants(database_url)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("amount", 0),
            ("amount", -5),
            ("amount", 1.5),
            ("debit", "12345"),
            ("debit", "internal:../x"),
            ("narration", "x" * 141),
        ],
    )
    def test_malformed_postings_are_rejected(
        self, database_url: str, field: str, value: object
    ) -> None:
        async def run() -> None:
            async with running(create_app(open_database(database_url))) as client:
                body = {**posting(nuban(), nuban(), 10), field: value}
                r = await client.post("/v1/postings", json=body)
                assert r.status_code == 422

        asyncio.run(run())

    def test_same_account_on_both_sides_is_refused(self, database_url: str) -> None:
        async def run() -> None:
            a = nuban()
            async with running(create_app(open_database(database_url))) as client:
                await fund(client, a, 10)
                r = await client.post("/v1/postings", json=posting(a, a, 5))
                assert r.status_code == 422
                assert "different accounts" in r.text

        asyncio.run(run())

    def test_journal_is_append_only_and_balances_follow_postings(self, database_url: str) -> None:
        """Even the database owner cannot edit history or set a balance directly."""

        async def run() -> None:
            async with running(create_app(open_database(database_url))) as client:
                await fund(client, nuban(), 50)

        asyncio.run(run())
        statements = ["UPDATE postings SET amount = 1", "DELETE FROM postings"]
        statements.append("UPDATE ledger_accounts SET balance = balance + 1000000")
        if database_url.startswith("sqlite:///"):
            with contextlib.closing(
                sqlite3.connect(database_url.removeprefix("sqlite:///"))
            ) as conn:
                for sql in statements:
                    with pytest.raises(
                        sqlite3.IntegrityError, match=r"append-only|only through postings"
                    ):
                        conn.execute(sql)
        else:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for sql in [*statements, "TRUNCATE postings CASCADE"]:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(sql)
        invariants(database_url)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32),
    transfers=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 4_000)),
        min_size=5,
        max_size=40,
    ),
)
def test_invariants_hold_under_concurrent_transfers(
    database_url: str, seed: int, transfers: list[tuple[int, int, int]]
) -> None:
    """Random concurrent transfers, crossing and overdrawing, never break the books."""
    rng = random.Random(seed)
    accounts = [nuban() for _ in range(5)]

    async def run() -> None:
        async with running(create_app(open_database(database_url, max_size=8))) as client:
            for acct in accounts:
                await fund(client, acct, rng.randint(0, 5_000))
            results = await asyncio.gather(
                *(
                    client.post("/v1/postings", json=posting(accounts[d], accounts[c], amt))
                    for d, c, amt in transfers
                )
            )
            assert {r.status_code for r in results} <= {201, 409, 422}

    asyncio.run(run())
    invariants(database_url)
