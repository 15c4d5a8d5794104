"""The ledger service's API.

Callers (per the topology): payments posts; statements reads entries and
balances. Amounts are integers in minor units (kobo): never floats.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from refbank._db import CheckViolation, Database, db_of, service_app

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


DB = Annotated[Database, Depends(db_of)]
_POSTING_COLUMNS = (
    "id, idempotency_key, debit, credit, amount, narration, CAST(created_at AS TEXT) AS created_at"
)


def create_app(db: Database) -> FastAPI:
    app = service_app("ledger", db)

    @app.post("/v1/postings", status_code=201, response_model=Posting)
    async def post(body: PostingIn, db: DB) -> Posting | JSONResponse:
        """Move money between two accounts, once per idempotency key."""
        try:
            async with db.transaction() as tx:
                pairs = sorted(((body.debit, body.debit_owner), (body.credit, body.credit_owner)))
                for account, owner in pairs:
                    if not account.startswith("internal:"):
                        await tx.execute(
                            "INSERT INTO ledger_accounts (account, kind, owner)"
                            " VALUES (%s, 'customer', %s) ON CONFLICT (account) DO NOTHING",
                            (account, owner),
                        )
                # Lock both accounts in one order, so crossing transfers cannot deadlock.
                rows = await tx.fetchall(
                    "SELECT account FROM ledger_accounts WHERE account IN (%s, %s)"  # noqa: S608
                    f" ORDER BY account {db.for_update}",
                    (body.debit, body.credit),
                )
                if len(rows) != 2:
                    raise HTTPException(404, "unknown internal account")
                row = await tx.fetchone(
                    "INSERT INTO postings (idempotency_key, debit, credit, amount, narration)"  # noqa: S608
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING"
                    f" RETURNING {_POSTING_COLUMNS}",
                    (body.idempotency_key, body.debit, body.credit, body.amount, body.narration),
                )
        except CheckViolation as exc:
            if exc.constraint == "no_overdraft":
                raise HTTPException(409, "insufficient funds") from None
            raise HTTPException(422, f"posting violates {exc.constraint}") from None
        if row is not None:
            return Posting(**row)
        return await _replay(db, body)

    async def _replay(db: Database, body: PostingIn) -> JSONResponse:
        row = await db.fetchone(
            f"SELECT {_POSTING_COLUMNS} FROM postings WHERE idempotency_key = %s",  # noqa: S608
            (body.idempotency_key,),
        )
        assert row is not None  # the conflict that sent us here means it exists
        if (row["debit"], row["credit"], row["amount"]) != (body.debit, body.credit, body.amount):
            raise HTTPException(409, "idempotency key already used for a different posting")
        return JSONResponse(Posting(**row).model_dump(), status_code=200)

    @app.get("/v1/accounts/{account}/balance", response_model=Balance)
    async def balance(account: Account, db: DB) -> Balance:
        row = await db.fetchone(
            "SELECT account, owner, balance FROM ledger_accounts WHERE account = %s", (account,)
        )
        if row is None:
            raise HTTPException(404, "no such account")
        return Balance(**row)

    @app.get("/v1/accounts/{account}/entries", response_model=Entries)
    async def entries(
        account: Account,
        db: DB,
        since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        before: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> Entries:
        """Entries on ``account`` from ``since`` (inclusive) to ``before`` (exclusive), UTC days."""
        acct = await db.fetchone("SELECT owner FROM ledger_accounts WHERE account = %s", (account,))
        if acct is None:
            raise HTTPException(404, "no such account")
        rows = await db.fetchall(
            "SELECT id AS posting_id,"
            " CASE WHEN debit = %(a)s THEN 'debit' ELSE 'credit' END AS direction,"
            " amount, CASE WHEN debit = %(a)s THEN credit ELSE debit END AS counterparty,"
            " narration, CAST(created_at AS TEXT) AS created_at"
            " FROM postings WHERE (debit = %(a)s OR credit = %(a)s)"
            " AND created_at >= %(since)s AND created_at < %(before)s"
            " ORDER BY id LIMIT %(limit)s",
            {
                "a": account,
                "since": since or "0001-01-01",
                "before": before or "9999-12-31",
                "limit": limit,
            },
        )
        return Entries(account=account, owner=acct["owner"], entries=[Entry(**r) for r in rows])

    return app
