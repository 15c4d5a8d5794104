"""The encryption barrier: everything the broker stores passes through AES-256-GCM.

Key hierarchy (as in Vault and OpenBao)::

    unseal key  (never stored: Shamir shares, or a 0600 key file in development)
      └── root key       stored at core/root-key, sealed by the unseal key
            └── keyring  stored at core/keyring, sealed by the root key:
                  data keys by term; new records use the active term

Record layout: ``version(1) || term(4, big-endian) || nonce(12) || ciphertext+tag``.
The AAD is the header plus the record's path, so a ciphertext moved to another
path, or relabelled with another term, fails authentication instead of
decrypting into the wrong place. Any authentication failure raises
:class:`BarrierError` naming the path; nothing is ever returned unverified.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ramparts.secrets._errors import BarrierError, InvalidRequest, SealedError
from ramparts.secrets._storage import SQLiteStorage

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
ROOT_KEY_PATH = "core/root-key"
KEYRING_PATH = "core/keyring"
_AAD_DOMAIN = b"ramparts-secrets-barrier\x00"


def _aad(header: bytes, path: str) -> bytes:
    return _AAD_DOMAIN + header + path.encode()


def _seal_bytes(key: bytes, term: int, path: str, plaintext: bytes) -> bytes:
    header = bytes([VERSION]) + term.to_bytes(4, "big")
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(header, path))


def _open_bytes(keys: dict[int, bytes], path: str, blob: bytes) -> bytes:
    if len(blob) < 5 + NONCE_BYTES + 16 or blob[0] != VERSION:
        raise BarrierError(f"record at {path!r} is malformed or of an unknown version")
    header, nonce, ct = blob[:5], blob[5 : 5 + NONCE_BYTES], blob[5 + NONCE_BYTES :]
    key = keys.get(int.from_bytes(header[1:5], "big"))
    if key is None:
        raise BarrierError(f"record at {path!r} names a key term the keyring does not have")
    try:
        return AESGCM(key).decrypt(nonce, ct, _aad(header, path))
    except InvalidTag as exc:
        raise BarrierError(f"record at {path!r} failed authentication") from exc


class Barrier:
    """Encrypted JSON records over a :class:`SQLiteStorage`; starts sealed."""

    def __init__(self, storage: SQLiteStorage) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._keys: dict[int, bytes] | None = None
        self._active = 0

    @property
    def initialized(self) -> bool:
        return self.storage.get(ROOT_KEY_PATH) is not None

    @property
    def sealed(self) -> bool:
        return self._keys is None

    def initialize(self, unseal_key: bytes) -> None:
        """Create the root key and the first data key; leaves the barrier unsealed."""
        if len(unseal_key) != KEY_BYTES:
            raise InvalidRequest(f"unseal key must be {KEY_BYTES} bytes, got {len(unseal_key)}")
        with self._lock:
            if self.initialized:
                raise InvalidRequest("the secrets store is already initialized")
            root = secrets.token_bytes(KEY_BYTES)
            self.storage.put(ROOT_KEY_PATH, _seal_bytes(unseal_key, 0, ROOT_KEY_PATH, root))
            self._write_keyring(root, {1: secrets.token_bytes(KEY_BYTES)}, active=1)
            self._load(root)

    def unseal(self, unseal_key: bytes) -> None:
        """Open the root key with ``unseal_key``; raises BarrierError if it is the wrong key."""
        with self._lock:
            blob = self.storage.get(ROOT_KEY_PATH)
            if blob is None:
                raise InvalidRequest("the secrets store is not initialized")
            try:
                root = _open_bytes({0: unseal_key}, ROOT_KEY_PATH, blob)
            except BarrierError as exc:
                raise BarrierError("the unseal key does not open the root key") from exc
            self._load(root)

    def seal(self) -> None:
        with self._lock:
            self._keys = None
            self._active = 0

    def rotate(self) -> int:
        """Add a new data key and make it active; old records stay readable. Returns the term."""
        with self._lock:
            keys = self._require()
            root = self._root_key
            term = max(keys) + 1
            keys = {**keys, term: secrets.token_bytes(KEY_BYTES)}
            self._write_keyring(root, keys, active=term)
            self._keys, self._active = keys, term
            return term

    # -- records ------------------------------------------------------------------------

    def get(self, path: str) -> Any | None:
        keys = self._require()
        blob = self.storage.get(path)
        if blob is None:
            return None
        return json.loads(_open_bytes(keys, path, blob))

    def put(self, path: str, value: Any) -> None:
        keys = self._require()
        if path.startswith("core/root-key") or path == KEYRING_PATH:
            raise InvalidRequest(f"path {path!r} is reserved")
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        self.storage.put(path, _seal_bytes(keys[self._active], self._active, path, data))

    def delete(self, path: str) -> None:
        self._require()
        self.storage.delete(path)

    def list_prefix(self, prefix: str) -> list[str]:
        self._require()
        return self.storage.list_prefix(prefix)

    # -- internals ----------------------------------------------------------------------

    def _require(self) -> dict[int, bytes]:
        keys = self._keys
        if keys is None:
            raise SealedError()
        return keys

    def _write_keyring(self, root: bytes, keys: dict[int, bytes], *, active: int) -> None:
        ring = {"active": active, "keys": {str(t): k.hex() for t, k in keys.items()}}
        self.storage.put(
            KEYRING_PATH, _seal_bytes(root, 0, KEYRING_PATH, json.dumps(ring).encode())
        )

    def _load(self, root: bytes) -> None:
        blob = self.storage.get(KEYRING_PATH)
        if blob is None:
            raise BarrierError("the keyring is missing from storage")
        ring = json.loads(_open_bytes({0: root}, KEYRING_PATH, blob))
        self._root_key = root
        self._keys = {int(t): bytes.fromhex(k) for t, k in ring["keys"].items()}
        self._active = int(ring["active"])
