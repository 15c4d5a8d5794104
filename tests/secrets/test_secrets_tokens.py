"""Tokens (expiry, renewal cap, SVID binding, tidy) and the topology-derived policy, with an
injected clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ramparts.secrets import PermissionDenied
from ramparts.secrets._barrier import Barrier
from ramparts.secrets._policy import check
from ramparts.secrets._storage import SQLiteStorage
from ramparts.secrets._tokens import TokenStore

from .conftest import sid


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> tuple[TokenStore, Clock]:
    barrier = Barrier(SQLiteStorage(tmp_path / "t.db"))
    barrier.initialize(os.urandom(32))
    clock = Clock()
    return TokenStore(barrier, default_ttl=600, max_ttl=1800, clock=clock), clock


def test_token_expires_renews_up_to_max_and_is_tidied(store: tuple[TokenStore, Clock]) -> None:
    tokens, clock = store
    token, entry = tokens.create_service_token("svc-a", sid("svc-a"))
    assert tokens.lookup(token, sid("svc-a")).remaining(clock.now) == 600
    clock.now += 500
    entry = tokens.renew(token, tokens.lookup(token, sid("svc-a")), 10_000)
    assert entry.remaining(clock.now) == 1300  # capped at issue + max_ttl
    clock.now += 1300
    with pytest.raises(PermissionDenied):
        tokens.lookup(token, sid("svc-a"))
    token2, _ = tokens.create_service_token("svc-a", sid("svc-a"))
    clock.now += 601
    assert tokens.tidy() == 1
    with pytest.raises(PermissionDenied):
        tokens.lookup(token2, sid("svc-a"))


def test_token_is_bound_to_its_svid_and_root_is_not(store: tuple[TokenStore, Clock]) -> None:
    tokens, _ = store
    token, _ = tokens.create_service_token("svc-a", sid("svc-a"))
    for peer in (sid("svc-b"), None, sid("svc-a") + "/x"):
        with pytest.raises(PermissionDenied):
            tokens.lookup(token, peer)
    root = tokens.create_root()
    assert tokens.lookup(root, sid("console", "ramparts")).is_root
    for bad in (None, "", "hvs.unknown", root + "x"):
        with pytest.raises(PermissionDenied):
            tokens.lookup(bad, sid("svc-a"))


@pytest.mark.parametrize(
    ("op", "path", "lease", "allowed"),
    [
        ("read", "secret/data/svc-a/db", None, True),
        ("read", "secret/data/svc-a/deep/er", None, True),
        ("read", "secret/data/svc-a", None, False),
        ("read", "secret/data/svc-ab/db", None, False),
        ("read", "secret/data/svc-b/db", None, False),
        ("update", "secret/data/svc-a/db", None, False),
        ("list", "secret/metadata/svc-a", None, True),
        ("list", "secret/metadata/svc-a/deep", None, True),
        ("list", "secret/metadata/svc-b", None, False),
        ("read", "database/creds/svc-a", None, True),
        ("read", "database/creds/svc-b", None, False),
        ("update", "database/roles/svc-a", None, False),
        ("update", "sys/leases/renew", "database/creds/svc-a/x1", True),
        ("update", "sys/leases/revoke", "database/creds/svc-a/x1", True),
        ("update", "sys/leases/revoke", "database/creds/svc-ab/x1", False),
        ("update", "sys/leases/revoke", "database/creds/svc-b/x1", False),
        ("update", "sys/leases/revoke", None, False),
        ("update", "sys/leases/revoke-prefix/database/creds/svc-a", None, False),
        ("update", "sys/seal", None, False),
        ("read", "auth/token/lookup-self", None, True),
    ],
)
def test_service_policy_matrix(
    store: tuple[TokenStore, Clock], op: str, path: str, lease: str | None, allowed: bool
) -> None:
    tokens, _ = store
    token, _ = tokens.create_service_token("svc-a", sid("svc-a"))
    entry = tokens.lookup(token, sid("svc-a"))
    if allowed:
        check(entry, op, path, lease_id=lease)
    else:
        with pytest.raises(PermissionDenied):
            check(entry, op, path, lease_id=lease)
