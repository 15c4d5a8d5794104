"""The gateway's WAF hook: ``ramparts.gateway.WAFHook`` backed by a :class:`WafEngine`.

``Gateway(..., waf=WafGatewayHook(engine))`` runs phase 1 (request line and
headers) and phase 2 (body and CRS's anomaly evaluation) for every request
whose route has ``waf: block`` or ``waf: detect``. On those routes the gateway
holds the request body until it is complete, so phase 2 sees all of it, and
holds each response for phases 3 and 4 (:meth:`WafGatewayHook.inspect_response`,
the outbound data-leakage rules). The transaction is kept in
``req.extra["waf"]`` between the two. An exception inside the engine fails
closed in block mode (503 and a ``waf.error`` deny event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ramparts.gateway import Reply
from ramparts.waf._engine import WafEngine
from ramparts.waf._verdict import Verdict

if TYPE_CHECKING:
    from ramparts.gateway import Request

__all__ = ["WafGatewayHook"]


def _reply(verdict: Verdict) -> Reply:
    return Reply(
        status=verdict.status,
        error="waf_blocked",
        message=f"request blocked by the web application firewall (rule {verdict.disruptive_rule})",
    )


class WafGatewayHook:
    """Adapts the engine to the gateway's ``inspect(req, mode)`` protocol."""

    def __init__(self, engine: WafEngine) -> None:
        self.engine = engine

    async def inspect(self, req: Request, mode: str) -> Reply | None:
        """Phases 1 and 2; a Reply to block (mode ``block``), else None."""
        try:
            tx = self.engine.new_transaction(
                req.client_ip,
                req.method,
                req.target,
                req.version,
                req.headers,
                mode="detect" if mode == "detect" else "block",
            )
            req.extra["waf"] = tx
            if req.route is not None and req.route.waf_exclude:
                # The route's tuning: these rules do not run for its requests.
                tx.removed_ranges.extend(req.route.waf_exclude)
            verdict = tx.process_request_headers()
            if verdict is None:
                body = b"".join(req.body_buffer) if req.body_done else b""
                verdict = tx.process_request_body(body)
        except Exception as exc:  # a WAF that cannot decide must not wave through
            return self._failed(req, mode, exc)
        return _reply(verdict) if verdict is not None else None

    def _failed(self, req: Request, mode: str, exc: Exception) -> Reply | None:
        """Fail closed in block mode (503 + ``waf.error`` deny event); record only in detect."""
        emitter = self.engine.emitter
        reason = f"WAF could not evaluate the request ({exc.__class__.__name__})"
        if mode == "detect":
            if emitter is not None:
                emitter.allow("waf.error", reason=reason, peer=req.client_ip)
            return None
        if emitter is not None:
            emitter.deny("waf.error", reason=reason, peer=req.client_ip)
        return Reply(status=503, error="waf_error", message="request could not be inspected")

    async def inspect_response(
        self, req: Request, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Reply | None:
        """Phases 3 and 4 for a buffered upstream response (outbound rules, RESPONSE-95x)."""
        tx: Any = req.extra.get("waf")
        if tx is None:
            return None
        verdict = tx.process_response_headers(status, headers)
        if verdict is None:
            verdict = tx.process_response_body(body)
        return _reply(verdict) if verdict is not None else None
