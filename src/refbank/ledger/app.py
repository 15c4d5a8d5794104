"""The ledger service's API.

Callers (per the topology): payments posts; statements reads entries and
balances. Amounts are integers in minor units (kobo): never floats.
"""

from __future__ import annotations

from typing import Annotated, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, model_validator

from refbank._db import connection, service_app

Account = Annotated[str, Field(pattern=r"^([0-9]{10}|internal:[a-z_]{1,32})$")]


class PostingIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=128)
    debit: Account
    credit: Account
    amount: int = Field(gt=0, le=10**15)
    narration: str = Field(default="", max_length=140)
    debit_owner: str | None = Field(default=None, max_length=64)
    credit_owner: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _two_sides(self) -> PostingIn:
        if self.debit == self.credit:
            raise ValueError("debit and credit must be different accounts")
        return self


class Posting(BaseModel):
    id: int
    idempotency_key: str
    debit: str
    credit: str
    amount: int
    narration: str
    created_at: str


class Entry(BaseModel):
    posting_id: int
    direction: Literal["debit", "credit"]
    amount: int
    counterparty: str
    narration: str
    created_at: str


class Entries(BaseModel):
    account: str
    owner: str | None
    entries: list[Entry]


class Balance(BaseModel):
    account: str
    owner: str | None
    balance: int
    currency: str = "NGN"


Conn = Annotated[psycopg.AsyncConnection, Depends(connection)]


def create_app(pool: AsyncConnectionPool) -> FastAPI:
    app = service_app("ledger", pool)

    @app.post("/v1/postings", status_code=201, response_model=Posting)
    async def post(body: PostingIn, c: Conn) -> Posting | JSONResponse:
        """Move money between two accounts, once per idempotency key."""
        try:
            async with c.transaction():
                for account, owner in sorted(
                    ((body.debit, body.debit_owner), (body.credit, body.credit_owner))
                ):
                    if not account.startswith("internal:"):
                        await c.execute(
                            "INSERT INTO ledger_accounts (account, kind, owner)"
                            " VALUES (%s, 'customer', %s)"
                            " ON CONFLICT (account) DO NOTHING",
                            (account, owner),
                        )
                # Lock both accounts in one order, so crossing transfers cannot deadlock.
                cur = await c.execute(
                    "SELECT account FROM ledger_accounts WHERE account IN (%s, %s)"
                    " ORDER BY account FOR UPDATE",
                    (body.debit, body.credit),
                )
                if len(await cur.fetchall()) != 2:
                    raise HTTPException(404, "unknown internal account")
                cur = c.cursor(row_factory=dict_row)
                await cur.execute(
                    "INSERT INTO postings (idempotency_key, debit, credit, amount, narration)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING"
                    " RETURNING id, idempotency_key, debit, credit, amount, narration,"
                    " created_at::text",
                    (body.idempotency_key, body.debit, body.credit, body.amount, body.narration),
                )
                row = await cur.fetchone()
        except psycopg.errors.CheckViolation as exc:
            if exc.diag.constraint_name == "no_overdraft":
                raise HTTPException(409, "insufficient funds") from None
            raise HTTPException(422, f"posting violates {exc.diag.constraint_name}") from None
        if row is not None:
            return Posting(**row)
        return await _replay(c, body)

    async def _replay(c: psycopg.AsyncConnection, body: PostingIn) -> JSONResponse:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT id, idempotency_key, debit, credit, amount, narration, created_at::text"
            " FROM postings WHERE idempotency_key = %s",
            (body.idempotency_key,),
        )
        row = await cur.fetchone()
        assert row is not None  # the conflict that sent us here means it exists
        if (row["debit"], row["credit"], row["amount"]) != (body.debit, body.credit, body.amount):
            raise HTTPException(409, "idempotency key already used for a different posting")
        return JSONResponse(Posting(**row).model_dump(), status_code=200)

    @app.get("/v1/accounts/{account}/balance", response_model=Balance)
    async def balance(account: Account, c: Conn) -> Balance:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT account, owner, balance FROM ledger_accounts WHERE account = %s", (account,)
        )
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(404, "no such account")
        return Balance(**row)

    @app.get("/v1/accounts/{account}/entries", response_model=Entries)
    async def entries(
        account: Account,
        c: Conn,
        since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        until: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> Entries:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute("SELECT owner FROM ledger_accounts WHERE account = %s", (account,))
        acct = await cur.fetchone()
        if acct is None:
            raise HTTPException(404, "no such account")
        await cur.execute(
            "SELECT id AS posting_id,"
            " CASE WHEN debit = %(a)s THEN 'debit' ELSE 'credit' END AS direction,"
            " amount, CASE WHEN debit = %(a)s THEN credit ELSE debit END AS counterparty,"
            " narration, created_at::text"
            " FROM postings WHERE (debit = %(a)s OR credit = %(a)s)"
            " AND (%(since)s::date IS NULL OR created_at >= %(since)s::date)"
            " AND (%(until)s::date IS NULL OR created_at < %(until)s::date + 1)"
            " ORDER BY id LIMIT %(limit)s",
            {"a": account, "since": since, "until": until, "limit": limit},
        )
        return Entries(
            account=account, owner=acct["owner"], entries=[Entry(**r) for r in await cur.fetchall()]
        )

    return app
