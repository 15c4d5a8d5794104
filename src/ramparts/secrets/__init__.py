"""The secrets broker: short-lived credentials over a Vault-compatible API.

Workloads log in with their SVID (cert auth, over mTLS only) and get a short
token whose policy is derived from the topology: a service reads its own KV
secrets and leases its own PostgreSQL role, nothing else. Storage is an
encrypted SQLite file that starts sealed (Shamir shares, or a 0600 key file in
development). Every lease is journalled before its role exists, so a crash
leaves no orphan role. Every request is audited with secret values HMAC'd.

Operator flow (``ramparts secrets``)::

    ramparts secrets init --storage s.db --out init.json      # 5 shares, threshold 3, 0600
    ramparts secrets serve --storage s.db --identity-dir id/secrets --audit-log audit.jsonl
    ramparts secrets unseal --share-file my-share.txt --identity-dir id/operator
    # then, with the root token from init.json and any Vault client:
    #   POST /v1/database/config/pg  {"connection_url": "postgresql://admin@db/postgres"}
    #   POST /v1/database/roles/<service>  {"db_name": "pg", "default_ttl": "1h"}

A service then needs nothing but its SVID::

    client = SecretsClient.for_workload(source, url, topology.spiffe_id("secrets"))
    pool = RotatingPool(client, "ledger", dbname="ledger")   # leased, renewed, rotated

In code: ``create_app(Broker("s.db", topology, emitter=emitter))`` is the ASGI app;
serve it with :func:`ramparts.identity.build_mtls_server`.
"""

from ramparts.secrets._api import create_app
from ramparts.secrets._broker import DEFAULT_ROLE_PREFIX, Broker
from ramparts.secrets._errors import (
    AuditFailure,
    BarrierError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    SealedError,
    SecretsError,
    UnsupportedOperation,
)
from ramparts.secrets._secret import Secret
from ramparts.secrets._shamir import ShamirError, combine, split

__all__ = [
    "DEFAULT_ROLE_PREFIX",
    "AuditFailure",
    "BarrierError",
    "Broker",
    "InvalidRequest",
    "NotFound",
    "PermissionDenied",
    "SealedError",
    "Secret",
    "SecretsError",
    "ShamirError",
    "UnsupportedOperation",
    "combine",
    "create_app",
    "split",
]
