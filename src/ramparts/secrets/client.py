"""The service-side SDK: log in with the SVID, read KV, lease database credentials,
and keep a psycopg connection pool on fresh credentials with no failed query.

Secrets stay in memory, wrapped in :class:`~ramparts.secrets.Secret` (masked
``repr``/``str``): never in an environment variable, a command line, a log line or
an exception message. The password reaches psycopg as a connection keyword, never
inside a conninfo string.

>>> # client = SecretsClient("https://127.0.0.1:7001", ssl_context=source.client_context())
>>> # pool = RotatingPool(client, "ledger", host="127.0.0.1", dbname="ledger")
>>> # with pool.connection() as conn: conn.execute("SELECT 1")

Rotation: a background thread renews the lease at half its TTL. When a renewal
comes back truncated (the lease reached its max TTL) or fails, it leases new
credentials, opens a new pool on them and waits until it is ready, swaps it in,
waits for every borrower of the old pool to give its connection back, closes the
old pool and only then revokes the old lease. No borrowed connection is ever cut.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
from psycopg_pool import ConnectionPool

from ramparts.secrets._secret import Secret

if TYPE_CHECKING:
    from ramparts.identity import IdentitySource

log = logging.getLogger("ramparts.secrets.client")


class SecretsClientError(Exception):
    """The broker refused or failed a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"secrets broker answered {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class DatabaseCredentials:
    username: str
    password: Secret
    lease_id: str
    lease_duration: int
    issued_at: float = field(default_factory=time.monotonic)


class SecretsClient:
    """A thread-safe client of the broker over mTLS; logs in with its SVID on first use."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        cert: str | None = None,
        key: str | None = None,
        ca: str | None = None,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        if http is None:
            if ssl_context is None:
                if not (cert and key and ca):
                    raise ValueError("give ssl_context, or cert, key and ca file paths")
                ssl_context = ssl.create_default_context(cafile=ca)
                ssl_context.load_cert_chain(cert, key)
            http = httpx.Client(base_url=url, verify=ssl_context, timeout=timeout)
        self._http = http
        self._token: Secret | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_workload(
        cls, source: IdentitySource, url: str, broker_spiffe_id: str, *, timeout: float = 10.0
    ) -> SecretsClient:
        """The production path: our live SVID, and the broker must prove ``broker_spiffe_id``."""
        from ramparts.identity import service_client_sync  # noqa: PLC0415

        return cls(url, http=service_client_sync(source, broker_spiffe_id, url, timeout=timeout))

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"SecretsClient({str(self._http.base_url)!r})"

    # -- plumbing -----------------------------------------------------------------------

    def login(self) -> None:
        body = self._call("POST", "/v1/auth/cert/login", json={}, auth=False)
        with self._lock:
            self._token = Secret(body["auth"]["client_token"])

    def _call(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> dict[str, Any]:
        for attempt in (1, 2):
            headers = {}
            if auth:
                with self._lock:
                    token = self._token
                if token is None:
                    self.login()
                    with self._lock:
                        token = self._token
                assert token is not None
                headers["X-Vault-Token"] = token.reveal()
            r = self._http.request(method, path, headers=headers, **kw)
            if r.status_code == 403 and auth and attempt == 1 and not self._token_alive(headers):
                self.login()  # the token expired or was revoked: log in again, once
                continue
            if r.status_code >= 400:
                try:
                    errors = r.json().get("errors") or []
                except ValueError:
                    errors = []
                raise SecretsClientError(r.status_code, "; ".join(map(str, errors)) or "error")
            return r.json() if r.status_code != 204 else {}
        raise AssertionError("unreachable")

    def _token_alive(self, headers: dict[str, str]) -> bool:
        """Was that 403 the policy speaking (token fine) or a dead token?"""
        r = self._http.get("/v1/auth/token/lookup-self", headers=headers)
        return r.status_code == 200

    # -- KV and leases ------------------------------------------------------------------

    def read_kv(self, path: str, version: int | None = None) -> dict[str, Any]:
        """A KV v2 secret's data; string values come back as :class:`Secret`."""
        params = {"version": version} if version else None
        data = self._call("GET", f"/v1/secret/data/{path}", params=params)["data"]["data"]
        return {k: Secret(v) if isinstance(v, str) else v for k, v in data.items()}

    def database_credentials(self, role: str) -> DatabaseCredentials:
        body = self._call("GET", f"/v1/database/creds/{role}")
        return DatabaseCredentials(
            username=body["data"]["username"],
            password=Secret(body["data"]["password"]),
            lease_id=body["lease_id"],
            lease_duration=int(body["lease_duration"]),
        )

    def renew_lease(self, lease_id: str, increment: int | None = None) -> int:
        """Renew; returns the new TTL in seconds (may be less than asked: max TTL)."""
        payload: dict[str, Any] = {"lease_id": lease_id}
        if increment:
            payload["increment"] = increment
        return int(self._call("PUT", "/v1/sys/leases/renew", json=payload)["lease_duration"])

    def revoke_lease(self, lease_id: str) -> None:
        self._call("PUT", "/v1/sys/leases/revoke", json={"lease_id": lease_id})


@dataclass
class _Generation:
    pool: ConnectionPool
    creds: DatabaseCredentials
    users: int = 0


class RotatingPool:
    """A psycopg_pool that always runs on live leased credentials."""

    def __init__(
        self,
        client: SecretsClient,
        role: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5432,
        dbname: str,
        min_size: int = 1,
        max_size: int = 4,
        renew_fraction: float = 0.5,
        open_timeout: float = 30.0,
        drain_timeout: float = 60.0,
    ) -> None:
        if not 0.1 <= renew_fraction <= 0.9:
            raise ValueError("renew_fraction must be between 0.1 and 0.9")
        self.client, self.role = client, role
        self._conninfo = psycopg.conninfo.make_conninfo(
            host=host, port=port, dbname=dbname, connect_timeout=10
        )
        self._sizes = (min_size, max_size)
        self.renew_fraction = renew_fraction
        self.open_timeout = open_timeout
        self.drain_timeout = drain_timeout
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.rotations = 0
        self._current = self._open_generation()
        self._thread = threading.Thread(target=self._run, name=f"rotating-pool-{role}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"RotatingPool(role={self.role!r}, rotations={self.rotations})"

    @property
    def username(self) -> str:
        return self._current.creds.username

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a connection from the current pool (the old one drains, never cut)."""
        with self._cond:
            gen = self._current
            gen.users += 1
        try:
            with gen.pool.connection(timeout=timeout) as conn:
                yield conn
        finally:
            with self._cond:
                gen.users -= 1
                self._cond.notify_all()

    def rotate_now(self) -> None:
        """Lease new credentials and swap to them now (also what expiry triggers)."""
        new = self._open_generation()
        with self._cond:
            old, self._current = self._current, new
            self.rotations += 1
            drained = self._cond.wait_for(lambda: old.users == 0, timeout=self.drain_timeout)
        if not drained:
            log.warning(
                "old pool for %s still busy after %ss; closing", self.role, self.drain_timeout
            )
        old.pool.close()
        try:
            self.client.revoke_lease(old.creds.lease_id)
        except (SecretsClientError, httpx.HTTPError) as exc:
            # the broker's reaper revokes it at expiry anyway
            log.warning("could not revoke old lease for %s: %s", self.role, exc.__class__.__name__)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        self._current.pool.close()
        with contextlib.suppress(SecretsClientError, httpx.HTTPError):
            self.client.revoke_lease(self._current.creds.lease_id)

    def __enter__(self) -> RotatingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------

    def _open_generation(self) -> _Generation:
        creds = self.client.database_credentials(self.role)
        pool = ConnectionPool(
            self._conninfo,
            kwargs={"user": creds.username, "password": creds.password.reveal()},
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            open=True,
            name=f"ramparts-{self.role}",
        )
        try:
            pool.wait(timeout=self.open_timeout)
        except Exception:
            pool.close()
            with contextlib.suppress(SecretsClientError, httpx.HTTPError):
                self.client.revoke_lease(creds.lease_id)
            raise
        return _Generation(pool, creds)

    def _run(self) -> None:
        ttl = self._current.creds.lease_duration
        while not self._stop.is_set():
            self._wake.wait(max(0.05, ttl * self.renew_fraction))
            if self._stop.is_set():
                return
            lease = self._current.creds
            try:
                got = self.client.renew_lease(lease.lease_id, lease.lease_duration)
            except (SecretsClientError, httpx.HTTPError):
                got = 0
            if got >= lease.lease_duration:
                ttl = got
                continue
            try:
                self.rotate_now()
                ttl = self._current.creds.lease_duration
            except Exception as exc:  # keep the thread alive; retry soon
                log.warning(
                    "rotating credentials for %s failed: %s", self.role, exc.__class__.__name__
                )
                ttl = max(1, int(got or 2))
