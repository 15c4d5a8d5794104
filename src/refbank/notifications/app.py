"""The notifications service's API.

Customers register webhook URLs; payments reports events; this service POSTs
them to the URLs. A customer-chosen URL is the classic SSRF sink, so every
URL is checked when registered and again, with its own DNS answer, on every
delivery, and delivery goes only through :class:`ramparts.egress.EgressClient`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from ramparts.egress import EgressBlocked, EgressClient, EgressError
from refbank._api import caller, subject
from refbank._db import Database, db_of, service_app

DB = Annotated[Database, Depends(db_of)]
MAX_WEBHOOKS_PER_CUSTOMER = 5


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048)


class Webhook(BaseModel):
    id: int
    url: str


class EventIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)
    type: str = Field(pattern=r"^[a-z]+\.[a-z_]+$")
    data: dict[str, Any] = Field(default_factory=dict)


class Delivery(BaseModel):
    webhook_id: int
    event_type: str
    outcome: str
    status_code: int | None
    detail: str


def create_app(db: Database, *, egress: EgressClient) -> FastAPI:
    app = service_app("notifications", db, on_close=egress.aclose)

    @app.post("/v1/webhooks", status_code=201, response_model=Webhook)
    async def register(body: WebhookIn, request: Request, db: DB) -> Webhook:
        sub = subject(request)
        try:
            await egress.check(body.url)
        except EgressBlocked as exc:
            raise HTTPException(422, f"webhook URL refused: {exc.reason}") from None
        async with db.transaction() as tx:
            count = await tx.fetchone(
                "SELECT count(*) AS n FROM webhooks WHERE customer_id = %s", (sub,)
            )
            if count is not None and count["n"] >= MAX_WEBHOOKS_PER_CUSTOMER:
                raise HTTPException(
                    422, f"at most {MAX_WEBHOOKS_PER_CUSTOMER} webhooks per customer"
                )
            row = await tx.fetchone(
                "INSERT INTO webhooks (customer_id, url) VALUES (%s, %s) RETURNING id, url",
                (sub, body.url),
            )
            return Webhook(**row)  # type: ignore[arg-type]

    @app.post("/v1/events", response_model=list[Delivery])
    async def deliver(body: EventIn, request: Request, db: DB) -> list[Delivery]:
        """Deliver an event to each of the customer's webhooks (called by payments)."""
        if caller(request) == "gateway":
            raise HTTPException(403, "events come from services, not end users")
        hooks = await db.fetchall(
            "SELECT id, url FROM webhooks WHERE customer_id = %s ORDER BY id", (body.customer_id,)
        )
        payload = json.dumps({"type": body.type, "data": body.data}).encode()
        out: list[Delivery] = []
        for hook in hooks:
            out.append(await _deliver_one(hook["id"], hook["url"], body.type, payload))
        for d in out:
            await db.execute(
                "INSERT INTO deliveries (webhook_id, event_type, outcome, status_code, detail)"
                " VALUES (%s, %s, %s, %s, %s)",
                (d.webhook_id, d.event_type, d.outcome, d.status_code, d.detail),
            )
        return out

    async def _deliver_one(webhook_id: int, url: str, event_type: str, payload: bytes) -> Delivery:
        try:
            resp = await egress.request(
                "POST", url, headers={"Content-Type": "application/json"}, content=payload
            )
        except EgressBlocked as exc:
            return Delivery(
                webhook_id=webhook_id,
                event_type=event_type,
                outcome="blocked",
                status_code=None,
                detail=exc.reason,
            )
        except EgressError as exc:
            return Delivery(
                webhook_id=webhook_id,
                event_type=event_type,
                outcome="failed",
                status_code=None,
                detail=str(exc),
            )
        outcome = "delivered" if 200 <= resp.status < 300 else "failed"
        return Delivery(
            webhook_id=webhook_id,
            event_type=event_type,
            outcome=outcome,
            status_code=resp.status,
            detail="",
        )

    @app.get("/v1/webhooks/deliveries", response_model=list[Delivery])
    async def deliveries(request: Request, db: DB) -> list[Delivery]:
        rows = await db.fetchall(
            "SELECT d.webhook_id, d.event_type, d.outcome, d.status_code, d.detail"
            " FROM deliveries d"
            " JOIN webhooks w ON w.id = d.webhook_id WHERE w.customer_id = %s ORDER BY d.id",
            (subject(request),),
        )
        return [Delivery(**r) for r in rows]

    return app
