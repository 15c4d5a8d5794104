"""Initialising and unsealing the barrier: Shamir shares, or a 0600 key file.

The unseal key exists in memory only while the barrier is being opened. With
Shamir (the default, 5 shares, threshold 3) operators submit shares one at a
time, Vault-style, and progress resets when a combined key fails. With a key
file (local development) the file must be a regular file owned by this user and
readable by nobody else; anything looser is refused, not warned about.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ramparts.secrets import _shamir
from ramparts.secrets._barrier import KEY_BYTES, Barrier
from ramparts.secrets._errors import BarrierError, InvalidRequest

SEAL_CONFIG_PATH = "core/seal-config"  # plaintext: type, shares, threshold (not secret)


@dataclass
class UnsealProgress:
    shares: list[bytes] = field(default_factory=list)
    nonce: str = ""


def decode_share(text: str) -> bytes:
    """A share as Vault prints it: hex (``keys``) or base64 (``keys_base64``)."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("unseal key share is neither hex nor base64") from exc


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read a development unseal key file, refusing one others could read or swap."""
    p = Path(path)
    try:
        st = os.stat(p, follow_symlinks=False)
    except OSError as exc:
        raise InvalidRequest(f"key file {p}: cannot stat ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidRequest(f"key file {p} is not a regular file")
    if st.st_mode & 0o077:
        raise InvalidRequest(
            f"key file {p} is readable or writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run chmod 600 on it"
        )
    if st.st_uid != os.geteuid():
        raise InvalidRequest(f"key file {p} is owned by uid {st.st_uid}, not by this user")
    try:
        key = bytes.fromhex(p.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"key file {p} does not hold a hex key") from exc
    if len(key) != KEY_BYTES:
        raise InvalidRequest(f"key file {p} holds {len(key)} bytes, want {KEY_BYTES}")
    return key


def write_private_file(path: str | os.PathLike[str], text: str) -> None:
    """Create ``path`` 0600 with ``text``; refuses to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class SealManager:
    """Owns the seal configuration and the in-progress unseal."""

    def __init__(self, barrier: Barrier) -> None:
        self.barrier = barrier
        self._lock = threading.Lock()
        self._progress = UnsealProgress()

    @property
    def config(self) -> dict[str, object]:
        raw = self.barrier.storage.get(SEAL_CONFIG_PATH)
        if raw is None:
            return {"type": "shamir", "shares": 0, "threshold": 0}
        return json.loads(raw)

    @property
    def progress(self) -> int:
        return len(self._progress.shares)

    @property
    def nonce(self) -> str:
        return self._progress.nonce

    def initialize_shamir(self, shares: int = 5, threshold: int = 3) -> list[bytes]:
        """Make a fresh unseal key, split it, initialise the barrier (left unsealed)."""
        key = secrets.token_bytes(KEY_BYTES)
        parts = _shamir.split(key, shares, threshold)
        self._init(key, {"type": "shamir", "shares": shares, "threshold": threshold})
        return parts

    def initialize_key_file(self, path: str | os.PathLike[str]) -> None:
        """Development mode: the unseal key goes into a new 0600 file."""
        key = secrets.token_bytes(KEY_BYTES)
        write_private_file(path, key.hex() + "\n")
        self._init(key, {"type": "keyfile", "shares": 1, "threshold": 1})

    def _init(self, key: bytes, config: dict[str, object]) -> None:
        self.barrier.initialize(key)
        self.barrier.storage.put(SEAL_CONFIG_PATH, json.dumps(config).encode())

    def unseal_key_file(self, path: str | os.PathLike[str]) -> None:
        self.barrier.unseal(read_key_file(path))

    def submit_share(self, share: bytes) -> bool:
        """Add one share; returns True once the barrier is unsealed.

        A duplicate share is ignored. When the threshold is reached and the
        combined key does not open the root key, progress resets and
        :class:`InvalidRequest` is raised.
        """
        with self._lock:
            if not self.barrier.sealed:
                return True
            cfg = self.config
            if cfg.get("type") != "shamir":
                raise InvalidRequest("this store is unsealed with a key file, not shares")
            if not self._progress.shares:
                self._progress.nonce = secrets.token_hex(16)
            if share not in self._progress.shares:
                self._progress.shares.append(share)
            if len(self._progress.shares) < int(cfg["threshold"]):  # type: ignore[call-overload]
                return False
            parts, self._progress = self._progress.shares, UnsealProgress()
            try:
                self.barrier.unseal(_shamir.combine(parts))
            except (_shamir.ShamirError, BarrierError) as exc:
                raise InvalidRequest(
                    "the submitted shares do not reconstruct the unseal key; progress reset"
                ) from exc
            return True

    def reset(self) -> None:
        with self._lock:
            self._progress = UnsealProgress()
