"""What every refbank service shares at its HTTP edge: who is calling, and errors."""

from __future__ import annotations

from typing import Any, Protocol

import httpx
from fastapi import HTTPException, Request

# The authorisation middleware (ramparts.identity) records the verified caller's
# service name here after it has allowed the call; the gateway is "gateway".
CALLER_STATE = "ramparts_caller"
# Set by the gateway alone (it strips client copies), trusted only from the gateway.
SUBJECT_HEADER = "x-ramparts-subject"


def caller(request: Request) -> str:
    """The verified calling service; fails closed if the middleware did not record one."""
    name = getattr(request.state, CALLER_STATE, None)
    if not name:
        raise HTTPException(403, "no verified caller")
    return name


def subject(request: Request) -> str:
    """The end user the gateway verified; only meaningful on calls from the gateway."""
    if caller(request) != "gateway":
        raise HTTPException(403, "end-user endpoints are reached through the gateway")
    value = request.headers.get(SUBJECT_HEADER)
    if not value:
        raise HTTPException(401, "no verified subject")
    return value


class ServiceCaller(Protocol):
    """Calls another service by name. The SDK's implementation speaks mTLS and checks
    that the peer presents the SPIFFE ID of ``service``; the topology decides whether
    the call is allowed at all."""

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response: ...


async def expect(response: httpx.Response, *ok: int) -> Any:
    """The JSON body of a downstream response with an expected status, else a 502."""
    if response.status_code not in ok:
        raise HTTPException(502, f"downstream answered {response.status_code}")
    return response.json()
