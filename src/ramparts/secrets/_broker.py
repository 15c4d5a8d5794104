"""The broker: storage, barrier, seal, tokens, KV, database leases and audit, wired once.

It starts sealed. Unsealing (shares or key file) loads the audit key and runs
the lease reconciler before anything else is served; a background reaper then
revokes expired leases and tidies expired tokens.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from ramparts.config import Topology
from ramparts.events import EventEmitter, Outcome
from ramparts.secrets._audit import Auditor
from ramparts.secrets._barrier import Barrier
from ramparts.secrets._database import DatabaseEngine
from ramparts.secrets._errors import AuditFailure
from ramparts.secrets._kv import KVStore
from ramparts.secrets._leases import LeaseManager, Revoked
from ramparts.secrets._postgres import check_prefix
from ramparts.secrets._seal import SealManager
from ramparts.secrets._storage import SQLiteStorage
from ramparts.secrets._tokens import TokenStore

log = logging.getLogger("ramparts.secrets")
DEFAULT_ROLE_PREFIX = "rp_"


class Broker:
    """One secrets broker over one SQLite file."""

    def __init__(
        self,
        storage_path: str | os.PathLike[str],
        topology: Topology,
        *,
        emitter: EventEmitter,
        role_prefix: str = DEFAULT_ROLE_PREFIX,
        token_ttl: int = 3600,
        token_max_ttl: int = 86400,
        reaper_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topology = topology
        self.clock = clock
        self.storage = SQLiteStorage(storage_path)
        self.barrier = Barrier(self.storage)
        self.seal_manager = SealManager(self.barrier)
        self.tokens = TokenStore(
            self.barrier, default_ttl=token_ttl, max_ttl=token_max_ttl, clock=clock
        )
        self.kv = KVStore(self.barrier, clock=clock)
        self.database = DatabaseEngine(
            self.barrier, topology, role_prefix=check_prefix(role_prefix)
        )
        self.leases = LeaseManager(self.barrier, self.database, clock=clock)
        self.auditor = Auditor(emitter, self.barrier)
        self.reaper_interval = reaper_interval
        self._reconciled = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    @property
    def sealed(self) -> bool:
        return self.barrier.sealed

    @property
    def initialized(self) -> bool:
        return self.barrier.initialized

    # -- init / unseal / seal -----------------------------------------------------------

    def initialize_shamir(self, shares: int = 5, threshold: int = 3) -> tuple[list[bytes], str]:
        """Returns the shares and the operator's root token; leaves the store sealed."""
        parts = self.seal_manager.initialize_shamir(shares, threshold)
        return parts, self._finish_init()

    def initialize_key_file(self, path: str | os.PathLike[str]) -> str:
        self.seal_manager.initialize_key_file(path)
        return self._finish_init()

    def _finish_init(self) -> str:
        try:
            self.auditor.load_key()
            return self.tokens.create_root()
        finally:
            self.seal()

    def unseal_key_file(self, path: str | os.PathLike[str]) -> None:
        self.seal_manager.unseal_key_file(path)
        self._after_unseal()

    def submit_share(self, share: bytes) -> bool:
        was_sealed = self.sealed
        done = self.seal_manager.submit_share(share)
        if done and was_sealed:
            self._after_unseal()
        return done

    def _after_unseal(self) -> None:
        self.auditor.load_key()
        self._reconciled = False
        self._try_reconcile()

    def _try_reconcile(self) -> None:
        try:
            done = self.leases.reconcile()
        except Exception:
            # PostgreSQL may be down at start; the reaper retries until it works.
            log.exception("lease reconciliation failed; will retry")
            return
        self._reconciled = True
        self._report(done, "secrets.reconciled")

    def _report(self, done: list[Revoked], type_: str) -> None:
        """One event per role the broker took away on its own (not at a caller's request)."""
        for r in done:
            detail = {"username": r.username, "lease_id": r.lease_id}
            try:
                self.auditor.record(type_, Outcome.ALLOW, reason=r.reason, peer=None, detail=detail)
            except AuditFailure:
                log.error("could not audit the revocation of %s (%s)", r.username, r.reason)

    def seal(self) -> None:
        self.barrier.seal()
        self.auditor.forget_key()
        self.seal_manager.reset()
        self.database.close()

    # -- background ---------------------------------------------------------------------

    def reap_once(self) -> None:
        if self.sealed:
            return
        if not self._reconciled:
            self._try_reconcile()
            return
        self._report(self.leases.reap(), "secrets.lease_revoked")
        self.tokens.tidy()

    def start(self) -> None:
        if self._reaper is not None:
            return
        self._stop.clear()
        self._reaper = threading.Thread(target=self._run, name="secrets-reaper", daemon=True)
        self._reaper.start()

    def _run(self) -> None:
        while not self._stop.wait(self.reaper_interval):
            try:
                self.reap_once()
            except Exception:
                log.exception("lease reaper pass failed")

    def close(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None
        self.database.close()
        self.storage.close()
