"""Shamir over GF(256), the encryption barrier and the seal: property tests and tampering."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ramparts.events import EventEmitter, MemorySink
from ramparts.secrets import BarrierError, Broker, SealedError, ShamirError, combine, split
from ramparts.secrets._barrier import Barrier
from ramparts.secrets._errors import InvalidRequest
from ramparts.secrets._seal import read_key_file
from ramparts.secrets._shamir import _inv, _mul
from ramparts.secrets._storage import SQLiteStorage

from .conftest import make_topology


def test_field_arithmetic_matches_aes() -> None:
    assert _mul(0x57, 0x83) == 0xC1  # FIPS-197 §4.2 worked example
    assert _mul(0x57, 0x13) == 0xFE
    for a in range(1, 256):
        assert _mul(a, _inv(a)) == 1
        assert _mul(a, 1) == a and _mul(a, 0) == 0


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    n_t=st.integers(2, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(2, n))),
    data=st.data(),
)
def test_any_threshold_subset_recovers_the_secret(
    secret: bytes, n_t: tuple[int, int], data: st.DataObject
) -> None:
    n, t = n_t
    shares = split(secret, n, t)
    assert len(shares) == n and all(len(s) == len(secret) + 1 for s in shares)
    assert len({s[-1] for s in shares}) == n and all(s[-1] != 0 for s in shares)
    subset = data.draw(st.permutations(shares).map(lambda p: p[: data.draw(st.integers(t, n))]))
    assert combine(list(subset)) == secret


@settings(max_examples=40, deadline=None)
@given(secret=st.binary(min_size=16, max_size=32), t=st.integers(3, 5))
def test_fewer_than_threshold_shares_do_not_recover(secret: bytes, t: int) -> None:
    shares = split(secret, t + 1, t)
    for subset in itertools.combinations(shares, t - 1):
        # t-1 shares interpolate a different polynomial; equality would need 2^-128 luck
        assert combine(list(subset)) != secret


def test_split_and_combine_reject_bad_input() -> None:
    with pytest.raises(ShamirError):
        split(b"k", 3, 4)
    with pytest.raises(ShamirError):
        split(b"k", 3, 1)
    with pytest.raises(ShamirError):
        split(b"", 3, 2)
    shares = split(b"secret", 3, 2)
    with pytest.raises(ShamirError):
        combine([shares[0]])
    with pytest.raises(ShamirError):
        combine([shares[0], shares[0]])
    with pytest.raises(ShamirError):
        combine([shares[0], shares[1][:-2] + shares[1][-1:]])


def test_barrier_encrypts_and_binds_records_to_paths(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "s.db")
    barrier = Barrier(storage)
    key = os.urandom(32)
    barrier.initialize(key)
    barrier.put("kv/a", {"password": "plain-text-canary"})
    barrier.put("kv/b", {"password": "other"})
    raw = (tmp_path / "s.db").read_bytes() + (tmp_path / "s.db-wal").read_bytes()
    assert b"plain-text-canary" not in raw
    assert oct((tmp_path / "s.db").stat().st_mode & 0o777) == "0o600"
    # move b's ciphertext under a's path: authentication fails, nothing is returned
    storage.put("kv/a", storage.get("kv/b"))
    with pytest.raises(BarrierError, match="kv/a"):
        barrier.get("kv/a")
    blob = bytearray(storage.get("kv/b"))
    blob[-1] ^= 1
    storage.put("kv/b", bytes(blob))
    with pytest.raises(BarrierError):
        barrier.get("kv/b")
    barrier.seal()
    with pytest.raises(SealedError):
        barrier.get("kv/b")
    with pytest.raises(BarrierError):
        barrier.unseal(os.urandom(32))
    barrier.unseal(key)
    term = barrier.rotate()
    barrier.put("kv/c", {"v": 1})
    assert term == 2 and storage.get("kv/c")[1:5] == (2).to_bytes(4, "big")
    barrier.seal()
    barrier.unseal(key)
    assert barrier.get("kv/c") == {"v": 1}


def _broker(tmp_path: Path, pg_prefix: str = "rptseal_") -> Broker:
    topo = make_topology({"svc-a": "unused-a", "svc-b": "unused-b"})
    return Broker(
        tmp_path / "b.db",
        topo,
        emitter=EventEmitter([MemorySink()], service="secrets"),
        role_prefix=pg_prefix,
    )


def test_shamir_unseal_threshold_and_reset(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    shares, root = broker.initialize_shamir(5, 3)
    assert root.startswith("hvs.") and broker.sealed
    assert broker.submit_share(shares[4]) is False
    assert broker.submit_share(shares[4]) is False  # a repeated share does not count twice
    assert broker.seal_manager.progress == 1
    assert broker.submit_share(shares[1]) is False
    assert broker.submit_share(shares[2]) is True and not broker.sealed
    broker.seal()
    other = split(os.urandom(32), 5, 3)
    broker.submit_share(shares[0])
    broker.submit_share(other[1])
    with pytest.raises(InvalidRequest, match="do not reconstruct"):
        broker.submit_share(other[2])
    assert broker.sealed and broker.seal_manager.progress == 0
    for s in shares[2:]:
        broker.submit_share(s)
    assert not broker.sealed
    broker.close()


def test_key_file_must_be_private(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    key_file = tmp_path / "unseal.key"
    broker.initialize_key_file(key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    key_file.chmod(0o640)
    with pytest.raises(InvalidRequest, match="chmod 600"):
        broker.unseal_key_file(key_file)
    key_file.chmod(0o600)
    broker.unseal_key_file(key_file)
    assert not broker.sealed
    with pytest.raises(InvalidRequest):
        broker.initialize_key_file(tmp_path / "again.key")  # already initialised
    link = tmp_path / "link.key"
    link.symlink_to(key_file)
    with pytest.raises(InvalidRequest, match="not a regular file"):
        read_key_file(link)
    broker.close()


def test_storage_file_holds_no_plaintext_token_or_secret(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    key_file = tmp_path / "unseal.key"
    root = broker.initialize_key_file(key_file)
    broker.unseal_key_file(key_file)
    broker.kv.write("svc-a/x", {"api_key": "canary-value-123"})
    broker.close()
    db = sqlite3.connect(tmp_path / "b.db")
    blobs = b"".join(bytes(v) for (v,) in db.execute("SELECT value FROM entries"))
    paths = " ".join(p for (p,) in db.execute("SELECT path FROM entries"))
    assert b"canary-value-123" not in blobs and root.encode() not in blobs
    assert root not in paths


def test_public_names_are_exported() -> None:
    import ramparts.secrets as pkg

    public = {n for n in dir(pkg) if (not n.startswith("_") and n[0].isupper()) or n in pkg.__all__}
    assert set(pkg.__all__) <= set(dir(pkg))
    assert {"Broker", "Secret", "create_app", "split", "combine"} <= set(pkg.__all__)
    assert public >= set(pkg.__all__)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://admin:s3cr%40t@db:5432/x", "postgresql://admin:*****@db:5432/x"),
        ("postgresql://{{username}}:{{password}}@db/x", "postgresql://{{username}}:*****@db/x"),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
        ("host=db user=a password=s3cret dbname=x", "host=db user=a password=***** dbname=x"),
        ("host=db password='s3 cret' dbname=x", "host=db password=***** dbname=x"),
    ],
)
def test_connection_url_is_redacted_for_display(url: str, shown: str) -> None:
    from ramparts.secrets._database import _redact

    assert _redact(url) == shown
