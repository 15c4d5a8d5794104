"""Private keys on disk: written 0600, refused when readable by others.

Keys never travel through environment variables or command lines; a command
takes the *path* of a key file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ramparts.audit.note import Cosigner, KeyFormatError, Signer

__all__ = ["load_cosigner", "load_signer", "write_private_key"]


def write_private_key(path: Path, signer: Signer) -> None:
    """Create ``path`` with mode 0600 holding the signer's private key; never overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.skey() + "\n")


def _read_private(path: Path) -> str:
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFormatError(
            f"private key file {path} is accessible by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):o}); chmod 600 it"
        )
    return path.read_text().strip()


def load_signer(path: Path) -> Signer:
    """Load a log signing key (type 0x01) from a 0600 file."""
    return Signer.from_skey(_read_private(path))


def load_cosigner(path: Path) -> Cosigner:
    """Load a witness cosigning key (type 0x04) from a 0600 file."""
    return Cosigner.from_skey(_read_private(path))
