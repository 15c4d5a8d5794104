"""PII fuzz: identifiers logged by a service and by the gateway's access log never reach
the stored audit log.

Generated BVNs, NUBANs, card numbers (Verve 19-digit included), JWTs and bearer
tokens go through a service's structlog logger (configured exactly as services
configure it) and through the gateway's access log, then through the real
disk-buffered shipper into a real log server started with ingest masking OFF,
so the only thing standing between a PII value and the store is the in-process
masking. The stored entries are then searched for every generated value.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.audit._servers import free_port

from ramparts.audit.keys import write_private_key
from ramparts.audit.note import Signer
from ramparts.audit.shipper import Shipper
from ramparts.gateway._observe import AccessLog
from ramparts.gateway._request import Request
from ramparts.telemetry.logging import configure_logging, reset_logging
from refbank.nuban import make_nuban


def _luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(str(secrets.randbelow(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return body + str((10 - total % 10) % 10)


identifiers = st.fixed_dictionaries(
    {
        "bvn": st.from_regex(r"22[0-9]{9}", fullmatch=True),
        "nuban": st.integers(0, 10**9 - 1).map(lambda n: make_nuban("058", n)),
        "pan": st.sampled_from(["4", "51", "5061", "650002"]).flatmap(
            lambda p: st.sampled_from([16, 19] if p.startswith(("5061", "6500")) else [16]).map(
                lambda n: _luhn_complete(p, n)
            )
        ),
        "jwt": st.from_regex(
            r"eyJ[A-Za-z0-9_-]{10,30}\.eyJ[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{20,43}",
            fullmatch=True,
        ),
        "bearer": st.from_regex(r"[A-Za-z0-9]{32}", fullmatch=True),
    }
)


class _Forward(io.TextIOBase):
    """A text stream that hands each complete line to the shipper (how a process ships a file)."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper, self._pending = shipper, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line:
                self.shipper.submit_json(line)
        return len(text)


def _access_request(path: str, subject: str) -> Request:
    req = object.__new__(Request)
    for name, value in {
        "route": None, "correlation_id": secrets.token_hex(16), "trace_id": None,
        "client_ip": "203.0.113.9", "method": "GET", "path": path, "status": 404,
        "subject": subject,
    }.items():  # fmt: skip
        setattr(req, name, value)
    return req


def _stored(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(bytes(d).decode() for (d,) in conn.execute("SELECT data FROM entries"))


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(identifiers, min_size=3, max_size=6))
def test_no_generated_identifier_reaches_the_store(
    tmp_path_factory: Any, cli_server: Any, batch: list[dict[str, str]]
) -> None:
    tmp = tmp_path_factory.mktemp("pii")
    key = tmp / "log.key"
    write_private_key(key, Signer.generate("pii.ramparts.test/log"))
    args = ["serve", "--db", str(tmp / "audit.db"), "--key-file", str(key), "--no-masking",
            "--checkpoint-interval-ms", "50"]  # fmt: skip
    server = cli_server(args, free_port())

    async def run() -> None:
        shipper = Shipper(tmp / "spool", server.url, service="payments")
        task = shipper.start()
        configure_logging("payments", stream=io.StringIO(), forward=shipper.submit_json)
        try:
            log = structlog.get_logger("payments")
            access = AccessLog(_Forward(shipper))
            for ids in batch:
                log.info("transfer requested", bvn=ids["bvn"], account_number=ids["nuban"],
                         note=f"card {ids['pan']} acct {ids['nuban']}",
                         authorization=f"Bearer {ids['bearer']}", token=ids["jwt"])  # fmt: skip
                log.warning(f"customer BVN {ids['bvn']} failed; token={ids['jwt']}")
                access.record(
                    _access_request(f"/v1/cards/{ids['pan']}/bvn/{ids['bvn']}", ids["jwt"]), 0.001
                )
            access.flush()
            await shipper.flush(timeout=10)
        finally:
            reset_logging()
            await shipper.aclose()
            task.cancel()

    asyncio.run(run())
    stored = _stored(tmp / "audit.db")
    assert stored.count('"transfer requested"') + stored.count("transfer requested") >= len(batch)
    assert stored.count('"event":"access"') == len(batch)
    leaked = [f"{k}={v}" for ids in batch for k, v in ids.items() if v in stored]
    assert leaked == []
