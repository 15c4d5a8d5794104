"""Generators of valid identifiers for tests: card numbers, NUBANs, BVNs, phones.

Independent of the code under test: the Luhn and NUBAN digits are computed
here from the published rules, not with ``ramparts.masking._checks``.
"""

from __future__ import annotations

import random

# (prefix, length) pairs of real issuer ranges, Verve's 19-digit cards included.
CARD_SHAPES = (
    ("4", 16),
    ("4", 13),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3528", 16),
    ("36", 14),
    ("62", 16),
    ("62", 19),
    ("506099", 16),
    ("506099", 19),
    ("506198", 18),
    ("507865", 19),
    ("650002", 16),
    ("650027", 19),
)

# Legacy 3-digit deposit-money bank codes (CBN) and 5-digit OFI-style codes.
BANK_CODES = ("011", "014", "023", "032", "033", "044", "050", "058", "057", "214", "232", "50211")


def luhn_complete(partial: str) -> str:
    """``partial`` plus the digit that makes the whole pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def make_pan(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)


def luhn_break(pan: str) -> str:
    """The same number with its check digit changed, so Luhn fails."""
    return pan[:-1] + str((int(pan[-1]) + 1) % 10)


def nuban_for(bank_code: str, serial: str) -> str:
    """The 10-digit NUBAN for a bank code and serial (CBN: 3,7,3 weights over 15 digits)."""
    code = {3: "000" + bank_code, 5: "9" + bank_code, 6: bank_code}[len(bank_code)]
    weights = [3, 7, 3] * 5
    total = sum(int(c) * w for c, w in zip(code + serial, weights, strict=True))
    return serial + str((10 - total % 10) % 10)


def make_nuban(rng: random.Random, bank_code: str) -> str:
    return nuban_for(bank_code, "".join(rng.choice("0123456789") for _ in range(9)))


def make_bvn(rng: random.Random) -> str:
    return "22" + "".join(rng.choice("0123456789") for _ in range(9))


def make_phone(rng: random.Random) -> str:
    lead = rng.choice(["70", "80", "81", "90", "91"])
    return "0" + lead + "".join(rng.choice("0123456789") for _ in range(8))
