"""The Vault-compatible endpoints: one handler per operation, and the routing table.

Handlers are plain functions ``(Call) -> Reply`` that run in a worker thread after
authentication, policy and the audit decision (see :mod:`._api`); they never see a
request that was not allowed. Shapes follow Vault's API documentation, so that
``hvac`` works unchanged.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ramparts.secrets._broker import Broker
from ramparts.secrets._database import parse_duration
from ramparts.secrets._errors import InvalidRequest, NotFound, PermissionDenied
from ramparts.secrets._kv import rfc3339
from ramparts.secrets._seal import decode_share
from ramparts.secrets._tokens import TokenEntry

VERSION = "ramparts-secrets-0.1.0"


# -- request context and reply -------------------------------------------------------------


@dataclass
class Call:
    broker: Broker
    peer: str
    path: str
    operation: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
    token: str | None = None
    entry: TokenEntry | None = None


@dataclass
class Reply:
    status: int = 200
    data: Any = None
    lease_id: str = ""
    renewable: bool = False
    lease_duration: int = 0
    auth: dict[str, Any] | None = None
    warnings: list[str] | None = None
    raw: dict[str, Any] | None = None  # a non-envelope body (health, seal-status)
    audit_extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any] | None:
        if self.status == 204:
            return None
        if self.raw is not None:
            return self.raw
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": self.lease_id,
            "renewable": self.renewable,
            "lease_duration": self.lease_duration,
            "data": self.data,
            "wrap_info": None,
            "warnings": self.warnings,
            "auth": self.auth,
            "mount_type": "",
        }


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    pattern: re.Pattern[str]
    handlers: dict[str, Handler]
    # "token": a live token the policy allows; "login": a workload SVID (cert login);
    # "none": no token, works sealed; "operator": like none, but refused to workloads.
    auth: str = "token"

    @property
    def works_sealed(self) -> bool:
        return self.auth in ("none", "operator")


# -- handlers: sys -----------------------------------------------------------------------


def _seal_status(b: Broker) -> dict[str, Any]:
    cfg = b.seal_manager.config
    return {
        "type": "shamir",
        "initialized": b.initialized,
        "sealed": b.sealed,
        "t": cfg.get("threshold", 0),
        "n": cfg.get("shares", 0),
        "progress": b.seal_manager.progress,
        "nonce": b.seal_manager.nonce,
        "version": VERSION,
        "build_date": "",
        "migration": False,
        "recovery_seal": False,
        "storage_type": "sqlite",
    }


def sys_health(c: Call) -> Reply:
    b = c.broker
    if not b.initialized:
        status = _int_param(c.query, "uninitcode", 501)
    elif b.sealed:
        status = _int_param(c.query, "sealedcode", 503)
    else:
        status = _int_param(c.query, "activecode", 200)
    return Reply(
        status=status,
        raw={
            "initialized": b.initialized,
            "sealed": b.sealed,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()),
            "version": VERSION,
            "cluster_name": "ramparts",
            "cluster_id": "",
        },
    )


def sys_seal_status(c: Call) -> Reply:
    return Reply(raw=_seal_status(c.broker))


def sys_unseal(c: Call) -> Reply:
    b = c.broker
    if c.body.get("reset"):
        b.seal_manager.reset()
        return Reply(raw=_seal_status(b))
    key = c.body.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set")
    b.submit_share(decode_share(key))
    return Reply(raw=_seal_status(b))


def sys_init_status(c: Call) -> Reply:
    return Reply(raw={"initialized": c.broker.initialized})


def sys_init(c: Call) -> Reply:
    """Vault's ``PUT sys/init``: shares and root token go back to the caller only.

    Like Vault, it needs no token (there is none yet) and works once; the reply is
    never audited beyond its status.
    """
    shares = c.body.get("secret_shares", 5)
    threshold = c.body.get("secret_threshold", 3)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (shares, threshold)):
        raise InvalidRequest("secret_shares and secret_threshold must be integers")
    try:
        parts, root = c.broker.initialize_shamir(shares, threshold)
    except ValueError as exc:  # ShamirError: the split parameters
        raise InvalidRequest(str(exc)) from exc
    return Reply(
        raw={
            "keys": [p.hex() for p in parts],
            "keys_base64": [base64.b64encode(p).decode() for p in parts],
            "root_token": root,
        }
    )


def sys_seal(c: Call) -> Reply:
    c.broker.seal()
    return Reply(status=204)


# -- handlers: auth ----------------------------------------------------------------------


def _auth_block(token: str, e: TokenEntry, now: float) -> dict[str, Any]:
    return {
        "client_token": token,
        "accessor": e.accessor,
        "policies": e.policies,
        "token_policies": e.policies,
        "identity_policies": None,
        "metadata": {"service": e.service or "", "spiffe_id": e.spiffe_id or ""},
        "lease_duration": e.remaining(now),
        "renewable": e.expire_time is not None,
        "entity_id": "",
        "token_type": "service",
        "orphan": True,
        "mfa_requirement": None,
        "num_uses": 0,
    }


def cert_login(c: Call) -> Reply:
    b = c.broker
    name = b.topology.name_for(c.peer)
    if name is None or name not in b.topology.services:
        raise PermissionDenied(
            "permission denied: the certificate's identity is not a workload in the topology"
        )
    token, entry = b.tokens.create_service_token(name, c.peer)
    return Reply(auth=_auth_block(token, entry, b.clock()))


def lookup_self(c: Call) -> Reply:
    e, now = c.entry, c.broker.clock()
    assert e is not None and c.token is not None
    return Reply(
        data={
            "accessor": e.accessor,
            "creation_time": int(e.issue_time),
            "creation_ttl": e.ttl,
            "display_name": e.display_name,
            "entity_id": "",
            "expire_time": rfc3339(e.expire_time) if e.expire_time else None,
            "explicit_max_ttl": 0,
            "id": c.token,
            "issue_time": rfc3339(e.issue_time),
            "meta": {"service": e.service or "", "spiffe_id": e.spiffe_id or ""},
            "num_uses": 0,
            "orphan": True,
            "path": "auth/cert/login" if e.service else "auth/token/root",
            "policies": e.policies,
            "renewable": e.expire_time is not None,
            "ttl": e.remaining(now),
            "type": "service",
        }
    )


def renew_self(c: Call) -> Reply:
    assert c.entry is not None and c.token is not None
    increment = _duration_field(c.body, "increment")
    entry = c.broker.tokens.renew(c.token, c.entry, increment)
    return Reply(auth=_auth_block(c.token, entry, c.broker.clock()))


def revoke_self(c: Call) -> Reply:
    assert c.entry is not None and c.token is not None
    c.broker.tokens.revoke(c.token, c.entry)
    return Reply(status=204)


# -- handlers: kv ------------------------------------------------------------------------


def kv_read(c: Call) -> Reply:
    version = _int_param(c.query, "version", 0) or None
    return Reply(data=c.broker.kv.read(c.params["path"], version))


def kv_write(c: Call) -> Reply:
    options = c.body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidRequest("'options' must be a JSON object")
    cas = options.get("cas")
    if cas is not None and (not isinstance(cas, int) or isinstance(cas, bool) or cas < 0):
        raise InvalidRequest("options.cas must be a non-negative integer")
    return Reply(data=c.broker.kv.write(c.params["path"], c.body.get("data"), cas))


def kv_list(c: Call) -> Reply:
    return Reply(data={"keys": c.broker.kv.list(c.params["path"])})


# -- handlers: database ------------------------------------------------------------------


def db_config_write(c: Call) -> Reply:
    c.broker.database.write_config(c.params["name"], c.body)
    return Reply(status=204)


def db_config_read(c: Call) -> Reply:
    return Reply(data=c.broker.database.read_config(c.params["name"]))


def db_role_write(c: Call) -> Reply:
    c.broker.database.write_role(c.params["name"], c.body)
    return Reply(status=204)


def db_role_read(c: Call) -> Reply:
    rec = c.broker.database.read_role(c.params["name"])
    return Reply(
        data={
            "db_name": rec["db_name"],
            "default_ttl": rec["default_ttl"],
            "max_ttl": rec["max_ttl"],
            "creation_statements": [],
            "revocation_statements": [],
            "rollback_statements": [],
            "renew_statements": [],
        }
    )


def db_creds(c: Call) -> Reply:
    creds = c.broker.leases.issue(c.params["name"])
    return Reply(
        data={"username": creds.username, "password": creds.password},
        lease_id=creds.lease_id,
        renewable=True,
        lease_duration=creds.lease_duration,
    )


# -- handlers: leases --------------------------------------------------------------------


def lease_lookup(c: Call) -> Reply:
    return Reply(data=c.broker.leases.lookup(c.body.get("lease_id")))


def lease_list(c: Call) -> Reply:
    keys = c.broker.leases.list(c.params["prefix"])
    if not keys:
        raise NotFound("")
    return Reply(data={"keys": keys})


def lease_renew(c: Call) -> Reply:
    increment = _duration_field(c.body, "increment")
    out, warnings = c.broker.leases.renew(c.body.get("lease_id"), increment)
    return Reply(
        lease_id=out["lease_id"],
        renewable=True,
        lease_duration=out["ttl"],
        warnings=warnings or None,
    )


def lease_revoke(c: Call) -> Reply:
    c.broker.leases.revoke(c.body.get("lease_id"))
    return Reply(status=204)


def lease_revoke_prefix(c: Call) -> Reply:
    n = c.broker.leases.revoke_prefix(c.params["prefix"])
    return Reply(status=204, audit_extra={"revoked": n})


# -- the routing table: one place ---------------------------------------------------------


def _ep(pattern: str, auth: str = "token", **handlers: Handler) -> Endpoint:
    return Endpoint(re.compile(pattern), handlers, auth)


ENDPOINTS: tuple[Endpoint, ...] = (
    _ep(r"sys/health", "none", read=sys_health),
    _ep(r"sys/seal-status", "none", read=sys_seal_status),
    # Initialising hands out the root token: no workload SVID may do it.
    _ep(r"sys/init", "operator", read=sys_init_status, update=sys_init),
    _ep(r"sys/unseal", "none", update=sys_unseal),
    _ep(r"sys/seal", update=sys_seal),
    _ep(r"auth/cert/login", "login", update=cert_login),
    _ep(r"auth/token/lookup-self", read=lookup_self, update=lookup_self),
    _ep(r"auth/token/renew-self", update=renew_self),
    _ep(r"auth/token/revoke-self", update=revoke_self),
    _ep(r"secret/data/(?P<path>.+)", read=kv_read, update=kv_write),
    _ep(r"secret/metadata/(?P<path>.+?)/?", list=kv_list),
    _ep(r"database/config/(?P<name>[^/]+)", read=db_config_read, update=db_config_write),
    _ep(r"database/roles/(?P<name>[^/]+)", read=db_role_read, update=db_role_write),
    _ep(r"database/creds/(?P<name>[^/]+)", read=db_creds),
    _ep(r"sys/leases/lookup", update=lease_lookup),
    _ep(r"sys/leases/lookup/(?P<prefix>.+)", list=lease_list),
    _ep(r"sys/leases/renew", update=lease_renew),
    _ep(r"sys/leases/revoke", update=lease_revoke),
    _ep(r"sys/leases/revoke-prefix/(?P<prefix>.+)", update=lease_revoke_prefix),
)


def operation_of(method: str, query: dict[str, str]) -> str:
    if method in ("GET", "HEAD"):
        return "list" if query.get("list", "").lower() in ("true", "1") else "read"
    return {"POST": "update", "PUT": "update", "LIST": "list", "DELETE": "delete"}.get(
        method, "unknown"
    )


def match(path: str) -> tuple[Endpoint, dict[str, str]] | None:
    for ep in ENDPOINTS:
        m = ep.pattern.fullmatch(path)
        if m:
            return ep, m.groupdict()
    return None


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from exc


def _duration_field(body: dict[str, Any], name: str) -> int | None:
    raw = body.get(name)
    return None if raw in (None, "", 0) else parse_duration(raw, name)
