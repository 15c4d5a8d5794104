"""Write each service's OpenAPI document to ``docs/openapi/<service>.json``.

    python -m refbank.openapi [OUT_DIR]

The documents are generated from the FastAPI apps themselves, so they cannot
drift from the code; a test checks the committed copies are current.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ramparts.config import default_topology
from ramparts.egress import EgressClient, EgressPolicy
from ramparts.events import EventEmitter
from refbank._db import open_database
from refbank._pii import PIIVault
from refbank.accounts import app as accounts
from refbank.ledger import app as ledger
from refbank.notifications import app as notifications
from refbank.payments import app as payments
from refbank.statements import app as statements


class _NoCalls:
    async def call(self, *a: Any, **kw: Any) -> Any:
        raise RuntimeError("documentation only")


def documents() -> dict[str, dict[str, Any]]:
    """Each service's OpenAPI document; nothing is opened or connected."""
    pool = open_database("sqlite:///documentation-only.db")  # never opened
    policy = EgressPolicy.from_topology(default_topology(), "notifications")
    apps = {
        "accounts": accounts.create_app(pool, vault=PIIVault(os.urandom(32))),
        "ledger": ledger.create_app(pool),
        "payments": payments.create_app(pool, services=_NoCalls()),
        "notifications": notifications.create_app(
            pool, egress=EgressClient(policy, EventEmitter())
        ),
        "statements": statements.create_app(pool, services=_NoCalls()),
    }
    return {name: app.openapi() for name, app in apps.items()}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi")
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in documents().items():
        (out / f"{name}.json").write_text(render(doc), encoding="utf-8")
        print(f"wrote {out / name}.json ({len(doc['paths'])} paths)")


if __name__ == "__main__":
    main()
