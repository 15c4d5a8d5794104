"""What the masker found: a typed span of the input text."""

from __future__ import annotations

import enum
from typing import NamedTuple


class Kind(enum.StrEnum):
    """The type of a masked value; its name is the placeholder's label, e.g. ``[BVN]``."""

    BVN = "BVN"
    NIN = "NIN"
    # An 11-digit number with no context word: BVN and NIN share the format and
    # neither has a published checksum, so the masker cannot tell them apart.
    BVN_OR_NIN = "BVN_OR_NIN"
    NUBAN = "NUBAN"
    # A value in an account-number field that fails the NUBAN check digit for the
    # bank code beside it: still masked (it sits in an account field), never
    # claimed to be a NUBAN.
    ACCOUNT_NUMBER = "ACCOUNT_NUMBER"
    PAN = "PAN"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    JWT = "JWT"
    SECRET = "SECRET"  # noqa: S105 -- a placeholder label, not a password
    PRIVATE_KEY = "PRIVATE_KEY"


# Identifiers that keyed-HMAC tokenisation applies to. Secrets, tokens and keys
# are never tokenised: nobody needs to correlate passwords across log lines, and
# a keyed hash of a low-entropy password is one more thing to guess against.
TOKENISED_KINDS = frozenset(
    {
        Kind.BVN,
        Kind.NIN,
        Kind.BVN_OR_NIN,
        Kind.NUBAN,
        Kind.ACCOUNT_NUMBER,
        Kind.PAN,
        Kind.PHONE,
        Kind.EMAIL,
    }
)


class Finding(NamedTuple):
    """A value the masker replaces: ``text[start:end]`` is of type ``kind``.

    ``value`` is the normalised value (digits only for numbers, lower-case for
    e-mail addresses) used for tokenisation. It is excluded from ``repr`` so a
    finding printed in a test failure or a log does not reveal what it masks.
    A named tuple, not a dataclass: the masker makes one per finding on every
    log line, and a tuple is several times cheaper to build.
    """

    kind: Kind
    start: int
    end: int
    value: str = ""

    def __repr__(self) -> str:
        return f"Finding(kind={self.kind.value}, start={self.start}, end={self.end})"
