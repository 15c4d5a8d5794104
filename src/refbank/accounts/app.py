"""The accounts service's API.

End users reach it through the gateway, which passes their verified subject;
a customer's id *is* that subject, so a customer can only ever see and open
their own records. Payments looks accounts up to check ownership.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from refbank._api import caller, subject
from refbank._db import Database, UniqueViolation, db_of, service_app
from refbank._pii import PIIVault, masked_identifier
from refbank.nuban import make_nuban

DB = Annotated[Database, Depends(db_of)]
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


def create_app(db: Database, *, vault: PIIVault, bank_code: str = "000999") -> FastAPI:
    app = service_app("accounts", db)

    def _customer(row: dict[str, Any]) -> Customer:
        # Only the last four digits are stored in the clear; shown as the 11-digit shape.
        return Customer(
            id=row["id"],
            name=row["name"],
            bvn=masked_identifier(row["bvn_last4"]),
            nin=masked_identifier(row["nin_last4"]),
        )

    @app.post("/v1/customers", status_code=201, response_model=Customer)
    async def onboard(body: CustomerIn, request: Request, db: DB) -> Customer:
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
            async with db.transaction() as tx:
                if await tx.fetchone("SELECT 1 AS x FROM customers WHERE id = %s", (sub,)):
                    raise HTTPException(409, "you are already a customer")
                await tx.execute(
                    "INSERT INTO customers"
                    " (id, name, bvn_enc, bvn_token, bvn_last4, nin_enc, nin_token, nin_last4)"
                    " VALUES (%(id)s, %(name)s, %(bvn_enc)s, %(bvn_token)s, %(bvn_last4)s,"
                    " %(nin_enc)s, %(nin_token)s, %(nin_last4)s)",
                    row,
                )
        except UniqueViolation:
            raise HTTPException(409, "a customer with this BVN or NIN already exists") from None
        return _customer(row)

    @app.get("/v1/customers/{customer_id}", response_model=Customer)
    async def get_customer(customer_id: str, request: Request, db: DB) -> Customer:
        if caller(request) == "gateway" and subject(request) != customer_id:
            raise HTTPException(404, "no such customer")
        row = await db.fetchone(
            "SELECT id, name, bvn_last4, nin_last4 FROM customers WHERE id = %s", (customer_id,)
        )
        if row is None:
            raise HTTPException(404, "no such customer")
        return _customer(row)

    @app.post("/v1/accounts", status_code=201, response_model=Account)
    async def open_account(request: Request, db: DB) -> Account:
        """Open an NGN account for the calling customer, with a valid NUBAN."""
        sub = subject(request)
        async with db.transaction() as tx:
            if await tx.fetchone("SELECT 1 AS x FROM customers WHERE id = %s", (sub,)) is None:
                raise HTTPException(409, "register as a customer first (POST /v1/customers)")
            counter = await tx.fetchone(
                "UPDATE counters SET value = value + 1 WHERE name = 'nuban_serial' RETURNING value"
            )
            assert counter is not None  # seeded by the migration
            row = await tx.fetchone(
                "INSERT INTO accounts (nuban, customer_id) VALUES (%s, %s)"
                " RETURNING nuban, customer_id, currency, status",
                (make_nuban(bank_code, counter["value"]), sub),
            )
            return Account(**row)  # type: ignore[arg-type]

    @app.get("/v1/accounts/{nuban}", response_model=Account)
    async def get_account(nuban: str, request: Request, db: DB) -> Account:
        row = await db.fetchone(
            "SELECT nuban, customer_id, currency, status FROM accounts WHERE nuban = %s", (nuban,)
        )
        # An end user learns nothing about accounts that are not theirs, not even that they exist.
        if row is None or (caller(request) == "gateway" and row["customer_id"] != subject(request)):
            raise HTTPException(404, "no such account")
        return Account(**row)

    return app
