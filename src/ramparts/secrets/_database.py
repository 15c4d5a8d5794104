"""The ``database/`` mount: connection configs and roles, both tied to the topology.

``database/config/<name>`` holds the admin connection (stored encrypted; its
password is never returned). ``database/roles/<service>`` names a topology
service that owns a database; creating it sets up that service's owner role
and database. The SQL a lease runs is derived, not user-supplied: a request
with ``creation_statements`` is refused rather than silently ignored.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

from ramparts.config import Topology
from ramparts.secrets._barrier import Barrier
from ramparts.secrets._errors import InvalidRequest, NotFound
from ramparts.secrets._postgres import PostgresAdmin

PLUGINS = frozenset({"postgresql-database-plugin", "postgresql"})
DEFAULT_TTL = 3600
MAX_TTL = 86400
_CONFIG = "database/config/"
_ROLE = "database/roles/"
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def parse_duration(value: object, field: str) -> int:
    """Seconds from ``3600``, ``"3600"``, ``"90s"``, ``"30m"``, ``"1h"``, ``"1d"``."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{field} must be a duration like 3600 or '1h'")
    if isinstance(value, int):
        seconds = value
    else:
        m = _DURATION.match(str(value).strip())
        if not m:
            raise InvalidRequest(f"{field} must be a duration like 3600 or '1h', got {value!r}")
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 0:
        raise InvalidRequest(f"{field} must not be negative")
    return seconds


def _name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise InvalidRequest(f"{what} name {name!r} must match {_NAME.pattern}")
    return name


class DatabaseEngine:
    def __init__(self, barrier: Barrier, topology: Topology, *, role_prefix: str) -> None:
        self.barrier = barrier
        self.topology = topology
        self.role_prefix = role_prefix
        self._lock = threading.Lock()
        self._admins: dict[str, PostgresAdmin] = {}

    # -- config -------------------------------------------------------------------------

    def write_config(self, name: str, body: dict[str, Any]) -> None:
        _name(name, "connection")
        plugin = body.get("plugin_name") or "postgresql-database-plugin"
        if plugin not in PLUGINS:
            raise InvalidRequest(f"plugin_name {plugin!r} is not supported; use {sorted(PLUGINS)}")
        url = body.get("connection_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest("connection_url is required")
        allowed = body.get("allowed_roles") or []
        if isinstance(allowed, str):
            allowed = [r.strip() for r in allowed.split(",") if r.strip()]
        record = {
            "plugin_name": plugin,
            "connection_url": url,
            "username": str(body.get("username") or ""),
            "password": str(body.get("password") or ""),
            "allowed_roles": list(allowed),
        }
        if body.get("verify_connection", True) not in (False, "false"):
            try:
                with psycopg.connect(_dsn(record), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as exc:
                # libpq messages name host and user, never the password.
                raise InvalidRequest(
                    f"error verifying connection {name!r}: {exc.__class__.__name__}"
                ) from exc
        self.barrier.put(_CONFIG + name, record)
        with self._lock:
            old = self._admins.pop(name, None)
        if old is not None:
            old.close()

    def read_config(self, name: str) -> dict[str, Any]:
        rec = self.barrier.get(_CONFIG + _name(name, "connection"))
        if rec is None:
            raise NotFound("")
        return {
            "plugin_name": rec["plugin_name"],
            "connection_details": {
                "connection_url": _redact(rec["connection_url"]),
                "username": rec["username"],
            },
            "allowed_roles": rec["allowed_roles"],
        }

    def config_names(self) -> list[str]:
        return [p[len(_CONFIG) :] for p in self.barrier.list_prefix(_CONFIG)]

    def admin(self, name: str) -> PostgresAdmin:
        with self._lock:
            admin = self._admins.get(name)
            if admin is None:
                rec = self.barrier.get(_CONFIG + name)
                if rec is None:
                    raise InvalidRequest(f"no database connection named {name!r}")
                admin = PostgresAdmin(_dsn(rec), role_prefix=self.role_prefix)
                self._admins[name] = admin
            return admin

    def close(self) -> None:
        with self._lock:
            admins, self._admins = list(self._admins.values()), {}
        for a in admins:
            a.close()

    # -- roles --------------------------------------------------------------------------

    def write_role(self, name: str, body: dict[str, Any]) -> None:
        _name(name, "role")
        svc = self.topology.services.get(name)
        if svc is None or svc.database is None:
            raise InvalidRequest(
                f"role {name!r}: the topology has no service of that name owning a database"
            )
        if body.get("creation_statements") or body.get("revocation_statements"):
            raise InvalidRequest(
                "creation_statements and revocation_statements are derived from the topology; "
                "send none"
            )
        db_name = body.get("db_name")
        if not isinstance(db_name, str) or not db_name:
            raise InvalidRequest("db_name is required")
        conf = self.barrier.get(_CONFIG + _name(db_name, "connection"))
        if conf is None:
            raise InvalidRequest(f"no database connection named {db_name!r}")
        if conf["allowed_roles"] and not {"*", name} & set(conf["allowed_roles"]):
            raise InvalidRequest(f"role {name!r} is not in the allowed_roles of {db_name!r}")
        default_ttl = parse_duration(body.get("default_ttl") or DEFAULT_TTL, "default_ttl")
        max_ttl = parse_duration(body.get("max_ttl") or MAX_TTL, "max_ttl")
        if max_ttl > MAX_TTL:
            raise InvalidRequest(f"max_ttl must be at most {MAX_TTL} seconds")
        if default_ttl > max_ttl:
            raise InvalidRequest("default_ttl must not exceed max_ttl")
        owner = self.admin(db_name).ensure_service(name, svc.database)
        self.barrier.put(
            _ROLE + name,
            {
                "db_name": db_name,
                "database": svc.database,
                "owner": owner,
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            },
        )

    def read_role(self, name: str) -> dict[str, Any]:
        rec = self.barrier.get(_ROLE + _name(name, "role"))
        if rec is None:
            raise NotFound("")
        return rec


def _dsn(record: dict[str, Any]) -> str:
    """The connection URL with Vault's ``{{username}}``/``{{password}}`` templates filled."""
    url = record["connection_url"]
    if "{{username}}" in url or "{{password}}" in url:
        url = url.replace("{{username}}", quote(record["username"], safe=""))
        url = url.replace("{{password}}", quote(record["password"], safe=""))
    return url


_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def _redact(url: str) -> str:
    """The connection URL as safe to show: an inline password becomes ``*****``."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
            parts = parts._replace(netloc=f"{user}:*****@{host}")
        return urlunsplit(parts)
    return _KV_PASSWORD.sub(r"\1*****", url)
