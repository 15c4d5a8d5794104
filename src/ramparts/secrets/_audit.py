"""The broker's audit trail: one event per request decision, secret values HMAC'd.

Like Vault's audit devices, every value in a request body or response
``data``/``auth`` is replaced by ``hmac-sha256:<hex>`` under a key kept in the
barrier, so an operator who holds a leaked password can find the lease that
issued it (hash the password with the same key, search the log), while the log
itself holds nothing usable. Paths, methods, lease IDs and SPIFFE IDs are not
secret and are kept plain.

If the sink cannot record an event, :class:`AuditFailure` is raised and the
request fails: an action that cannot be audited is not taken.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from ramparts.events import EventEmitter, Outcome
from ramparts.secrets._barrier import Barrier
from ramparts.secrets._errors import AuditFailure, SealedError

AUDIT_KEY_PATH = "core/audit-hmac-key"
SERVICE = "secrets"


class Auditor:
    def __init__(self, emitter: EventEmitter, barrier: Barrier) -> None:
        self.emitter = emitter
        self.barrier = barrier
        self._key: bytes | None = None

    def load_key(self) -> None:
        """Load (or, on first unseal, create) the HMAC key; call after unseal."""
        rec = self.barrier.get(AUDIT_KEY_PATH)
        if rec is None:
            rec = {"key": secrets.token_hex(32)}
            self.barrier.put(AUDIT_KEY_PATH, rec)
        self._key = bytes.fromhex(rec["key"])

    def forget_key(self) -> None:
        self._key = None

    def hash_value(self, value: object) -> str:
        """``hmac-sha256:<hex>`` of a value's text; needs the barrier unsealed."""
        if self._key is None:
            raise SealedError()
        text = value if isinstance(value, str) else repr(value)
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
        return "hmac-sha256:" + digest

    def hash_tree(self, obj: Any) -> Any:
        """Every leaf string and number HMAC'd; structure, booleans and nulls kept."""
        if isinstance(obj, dict):
            return {str(k): self.hash_tree(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.hash_tree(v) for v in obj]
        if obj is None or isinstance(obj, bool):
            return obj
        if self._key is None:
            return "hmac-sha256:unavailable-while-sealed"
        return self.hash_value(obj)

    def record(
        self,
        type_: str,
        outcome: Outcome,
        *,
        reason: str,
        peer: str | None,
        detail: dict[str, Any],
    ) -> None:
        try:
            self.emitter.record(
                type_, outcome, reason=reason, service=SERVICE, peer=peer, detail=detail
            )
        except Exception as exc:
            raise AuditFailure("audit: failed to record the request; refusing it") from exc
