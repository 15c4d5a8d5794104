"""The accounts service's API.

End users reach it through the gateway, which passes their verified subject;
a customer's id *is* that subject, so a customer can only ever see and open
their own records. Payments looks accounts up to check ownership.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from refbank._api import caller, subject
from refbank._db import connection, service_app
from refbank._pii import PIIVault, masked_identifier
from refbank.nuban import make_nuban

Conn = Annotated[psycopg.AsyncConnection, Depends(connection)]
NUBAN = Annotated[str, Field(pattern=r"^[0-9]{10}$")]


class CustomerIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    bvn: str = Field(pattern=r"^[0-9]{11}$")
    nin: str = Field(pattern=r"^[0-9]{11}$")

    def __repr__(self) -> str:  # never print identifiers, even in a debugger
        return f"CustomerIn(name={self.name!r}, bvn=<masked>, nin=<masked>)"


class Customer(BaseModel):
    id: str
    name: str
    bvn: str  # masked
    nin: str  # masked


class Account(BaseModel):
    nuban: str
    customer_id: str
    currency: str
    status: str


def create_app(pool: AsyncConnectionPool, *, vault: PIIVault, bank_code: str = "000999") -> FastAPI:
    app = service_app("accounts", pool)

    def _customer(row: dict) -> Customer:  # type: ignore[type-arg]
        # Only the last four digits are stored in the clear; shown as the 11-digit shape.
        return Customer(
            id=row["id"],
            name=row["name"],
            bvn=masked_identifier(row["bvn_last4"]),
            nin=masked_identifier(row["nin_last4"]),
        )

    @app.post("/v1/customers", status_code=201, response_model=Customer)
    async def onboard(body: CustomerIn, request: Request, c: Conn) -> Customer:
        """Register the calling end user as a customer (their id is their verified subject)."""
        sub = subject(request)
        row = {
            "id": sub,
            "name": body.name,
            "bvn_enc": vault.encrypt("bvn", sub, body.bvn),
            "bvn_token": vault.token("bvn", body.bvn),
            "bvn_last4": body.bvn[-4:],
            "nin_enc": vault.encrypt("nin", sub, body.nin),
            "nin_token": vault.token("nin", body.nin),
            "nin_last4": body.nin[-4:],
        }
        try:
            async with c.transaction():
                await c.execute(
                    "INSERT INTO customers"
                    " (id, name, bvn_enc, bvn_token, bvn_last4, nin_enc, nin_token, nin_last4)"
                    " VALUES (%(id)s, %(name)s, %(bvn_enc)s, %(bvn_token)s, %(bvn_last4)s,"
                    " %(nin_enc)s, %(nin_token)s, %(nin_last4)s)",
                    row,
                )
        except psycopg.errors.UniqueViolation as exc:
            what = {"customers_pkey": "you are already a customer"}.get(
                exc.diag.constraint_name or "", "a customer with this BVN or NIN already exists"
            )
            raise HTTPException(409, what) from None
        return _customer(row)

    @app.get("/v1/customers/{customer_id}", response_model=Customer)
    async def get_customer(customer_id: str, request: Request, c: Conn) -> Customer:
        if caller(request) == "gateway" and subject(request) != customer_id:
            raise HTTPException(404, "no such customer")
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT id, name, bvn_last4, nin_last4 FROM customers WHERE id = %s", (customer_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(404, "no such customer")
        return _customer(row)

    @app.post("/v1/accounts", status_code=201, response_model=Account)
    async def open_account(request: Request, c: Conn) -> Account:
        """Open an NGN account for the calling customer, with a valid NUBAN."""
        sub = subject(request)
        cur = c.cursor(row_factory=dict_row)
        async with c.transaction():
            await cur.execute("SELECT 1 FROM customers WHERE id = %s", (sub,))
            if await cur.fetchone() is None:
                raise HTTPException(409, "register as a customer first (POST /v1/customers)")
            await cur.execute("SELECT nextval('nuban_serial') AS serial")
            serial = (await cur.fetchone())["serial"]  # type: ignore[index]
            nuban = make_nuban(bank_code, serial)
            await cur.execute(
                "INSERT INTO accounts (nuban, customer_id) VALUES (%s, %s)"
                " RETURNING nuban, customer_id, currency, status",
                (nuban, sub),
            )
            return Account(**(await cur.fetchone()))  # type: ignore[arg-type]

    @app.get("/v1/accounts/{nuban}", response_model=Account)
    async def get_account(nuban: str, request: Request, c: Conn) -> Account:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT nuban, customer_id, currency, status FROM accounts WHERE nuban = %s", (nuban,)
        )
        row = await cur.fetchone()
        # An end user learns nothing about accounts that are not theirs, not even that they exist.
        if row is None or (caller(request) == "gateway" and row["customer_id"] != subject(request)):
            raise HTTPException(404, "no such account")
        return Account(**row)

    return app
