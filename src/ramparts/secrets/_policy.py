"""What a token may do, derived from the topology and nothing else.

A service token (from cert login) may:

* read its own KV secrets: ``secret/data/<service>/...``, and list
  ``secret/metadata/<service>[/...]``;
* lease its own database role: ``read database/creds/<service>``, and look up,
  renew or revoke leases under ``database/creds/<service>/``;
* look up, renew and revoke itself.

Nothing else: writes to KV, database configuration, revoke-prefix and every
``sys/`` operation beyond health and unseal need the operator's root token.
There are no user-written policies to get wrong; the topology is the policy.
"""

from __future__ import annotations

from ramparts.secrets._errors import PermissionDenied
from ramparts.secrets._tokens import TokenEntry

SELF_PATHS = frozenset(
    {"auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self"}
)
LEASE_PATHS = frozenset({"sys/leases/lookup", "sys/leases/renew", "sys/leases/revoke"})


def _under(path: str, prefix: str) -> bool:
    return path.startswith(prefix + "/") and len(path) > len(prefix) + 1


def check(entry: TokenEntry, operation: str, path: str, *, lease_id: str | None = None) -> None:
    """Raise PermissionDenied unless ``entry`` may do ``operation`` on ``path``.

    ``operation`` is one of read, create, update, list, delete. For the lease
    endpoints the lease named in the body decides, so callers pass ``lease_id``.
    """
    if entry.is_root:
        return
    if path in SELF_PATHS:
        return
    service = entry.service
    if not service:
        raise PermissionDenied()
    if operation == "read" and _under(path, f"secret/data/{service}"):
        return
    if operation == "list" and (
        path == f"secret/metadata/{service}" or _under(path, f"secret/metadata/{service}")
    ):
        return
    if operation == "read" and path == f"database/creds/{service}":
        return
    if (
        path in LEASE_PATHS
        and operation in ("update", "create")
        and lease_id is not None
        and _under(lease_id, f"database/creds/{service}")
    ):
        return
    raise PermissionDenied()
