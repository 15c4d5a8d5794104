"""The statements service's API: one endpoint, a PDF per account and month.

It holds no financial data of its own; it reads the ledger (its only allowed
edge) and renders. A compromised renderer can therefore read entries it asks
the ledger for, and nothing else: not payments, not accounts, not their data.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response

from refbank._api import ServiceCaller, expect, subject
from refbank._db import Database, db_of, service_app
from refbank.statements.render import render_statement

DB = Annotated[Database, Depends(db_of)]


def create_app(db: Database, *, services: ServiceCaller) -> FastAPI:
    app = service_app("statements", db)

    @app.get("/v1/statements/{account}", response_class=Response)
    async def statement(
        account: Annotated[str, Path(pattern=r"^[0-9]{10}$")],
        request: Request,
        db: DB,
        month: Annotated[str, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")],
    ) -> Response:
        sub = subject(request)
        year, mon = int(month[:4]), int(month[5:])
        following = f"{year + mon // 12:04d}-{mon % 12 + 1:02d}-01"
        params = {"since": f"{month}-01", "before": following, "limit": "1000"}
        r = await services.call("ledger", "GET", f"/v1/accounts/{account}/entries", params=params)
        if r.status_code == 404:
            raise HTTPException(404, "no such account")
        data = await expect(r, 200)
        if data["owner"] != sub:
            raise HTTPException(404, "no such account")
        balance = await expect(
            await services.call("ledger", "GET", f"/v1/accounts/{account}/balance"), 200
        )
        pdf = render_statement(
            account=account,
            customer_id=sub,
            month=month,
            entries=data["entries"],
            closing_balance=balance["balance"],
        )
        digest = hashlib.sha256(pdf).hexdigest()
        await db.execute(
            "INSERT INTO statements (account, customer_id, month, sha256) VALUES (%s, %s, %s, %s)",
            (account, sub, month, digest),
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="statement-{account}-{month}.pdf"',
                "ETag": digest,
            },
        )

    return app
