"""Database references in a workload's configuration: URLs, ADO/libpq strings, PG*/MYSQL_* vars.

A reference says which server and database a workload uses, with which user,
and whether TLS was switched off. Hosts are normalised so that ``ledger-db``,
``ledger-db.payments`` and ``ledger-db.payments.svc.cluster.local`` seen from
namespace ``payments`` are one host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

URL = re.compile(
    r"(?:jdbc:)?(?P<scheme>postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|sqlserver)"
    r"(?:\+[\w-]+)?://[^\s'\"<>`]+",
    re.IGNORECASE,
)
# "Server=db;Database=ledger;User Id=x;Password=y" (ADO.NET) and "host=db dbname=x" (libpq).
_KV = re.compile(r"([A-Za-z][A-Za-z ]*?)\s*=\s*('[^']*'|\"[^\"]*\"|[^;\s]*)")
_ADO_HINT = re.compile(
    r"(?i)\b(server|data source|host)\s*=.*\b(database|initial catalog|dbname)\s*="
)
_HOST_KEYS = ("server", "data source", "host", "address", "addr", "hostaddr")
_DB_KEYS = ("database", "initial catalog", "dbname")
_USER_KEYS = ("user id", "uid", "user", "username", "user name")
_PASS_KEYS = ("password", "pwd")
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mongodb": 27017, "redis": 6379, "mssql": 1433}
_TLS_OFF = {
    "sslmode": {"disable"},
    "ssl": {"false", "0", "off", "no"},
    "tls": {"false", "0", "off", "no"},
    "usessl": {"false"},
    "encrypt": {"false", "no", "0", "optional"},
    "ssl mode": {"disable", "none"},
    "sslenabled": {"false"},
}
# Variable groups: prefix + field. PGHOST and POSTGRES_HOST style, and DB_/DATABASE_ prefixed.
_VAR = re.compile(
    r"^(?P<prefix>(?:[A-Z0-9_]*?_)?(?:PG|POSTGRES|POSTGRESQL|MYSQL|MARIADB|MONGO|MONGODB|DB|DATABASE|REDIS))"
    r"_?(?P<field>HOST|HOSTNAME|SERVER|ADDR|PORT|DB|DATABASE|NAME|DBNAME|USER|USERNAME|PASSWORD|PASS|SSLMODE|SSL)$"
)


@dataclass(frozen=True, slots=True)
class DbRef:
    """One use of a database by a workload, and where it is configured."""

    engine: str  # postgres, mysql, mongodb, redis, mssql
    host: str  # normalised
    port: int
    database: str | None
    user: str | None
    password: str | None
    tls_disabled: str | None  # the setting that switched TLS off, e.g. "sslmode=disable"
    variable: str
    file: str
    line: int

    @property
    def where(self) -> str:
        db = f"/{self.database}" if self.database else ""
        return f"{self.engine}://{self.host}:{self.port}{db}"


@dataclass(frozen=True, slots=True)
class Setting:
    """A name=value a workload is configured with, and where it is written."""

    name: str
    value: str
    file: str
    line: int


def normalise_host(host: str, namespace: str | None) -> str:
    """``svc``, ``svc.ns``, ``svc.ns.svc[.cluster.local]`` -> ``svc.ns`` (k8s); others as is."""
    h = host.strip().lower().rstrip(".")
    h = re.sub(r"\.svc(\.cluster\.local)?$", "", h)
    if namespace is None or not h or _is_ip(h):
        return h
    parts = h.split(".")
    if len(parts) == 1:
        return f"{h}.{namespace}"
    if len(parts) == 2:
        return h
    return h  # an external name


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _engine(scheme: str) -> str:
    s = scheme.lower()
    if s.startswith("postgres"):
        return "postgres"
    if s in ("mysql", "mariadb"):
        return "mysql"
    if s.startswith("mongodb"):
        return "mongodb"
    if s.startswith("redis"):
        return "redis"
    return "mssql"


def from_settings(settings: Iterable[Setting], namespace: str | None) -> list[DbRef]:
    """Every database reference in a workload's settings (env, args, mounted config)."""
    out: list[DbRef] = []
    groups: dict[str, dict[str, Setting]] = {}
    for s in settings:
        for m in URL.finditer(s.value):
            ref = _from_url(m.group(0), s, namespace)
            if ref:
                out.append(ref)
        if not URL.search(s.value) and _ADO_HINT.search(s.value):
            ref = _from_kv(s, namespace)
            if ref:
                out.append(ref)
        vm = _VAR.match(s.name.upper())
        if vm:
            groups.setdefault(vm.group("prefix"), {})[vm.group("field")] = s
    for prefix, fields in groups.items():
        ref = _from_vars(prefix, fields, namespace)
        if ref:
            out.append(ref)
    return out


def _from_url(url: str, s: Setting, namespace: str | None) -> DbRef | None:
    raw = url[5:] if url.lower().startswith("jdbc:") else url
    # JDBC SQL Server: sqlserver://host:1433;databaseName=x;encrypt=false
    extra: dict[str, str] = {}
    if ";" in raw:
        raw, _, rest = raw.partition(";")
        extra = {
            k.strip().lower(): v for k, _, v in (p.partition("=") for p in rest.split(";")) if k
        }
    try:
        parts = urlsplit(raw)
        netloc = parts.netloc
        userinfo, _, hostport = netloc.rpartition("@")
        first = hostport.split(",")[0]
        host, _, port_s = first.rpartition(":") if first.count(":") == 1 else (first, "", "")
        engine = _engine(parts.scheme.partition("+")[0])
        port = int(port_s) if port_s.isdigit() else _DEFAULT_PORTS[engine]
    except ValueError:
        return None
    if not host or host.startswith("$"):
        return None
    user, _, password = userinfo.partition(":")
    query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    query.update(extra)
    path = unquote(parts.path.lstrip("/")) or None
    database = path or query.get("databasename") or query.get("database")
    if engine == "redis":
        database = database or "0"
    return DbRef(
        engine,
        normalise_host(host, namespace),
        port,
        database,
        unquote(user) or query.get("user") or None,
        unquote(password) or query.get("password") or None,
        _tls_off(query),
        s.name,
        s.file,
        s.line,
    )


def _from_kv(s: Setting, namespace: str | None) -> DbRef | None:
    kv = {k.strip().lower(): v.strip("'\"") for k, v in _KV.findall(s.value)}
    host_raw = next((kv[k] for k in _HOST_KEYS if kv.get(k)), "")
    if not host_raw:
        return None
    host_raw = host_raw.removeprefix("tcp:")
    host, _, port_s = host_raw.replace(",", ":").partition(":")
    engine = (
        "mssql"
        if any(k in kv for k in ("initial catalog", "data source", "encrypt"))
        else ("postgres" if "dbname" in kv or "sslmode" in kv else "mssql")
    )
    port = (
        int(port_s)
        if port_s.isdigit()
        else int(kv["port"])
        if kv.get("port", "").isdigit()
        else _DEFAULT_PORTS[engine]
    )
    return DbRef(
        engine,
        normalise_host(host, namespace),
        port,
        next((kv[k] for k in _DB_KEYS if kv.get(k)), None),
        next((kv[k] for k in _USER_KEYS if kv.get(k)), None),
        next((kv[k] for k in _PASS_KEYS if kv.get(k)), None),
        _tls_off(kv),
        s.name,
        s.file,
        s.line,
    )


def _from_vars(prefix: str, f: dict[str, Setting], namespace: str | None) -> DbRef | None:
    host_s = next((f[k] for k in ("HOST", "HOSTNAME", "SERVER", "ADDR") if k in f), None)
    if host_s is None or not host_s.value or "$" in host_s.value:
        return None
    p = prefix.upper()
    engine = (
        "postgres"
        if "PG" in p or "POSTGRES" in p
        else "mysql"
        if "MYSQL" in p or "MARIADB" in p
        else "mongodb"
        if "MONGO" in p
        else "redis"
        if "REDIS" in p
        else "postgres"
    )
    host, _, port_s = host_s.value.partition(":")
    port_v = f["PORT"].value if "PORT" in f else port_s
    db = next((f[k].value for k in ("DB", "DATABASE", "NAME", "DBNAME") if k in f), None)
    user = next((f[k].value for k in ("USER", "USERNAME") if k in f), None)
    password = next((f[k].value for k in ("PASSWORD", "PASS") if k in f), None)
    tls = {}
    if "SSLMODE" in f:
        tls["sslmode"] = f["SSLMODE"].value
    if "SSL" in f:
        tls["ssl"] = f["SSL"].value
    return DbRef(
        engine,
        normalise_host(host, namespace),
        int(port_v) if port_v.isdigit() else _DEFAULT_PORTS[engine],
        db or ("0" if engine == "redis" else None),
        user or None,
        password or None,
        _tls_off(tls),
        host_s.name,
        host_s.file,
        host_s.line,
    )


def _tls_off(options: dict[str, str]) -> str | None:
    for key, bad in _TLS_OFF.items():
        value = options.get(key)
        if value is not None and value.strip().lower() in bad:
            return f"{key}={value}"
    return None
