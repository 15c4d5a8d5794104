"""The payments service's API.

A transfer is recorded here first (pending), then posted to the ledger with
the transfer's id as the ledger's idempotency key, then marked completed. A
crash between those steps is repaired by simply retrying the same request:
every step is idempotent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from refbank._api import ServiceCaller, expect, subject
from refbank._db import Database, UniqueViolation, db_of, service_app

DB = Annotated[Database, Depends(db_of)]
NUBAN = Annotated[str, Field(pattern=r"^[0-9]{10}$")]
DEFAULT_DAILY_LIMIT = 50_000_000  # kobo: ₦500,000 a day


class TransferIn(BaseModel):
    from_account: NUBAN
    to_account: NUBAN
    amount: int = Field(gt=0, le=10**12)
    narration: str = Field(default="", max_length=140)
    idempotency_key: str = Field(min_length=1, max_length=128)


class DepositIn(BaseModel):
    to_account: NUBAN
    amount: int = Field(gt=0, le=10**12)
    idempotency_key: str = Field(min_length=1, max_length=128)


class Transfer(BaseModel):
    id: int
    kind: str
    from_account: str | None
    to_account: str
    amount: int
    narration: str
    status: str
    reason: str | None


_COLUMNS = "id, kind, from_account, to_account, amount, narration, status, reason"
_INSERT_TRANSFER = (  # constant columns, values bound as parameters
    "INSERT INTO transfers"  # noqa: S608
    " (customer_id, idempotency_key, kind, from_account, to_account, amount, narration)"
    f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}"
)


def create_app(
    db: Database, *, services: ServiceCaller, daily_limit: int = DEFAULT_DAILY_LIMIT
) -> FastAPI:
    app = service_app("payments", db)

    async def account(nuban: str) -> dict[str, Any] | None:
        r = await services.call("accounts", "GET", f"/v1/accounts/{nuban}")
        return None if r.status_code == 404 else await expect(r, 200)

    @app.post("/v1/transfers", status_code=201, response_model=Transfer)
    async def transfer(body: TransferIn, request: Request, c: DB) -> Transfer | JSONResponse:
        sub = subject(request)
        existing = await _existing(c, sub, body.idempotency_key, body)
        if existing is not None and existing.status != "pending":
            return JSONResponse(existing.model_dump(), status_code=200)
        source = await account(body.from_account)
        if source is None or source["customer_id"] != sub:
            raise HTTPException(404, "no such account")
        dest = await account(body.to_account)
        if dest is None:
            raise HTTPException(422, "unknown destination account")
        row = existing or await _record(c, sub, body, daily_limit)
        return await _settle(c, row, sub, dest["customer_id"], body.narration)

    @app.post("/v1/deposits", status_code=201, response_model=Transfer)
    async def deposit(body: DepositIn, request: Request, c: DB) -> Transfer | JSONResponse:
        """Credit an account from the bank's settlement account (an operator action)."""
        sub = subject(request)
        existing = await _existing(c, sub, body.idempotency_key, body)
        if existing is not None and existing.status != "pending":
            return JSONResponse(existing.model_dump(), status_code=200)
        dest = await account(body.to_account)
        if dest is None:
            raise HTTPException(422, "unknown destination account")
        row = existing or await _record(c, sub, body, limit=None)
        return await _settle(c, row, sub, dest["customer_id"], "deposit")

    async def _settle(
        c: Database, t: Transfer, sub: str, dest_owner: str, narration: str
    ) -> Transfer:
        posting = {
            "idempotency_key": f"payments:{t.id}",
            "debit": t.from_account or "internal:settlement",
            "credit": t.to_account,
            "amount": t.amount,
            "narration": narration,
            "debit_owner": sub if t.from_account else None,
            "credit_owner": dest_owner,
        }
        r = await services.call("ledger", "POST", "/v1/postings", json=posting)
        if r.status_code == 409 and r.json().get("detail") == "insufficient funds":
            done = await _finish(c, t.id, "failed", "insufficient funds")
            raise HTTPException(409, "insufficient funds", headers={"X-Transfer-Id": str(done.id)})
        await expect(r, 200, 201)
        done = await _finish(c, t.id, "completed", None)
        if t.kind == "transfer":
            await _notify(sub, "transfer.sent", done)
        await _notify(dest_owner, "transfer.received", done)
        return done

    async def _notify(customer_id: str, event_type: str, t: Transfer) -> None:
        # Best effort: a webhook failure never undoes a settled transfer.
        event = {
            "customer_id": customer_id,
            "type": event_type,
            "data": {
                "transfer_id": t.id,
                "amount": t.amount,
                "to_account_last4": t.to_account[-4:],
            },
        }
        with contextlib.suppress(httpx.HTTPError):
            await services.call("notifications", "POST", "/v1/events", json=event)

    return app


async def _existing(
    db: Database, sub: str, key: str, body: TransferIn | DepositIn
) -> Transfer | None:
    row = await db.fetchone(
        f"SELECT {_COLUMNS} FROM transfers WHERE customer_id = %s AND idempotency_key = %s",  # noqa: S608
        (sub, key),
    )
    if row is None:
        return None
    t = Transfer(**row)
    asked = (getattr(body, "from_account", None), body.to_account, body.amount)
    if (t.from_account, t.to_account, t.amount) != asked:
        raise HTTPException(409, "idempotency key already used for a different transfer")
    return t


async def _record(
    db: Database, sub: str, body: TransferIn | DepositIn, limit: int | None
) -> Transfer:
    day_start = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    try:
        async with db.transaction() as tx:
            if limit is not None:
                # One customer's transfers are checked one at a time, so two concurrent
                # requests cannot both fit under a limit only one of them fits. (SQLite's
                # BEGIN IMMEDIATE already serialises every writer.)
                if db.dialect == "postgres":
                    await tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (sub,))
                used = await tx.fetchone(
                    "SELECT coalesce(sum(amount), 0) AS used FROM transfers WHERE customer_id = %s"
                    " AND kind = 'transfer' AND status <> 'failed' AND created_at >= %s",
                    (sub, day_start),
                )
                assert used is not None
                if used["used"] + body.amount > limit:
                    raise HTTPException(
                        422, f"daily limit exceeded: {used['used']} of {limit} kobo used today"
                    )
            row = await tx.fetchone(
                _INSERT_TRANSFER,
                (
                    sub,
                    body.idempotency_key,
                    "transfer" if isinstance(body, TransferIn) else "deposit",
                    getattr(body, "from_account", None),
                    body.to_account,
                    body.amount,
                    getattr(body, "narration", ""),
                ),
            )
            return Transfer(**row)  # type: ignore[arg-type]
    except UniqueViolation:
        # A concurrent request with the same key won the insert; answer as a replay.
        again = await _existing(db, sub, body.idempotency_key, body)
        assert again is not None
        return again


async def _finish(db: Database, transfer_id: int, status: str, reason: str | None) -> Transfer:
    row = await db.fetchone(
        f"UPDATE transfers SET status = %s, reason = %s WHERE id = %s RETURNING {_COLUMNS}",  # noqa: S608
        (status, reason, transfer_id),
    )
    return Transfer(**row)  # type: ignore[arg-type]
