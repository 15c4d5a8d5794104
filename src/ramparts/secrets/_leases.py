"""Database leases and their journal: no crash can leave a role nobody will revoke.

The lease record (``sys/leases/<lease_id>``, in the barrier, fsync'd on write)
*is* the journal. Its ``state`` moves::

    pending ──(CREATE ROLE committed)──▶ active ──▶ revoking ──▶ (record deleted)

* issue: write ``pending`` (durable) → create the role → write ``active``;
* revoke: write ``revoking`` → NOLOGIN, terminate, REASSIGN/DROP OWNED, DROP
  ROLE (each idempotent) → delete the record.

:meth:`LeaseManager.reconcile` (run at unseal) revokes every ``pending`` and
``revoking`` lease and every expired one, then drops any login role carrying
this broker's prefix that no ``active`` lease accounts for. A kill -9 at any
instant therefore leaves, after restart, only roles with a live lease.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ramparts.secrets._barrier import Barrier
from ramparts.secrets._database import DatabaseEngine
from ramparts.secrets._errors import InvalidRequest, NotFound
from ramparts.secrets._kv import rfc3339

_LEASES = "sys/leases/"


@dataclass(frozen=True)
class Revoked:
    """A role the reaper or the reconciler took away, and why."""

    username: str
    lease_id: str | None
    reason: str


@dataclass(frozen=True)
class IssuedCredentials:
    lease_id: str
    username: str
    password: str
    lease_duration: int

    def __repr__(self) -> str:
        return f"IssuedCredentials(lease_id={self.lease_id!r}, username={self.username!r})"


class LeaseManager:
    def __init__(
        self,
        barrier: Barrier,
        database: DatabaseEngine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.barrier = barrier
        self.database = database
        self.clock = clock
        # Lease IDs an issue, renew or revoke is working on: one operation per lease at a
        # time, so the reaper never races a revocation or an issuance in progress.
        self._cond = threading.Condition()
        self._in_flight: set[str] = set()

    @contextlib.contextmanager
    def _exclusive(self, lease_id: str) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: lease_id not in self._in_flight)
            self._in_flight.add(lease_id)
        try:
            yield
        finally:
            with self._cond:
                self._in_flight.discard(lease_id)
                self._cond.notify_all()

    # -- issue --------------------------------------------------------------------------

    def issue(self, role: str) -> IssuedCredentials:
        try:
            spec = self.database.read_role(role)
        except NotFound:
            raise InvalidRequest(f"unknown role: {role}") from None
        admin = self.database.admin(spec["db_name"])
        now = self.clock()
        ttl = spec["default_ttl"]
        suffix = secrets.token_hex(8)
        lease_id = f"database/creds/{role}/{secrets.token_urlsafe(18)}"
        record = {
            "lease_id": lease_id,
            "role": role,
            "db_name": spec["db_name"],
            "database": spec["database"],
            "owner": spec["owner"],
            "username": admin.login_role(role, suffix),
            "issue_time": now,
            "last_renewal": None,
            "expire_time": now + ttl,
            "max_expire_time": now + spec["max_ttl"],
            "state": "pending",
        }
        password = secrets.token_urlsafe(32)
        with self._exclusive(lease_id):
            self.barrier.put(_LEASES + lease_id, record)  # journal first, durable
            try:
                admin.create_login(record["username"], record["owner"], password, now + ttl)
            except BaseException:
                self._revoke_record(record)
                raise
            self.barrier.put(_LEASES + lease_id, {**record, "state": "active"})
        return IssuedCredentials(lease_id, record["username"], password, ttl)

    # -- lookup / renew -----------------------------------------------------------------

    def _get(self, lease_id: object) -> dict[str, Any]:
        if not isinstance(lease_id, str) or not lease_id:
            raise InvalidRequest("lease_id is required")
        rec = self.barrier.get(_LEASES + lease_id)
        if rec is None or rec["state"] != "active":
            raise InvalidRequest("invalid lease")
        return rec

    def lookup(self, lease_id: object) -> dict[str, Any]:
        rec = self._get(lease_id)
        now = self.clock()
        return {
            "id": rec["lease_id"],
            "issue_time": rfc3339(rec["issue_time"]),
            "expire_time": rfc3339(rec["expire_time"]),
            "last_renewal": rfc3339(rec["last_renewal"]) if rec["last_renewal"] else None,
            "renewable": True,
            "ttl": max(0, int(rec["expire_time"] - now)),
        }

    def renew(self, lease_id: object, increment: int | None) -> tuple[dict[str, Any], list[str]]:
        """Extend from now by ``increment`` (default: the role's TTL), capped at max TTL."""
        rec = self._get(lease_id)
        with self._exclusive(rec["lease_id"]):
            return self._renew(self._get(lease_id), increment)

    def _renew(
        self, rec: dict[str, Any], increment: int | None
    ) -> tuple[dict[str, Any], list[str]]:
        now = self.clock()
        if rec["expire_time"] <= now:
            raise InvalidRequest("lease expired")
        spec = self.database.read_role(rec["role"])
        want = increment if increment else spec["default_ttl"]
        new_expire = min(now + want, rec["max_expire_time"])
        warnings = []
        if new_expire < now + want:
            warnings.append(
                "TTL of requested increment exceeds the lease's max TTL; truncated to "
                f"{int(new_expire - now)}s"
            )
        self.database.admin(rec["db_name"]).extend_login(rec["username"], new_expire)
        self.barrier.put(
            _LEASES + rec["lease_id"], {**rec, "expire_time": new_expire, "last_renewal": now}
        )
        return {"lease_id": rec["lease_id"], "ttl": int(new_expire - now)}, warnings

    # -- revoke -------------------------------------------------------------------------

    def revoke(self, lease_id: object) -> None:
        """Revoke one lease; an unknown lease is already revoked (idempotent, as Vault)."""
        if not isinstance(lease_id, str) or not lease_id:
            raise InvalidRequest("lease_id is required")
        with self._exclusive(lease_id):
            rec = self.barrier.get(_LEASES + lease_id)
            if rec is not None:
                self._revoke_record(rec)

    def revoke_prefix(self, prefix: str) -> int:
        """Revoke every lease under ``prefix``, taken as a folder (as Vault does)."""
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        n = 0
        for path in self.barrier.list_prefix(_LEASES + prefix):
            with self._exclusive(path[len(_LEASES) :]):
                rec = self.barrier.get(path)
                if rec is not None:
                    self._revoke_record(rec)
                    n += 1
        return n

    def _revoke_record(self, rec: dict[str, Any]) -> None:
        path = _LEASES + rec["lease_id"]
        self.barrier.put(path, {**rec, "state": "revoking"})
        self.database.admin(rec["db_name"]).revoke_login(
            rec["username"], rec["owner"], rec["database"]
        )
        self.barrier.delete(path)

    def list(self, prefix: str) -> list[str]:
        base = _LEASES + (prefix if prefix.endswith("/") else prefix + "/")
        keys = set()
        for full in self.barrier.list_prefix(base):
            head, sep, _ = full[len(base) :].partition("/")
            keys.add(head + sep)
        return sorted(keys)

    # -- background and recovery --------------------------------------------------------

    def reap(self) -> list[Revoked]:
        """Revoke expired leases (and orphaned pending ones not being issued right now)."""
        now, done = self.clock(), []
        for path in self.barrier.list_prefix(_LEASES):
            lease_id = path[len(_LEASES) :]
            with self._cond:
                if lease_id in self._in_flight:
                    continue  # being issued, renewed or revoked right now
            with self._exclusive(lease_id):
                rec = self.barrier.get(path)
                if rec is None:
                    continue
                if rec["state"] != "active":
                    why = f"interrupted while {rec['state']}"
                elif rec["expire_time"] <= now:
                    why = "expired"
                else:
                    continue
                self._revoke_record(rec)
                done.append(Revoked(rec["username"], rec["lease_id"], why))
        return done

    def reconcile(self) -> list[Revoked]:
        """At start: finish every interrupted issue/revoke, then drop unaccounted roles."""
        done = self.reap()
        live: dict[str, set[str]] = {}
        for path in self.barrier.list_prefix(_LEASES):
            rec = self.barrier.get(path)
            if rec is not None and rec["state"] == "active":
                live.setdefault(rec["db_name"], set()).add(rec["username"])
        for name in self.database.config_names():
            admin = self.database.admin(name)
            for role in admin.list_login_roles():
                if role in live.get(name, set()):
                    continue
                service = admin.service_of(role)
                svc = self.database.topology.services.get(service or "")
                admin.revoke_login(
                    role,
                    admin.owner_role(service) if svc else None,
                    svc.database if svc else None,
                )
                done.append(Revoked(role, None, "orphan role: no lease accounts for it"))
        return done
