"""Tokens: short-lived, bound to the SVID that logged in, stored only as a hash.

A service token is issued by cert login and carries the ``service`` its SVID
names in the topology; it is *bound* to that SPIFFE ID, so a token replayed
over another workload's mTLS connection is refused. The operator's root token
(made at init) has the ``root`` policy, no expiry and no binding.

Tokens are looked up by SHA-256 of the token string, inside the encrypted
barrier, so neither a storage dump nor an audit line holds a usable token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ramparts.secrets._barrier import Barrier
from ramparts.secrets._errors import PermissionDenied

TOKEN_PREFIX = "hvs."  # noqa: S105 (a prefix, not a credential)
_TOKEN_PATH = "auth/token/id/"  # noqa: S105 (a storage path)
_ACCESSOR_PATH = "auth/token/accessor/"
ROOT_POLICY = "root"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    accessor: str
    policies: list[str]
    service: str | None  # the topology service this token speaks for (None: operator)
    spiffe_id: str | None  # the SVID it is bound to (None: unbound root token)
    issue_time: float
    expire_time: float | None  # None: never expires (root only)
    max_expire_time: float | None
    ttl: int
    display_name: str

    @property
    def is_root(self) -> bool:
        return ROOT_POLICY in self.policies

    def remaining(self, now: float) -> int:
        return 0 if self.expire_time is None else max(0, int(self.expire_time - now))


class TokenStore:
    def __init__(
        self,
        barrier: Barrier,
        *,
        default_ttl: int = 3600,
        max_ttl: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.barrier = barrier
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.clock = clock

    def create_root(self) -> str:
        now = self.clock()
        return self._create(
            TokenEntry(
                accessor=secrets.token_hex(12),
                policies=[ROOT_POLICY],
                service=None,
                spiffe_id=None,
                issue_time=now,
                expire_time=None,
                max_expire_time=None,
                ttl=0,
                display_name="root",
            )
        )

    def create_service_token(self, service: str, spiffe_id: str) -> tuple[str, TokenEntry]:
        now = self.clock()
        entry = TokenEntry(
            accessor=secrets.token_hex(12),
            policies=["default", f"service-{service}"],
            service=service,
            spiffe_id=spiffe_id,
            issue_time=now,
            expire_time=now + self.default_ttl,
            max_expire_time=now + self.max_ttl,
            ttl=self.default_ttl,
            display_name=f"cert-{service}",
        )
        return self._create(entry), entry

    def _create(self, entry: TokenEntry) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.barrier.put(_TOKEN_PATH + _hash(token), asdict(entry))
        self.barrier.put(_ACCESSOR_PATH + entry.accessor, {"hash": _hash(token)})
        return token

    def lookup(self, token: str | None, peer_spiffe_id: str | None) -> TokenEntry:
        """The live entry for ``token`` as presented by ``peer``; PermissionDenied otherwise."""
        if not token:
            raise PermissionDenied()
        raw = self.barrier.get(_TOKEN_PATH + _hash(token))
        if raw is None:
            raise PermissionDenied()
        entry = TokenEntry(**raw)
        if entry.expire_time is not None and entry.expire_time <= self.clock():
            self._delete(token, entry)
            raise PermissionDenied()
        if entry.spiffe_id is not None and entry.spiffe_id != peer_spiffe_id:
            raise PermissionDenied("permission denied: token is bound to another identity")
        return entry

    def renew(self, token: str, entry: TokenEntry, increment: int | None) -> TokenEntry:
        if entry.expire_time is None or entry.max_expire_time is None:
            return entry
        now = self.clock()
        ttl = min(increment or entry.ttl, self.max_ttl)
        new = TokenEntry(**{**asdict(entry), "expire_time": min(now + ttl, entry.max_expire_time)})
        self.barrier.put(_TOKEN_PATH + _hash(token), asdict(new))
        return new

    def revoke(self, token: str, entry: TokenEntry) -> None:
        self._delete(token, entry)

    def _delete(self, token: str, entry: TokenEntry) -> None:
        self.barrier.delete(_TOKEN_PATH + _hash(token))
        self.barrier.delete(_ACCESSOR_PATH + entry.accessor)

    def tidy(self) -> int:
        """Delete expired tokens; returns how many. Run by the reaper."""
        now, n = self.clock(), 0
        for path in self.barrier.list_prefix(_TOKEN_PATH):
            raw = self.barrier.get(path)
            if raw and raw["expire_time"] is not None and raw["expire_time"] <= now:
                self.barrier.delete(path)
                self.barrier.delete(_ACCESSOR_PATH + raw["accessor"])
                n += 1
        return n
