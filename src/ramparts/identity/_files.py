"""Private files: the only place identity code creates, checks or reads secrets on disk.

Keys are written 0600 inside 0700 directories, atomically (temp file + rename),
and a key or passphrase file that group or others can access is refused with
an error that names the path and the fix.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ramparts.identity._errors import IdentityError, InsecureFileError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class Passphrase:
    """A passphrase held in memory; its repr never shows it.

    Build one from bytes a caller already holds, or with :meth:`from_file`
    (a 0600 file). Never from argv or the environment.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray) or not secret:
            raise ValueError("passphrase must be non-empty bytes")
        self._secret = bytes(secret)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Passphrase:
        """Read a passphrase from a private file; one trailing newline is dropped."""
        data = read_private_file(path)
        if data.endswith(b"\n"):
            data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
        if not data:
            raise IdentityError(f"passphrase file {path} is empty")
        return cls(data)

    def reveal(self) -> bytes:
        """The secret bytes; call only to hand them to a KDF."""
        return self._secret

    def __repr__(self) -> str:
        return "Passphrase('**********')"


def check_private(path: str | os.PathLike[str]) -> None:
    """Raise InsecureFileError when group or others have any access to ``path``."""
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise InsecureFileError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"refusing to use it. Fix: chmod 600 {path}"
        )


def read_private_file(path: str | os.PathLike[str]) -> bytes:
    """Read a file after checking it is private to its owner."""
    try:
        check_private(path)
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise IdentityError(f"private file {path} does not exist") from None


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and parents) and make sure the leaf directory is 0700."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(p, PRIVATE_DIR_MODE)
    return p


def write_private_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` as 0600, atomically: readers see the old or the new file."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, p)


def write_public_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a non-secret file (certificate, bundle) atomically, 0644."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def private_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: Passphrase | None = None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted when a passphrase is given."""
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.reveal())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def load_private_key(
    path: str | os.PathLike[str], passphrase: Passphrase | None = None
) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key from a private file; errors name the path, never the content."""
    data = read_private_file(path)
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.reveal() if passphrase else None
        )
    except TypeError as exc:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        raise IdentityError(f"private key {path}: {exc}") from None
    except ValueError:
        raise IdentityError(
            f"private key {path} could not be decrypted or parsed (wrong passphrase?)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"private key {path} is not an EC key")
    return key
