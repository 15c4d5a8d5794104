"""The ledger on real PostgreSQL: balanced postings, idempotency, invariants under concurrency."""

from __future__ import annotations

import asyncio
import random
import secrets

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.refbank._harness import running

from refbank._db import open_pool
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


def invariants(dsn: str) -> None:
    """Money is conserved, no customer is overdrawn, every balance equals its derivation."""
    with psycopg.connect(dsn) as conn:
        total = conn.execute("SELECT coalesce(sum(balance), 0) FROM ledger_accounts").fetchone()[0]
        assert total == 0
        overdrawn = conn.execute(
            "SELECT count(*) FROM ledger_accounts WHERE kind='customer' AND balance < 0"
        ).fetchone()[0]
        assert overdrawn == 0
        drift = conn.execute(
            "SELECT a.account FROM ledger_accounts a WHERE a.balance <> "
            " coalesce((SELECT sum(amount) FROM postings WHERE credit = a.account), 0)"
            " - coalesce((SELECT sum(amount) FROM postings WHERE debit = a.account), 0)"
        ).fetchall()
        assert drift == []


class TestPostings:
    def test_transfer_moves_money_and_balances(self, pg_database: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_pool(pg_database))) as client:
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
        invariants(pg_database)

    def test_overdraft_is_refused_by_the_database(self, pg_database: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_pool(pg_database))) as client:
                await fund(client, a, 100)
                r = await client.post("/v1/postings", json=posting(a, b, 101))
                assert (r.status_code, r.json()["detail"]) == (409, "insufficient funds")

        asyncio.run(run())
        invariants(pg_database)

    def test_idempotent_replay_returns_the_original(self, pg_database: str) -> None:
        async def run() -> None:
            a, b = nuban(), nuban()
            async with running(create_app(open_pool(pg_database))) as client:
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
        invariants(pg_database)

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
        self, pg_database: str, field: str, value: object
    ) -> None:
        async def run() -> None:
            async with running(create_app(open_pool(pg_database))) as client:
                body = {**posting(nuban(), nuban(), 10), field: value}
                r = await client.post("/v1/postings", json=body)
                assert r.status_code == 422

        asyncio.run(run())

    def test_same_account_on_both_sides_is_refused(self, pg_database: str) -> None:
        async def run() -> None:
            a = nuban()
            async with running(create_app(open_pool(pg_database))) as client:
                await fund(client, a, 10)
                r = await client.post("/v1/postings", json=posting(a, a, 5))
                assert r.status_code == 422
                assert "different accounts" in r.text

        asyncio.run(run())

    def test_journal_is_append_only_and_balances_follow_postings(self, pg_database: str) -> None:
        """Even the database owner cannot edit history or set a balance directly."""

        async def run() -> None:
            async with running(create_app(open_pool(pg_database))) as client:
                await fund(client, nuban(), 50)

        asyncio.run(run())
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for sql in (
                "UPDATE postings SET amount = 1",
                "DELETE FROM postings",
                "TRUNCATE postings CASCADE",
                "UPDATE ledger_accounts SET balance = balance + 1000000",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(sql)
        invariants(pg_database)


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
    pg_database: str, seed: int, transfers: list[tuple[int, int, int]]
) -> None:
    """Random concurrent transfers, crossing and overdrawing, never break the books."""
    rng = random.Random(seed)
    accounts = [nuban() for _ in range(5)]

    async def run() -> None:
        async with running(create_app(open_pool(pg_database, max_size=8))) as client:
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
    invariants(pg_database)
