"""R4: one database (or one set of database credentials) used by different services.

"Different services" compares service identities (see ``service_identity``):
the ``app`` label (or ``app.kubernetes.io/name[-component]``, or the name)
without a variant suffix, so ``payments``, ``payments-canary``,
``payments-v2`` and ``payments-migrate`` are one service and two Deployments
with one ``app`` label and different ``version`` labels are one service.
Database servers themselves (postgres, mysql, mongo, redis images) and the
gateway are not consumers.

Shared database: same engine, host, port and database name. Shared
credentials: same engine, host, port and user, or the same Secret holding a
database password or URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ramparts.review._model import ComposeService, Workload
from ramparts.review.context import Context, db_refs
from ramparts.review.findings import Finding, finding

DB_SECRET_VAR = re.compile(
    r"(?i)^(PGPASSWORD|DATABASE_URL|DB_URL|DSN)$|(DB|DATABASE|PG|POSTGRES|MYSQL|MONGO|SQL).*"
    r"(PASS|PASSWORD|URL|URI|DSN)$"
)


def check(ctx: Context) -> Iterator[Finding]:
    consumers: list[Workload | ComposeService] = [
        w for w in [*ctx.dep.workloads, *ctx.dep.compose_services] if not w.is_database
    ]
    by_db: dict[tuple, list] = {}
    by_user: dict[tuple, list] = {}
    for wl in consumers:
        for ref in db_refs(ctx, wl):
            if ref.database:
                by_db.setdefault((ref.engine, ref.host, ref.port, ref.database), []).append(
                    (wl, ref)
                )
            if ref.user and not ref.user.startswith("$"):
                by_user.setdefault((ref.engine, ref.host, ref.port, ref.user), []).append((wl, ref))
        if isinstance(wl, Workload):
            for c in wl.containers:
                for e in c.env:
                    if e.origin == "secret" and DB_SECRET_VAR.search(e.name):
                        by_user.setdefault(("secret", e.source), []).append((wl, e))
    reported: set[frozenset[str]] = set()
    for _, uses in sorted(by_db.items(), key=lambda kv: kv[0]):
        services = _services(uses)
        if len(services) < 2:
            continue
        reported.add(frozenset(services))
        first = uses[0][1]
        where = uses[0][1].where
        yield finding(
            "R4.shared-database",
            first.file,
            first.line,
            f"database {where}",
            f"database {where} is used by {len(services)} services: {_list(services)}",
            related=tuple((r.file, r.line) for _, r in uses[1:]),
        )
    for key, uses in sorted(by_user.items(), key=lambda kv: str(kv[0])):
        services = _services(uses)
        if len(services) < 2 or frozenset(services) in reported:
            continue
        first = uses[0][1]
        what = (
            f"the database credentials in {key[1]}"
            if key[0] == "secret"
            else f"database user {key[3]} on {key[0]}://{key[1]}:{key[2]}"
        )
        yield finding(
            "R4.shared-credentials",
            first.file,
            first.line,
            key[1] if key[0] == "secret" else f"database user {key[3]}@{key[1]}",
            f"{what} are shared by {len(services)} services: {_list(services)}",
            related=tuple((r.file, r.line) for _, r in uses[1:]),
        )


def _services(uses: list) -> dict[str, str]:
    out: dict[str, str] = {}
    for wl, _ in uses:
        out.setdefault(wl.service, wl.ref)
    return out


def _list(services: dict[str, str]) -> str:
    return ", ".join(f"{name} ({ref})" for name, ref in sorted(services.items()))
