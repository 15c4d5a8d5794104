"""R3: hard-coded secrets in env, ConfigMaps, args, committed Secrets, and private keys.

Not reported: ``${VAR}`` / ``$(VAR)`` interpolation, empty values, file paths,
and references to a secret store (``secretKeyRef``, ``vault:``, ``ref+vault://``,
AWS/GCP/Azure secret manager names, ``op://``). ExternalSecret and
SealedSecret objects are references, not secrets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ramparts.review import databases
from ramparts.review._model import K8sObject, data_items
from ramparts.review._yamlnode import text
from ramparts.review.context import Context, command_settings
from ramparts.review.findings import Finding, finding

SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|"
    r"credential|access[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key|auth[_-]?key|"
    r"client[_-]?secret|webhook[_-]?secret|dsn)"
)
NOT_A_SECRET_NAME = re.compile(
    r"(?i)(_|-|\b)(file|path|dir|ttl|timeout|url|uri|endpoint|host|port|id|name|issuer|audience|"
    r"header|enabled|type|mode|algorithm|alg|length|expiry|expires|ref|key_id|kid|lifetime|"
    r"rotation|ref|version|namespace|mount|role)$"
)
TOKEN_PATTERNS = re.compile(
    r"(AKIA[0-9A-Z]{16}|ghp_[A-Za-z0-9]{36}|gh[osu]_[A-Za-z0-9]{36}|xox[baprs]-[A-Za-z0-9-]{10,}|"
    r"sk_live_[A-Za-z0-9]{16,}|rk_live_[A-Za-z0-9]{16,}|glpat-[A-Za-z0-9_-]{20}|"
    r"AIza[0-9A-Za-z_-]{35}|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)"
)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
STORE_REFERENCE = re.compile(
    r"^(vault:|ref\+|arn:aws:secretsmanager:|arn:aws:ssm:|secretsmanager:|sm://|gcp:|"
    r"projects/[^/]+/secrets/|azure-keyvault:|akv:|keyvault:|op://|doppler:|sops:|/)",
    re.IGNORECASE,
)
INTERPOLATION = re.compile(r"\$\{[^}]*\}|\$\([A-Za-z_][A-Za-z0-9_]*\)|\{\{[^}]*\}\}")
PLAIN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "enabled"})
CLI_SECRET = re.compile(
    r"(?i)^--?(?:[a-z0-9-]*-)?(password|passwd|secret|token|api-key|apikey|client-secret)"
    r"(?:=(?P<value>.+))?$"
)


def literal_secret(name: str, value: str | None) -> str | None:
    """Why ``name=value`` is a hard-coded secret ("private key", ...), or None."""
    if not value:
        return None
    v = value.strip()
    if PRIVATE_KEY.search(v):
        return "private key"
    for m in databases.URL.finditer(v):
        userinfo = m.group(0).split("://", 1)[1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            password = userinfo[0].split(":", 1)[1]
            if password and not INTERPOLATION.search(password) and not password.startswith("$"):
                return "connection string password"
    if re.search(r"(?i)(?:^|;)\s*(password|pwd)\s*=\s*(?![;$]|\{\{)[^;]+", v) and not (
        INTERPOLATION.search(v)
    ):
        return "connection string password"
    if TOKEN_PATTERNS.search(v):
        return "token"
    if not SECRET_NAME.search(name) or NOT_A_SECRET_NAME.search(name):
        return None
    if INTERPOLATION.fullmatch(v) or v.startswith("$") or STORE_REFERENCE.match(v):
        return None
    if INTERPOLATION.search(v) or v.lower() in PLAIN_WORDS or (v.isdigit() and len(v) < 4):
        return None
    return "secret value"


def _rule_for(kind: str, default: str) -> str:
    if kind == "private key":
        return "R3.private-key"
    if kind == "connection string password":
        return "R3.connection-string-password"
    return default


def check(ctx: Context) -> Iterator[Finding]:
    seen: set[tuple[str, int]] = set()

    def once(f: Finding) -> Iterator[Finding]:
        if (f.file, f.line) not in seen:
            seen.add((f.file, f.line))
            yield f

    containers = [
        (wl.ref, c.name, c.env, c.node, wl.obj.file)
        for wl in ctx.dep.workloads
        for c in wl.containers
    ]
    containers += [(s.ref, s.name, s.env, s.node, s.file) for s in ctx.dep.compose_services]
    for ref, cname, env, node, file in containers:
        for e in env:
            if e.origin != "literal" or not e.literal:
                continue
            kind = literal_secret(e.name, e.value)
            if kind:
                yield from once(
                    finding(
                        _rule_for(kind, "R3.env-literal"),
                        e.file,
                        e.line,
                        ref,
                        f"{ref} container {cname} sets {e.name} to a literal {kind}",
                    )
                )
        prev = ""
        for s in command_settings(node, file):
            m = CLI_SECRET.match(s.value.strip())
            kind = literal_secret(s.name, s.value)
            if (m and (m.group("value") or "") and not INTERPOLATION.search(m.group("value"))) or (
                CLI_SECRET.match(prev) and "=" not in prev and not INTERPOLATION.search(s.value)
            ):
                kind = kind or "secret value"
            prev = s.value.strip()
            if kind:
                yield from once(
                    finding(
                        _rule_for(kind, "R3.args-literal"),
                        s.file,
                        s.line,
                        ref,
                        f"{ref} container {cname} passes a literal {kind} in its {s.name}",
                    )
                )
    for cm in ctx.dep.of_kind("ConfigMap"):
        for key, (value, line) in data_items(cm).items():
            kind = literal_secret(key, value)
            if kind:
                yield from once(
                    finding(
                        _rule_for(kind, "R3.configmap"),
                        cm.file,
                        line,
                        cm.ref,
                        f"{cm.ref} key {key} holds a {kind} in plain text",
                    )
                )
    for secret in ctx.dep.of_kind("Secret"):
        yield from _committed_secret(secret, once)


def _committed_secret(secret: K8sObject, once) -> Iterator[Finding]:
    items = data_items(secret)
    for key, (value, line) in items.items():
        if PRIVATE_KEY.search(value):
            yield from once(
                finding(
                    "R3.private-key",
                    secret.file,
                    line,
                    secret.ref,
                    f"{secret.ref} key {key} holds a private key, committed with the manifests",
                )
            )
    real = [k for k, (v, _) in items.items() if v and not INTERPOLATION.fullmatch(v.strip())]
    if real:
        kind = text(secret.node, "type", default="Opaque")
        yield from once(
            finding(
                "R3.committed-secret",
                secret.file,
                secret.line,
                secret.ref,
                f"{secret.ref} ({kind}) is committed with the value(s) of "
                f"{', '.join(sorted(real))}",
            )
        )
