"""C2SP tlog-checkpoint: the signed tree head of a log.

Note text: origin line, tree size in decimal (no leading zeros), base64 root
hash (32 bytes), then optional non-empty extension lines.

>>> cp = Checkpoint("example.com/log", 0, bytes(32))
>>> Checkpoint.parse(cp.text()) == cp
True
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ramparts.audit.merkle import HASH_SIZE
from ramparts.audit.note import NoteError

__all__ = ["Checkpoint", "CheckpointFormatError"]

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


class CheckpointFormatError(NoteError):
    """A note's text is not a valid checkpoint body."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log (origin), how many leaves, and the root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointFormatError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise CheckpointFormatError(f"checkpoint size {self.size} is negative")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(
                f"checkpoint root hash has size {len(self.root_hash)}, want {HASH_SIZE}"
            )
        if any(not e or "\n" in e for e in self.extensions):
            raise CheckpointFormatError("checkpoint extension lines must be non-empty lines")

    def text(self) -> str:
        """Return the note text (each line newline-terminated)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (as returned by :func:`ramparts.audit.note.open_note`)."""
        if not text.endswith("\n"):
            raise CheckpointFormatError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(f"checkpoint has {len(lines)} lines, want at least 3")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise CheckpointFormatError(
                "checkpoint size line is not a decimal without leading zeros"
            )
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise CheckpointFormatError("checkpoint root hash line is not base64") from None
        return cls(origin, int(size_text), root, tuple(extensions))
