"""Checksums and number plans that turn a run of digits into a typed identifier.

Everything here is pure and works on ASCII digit strings (separators already
removed). The detectors call these only after the combined scanner has found a
candidate, so they are off the hot path of lines that hold no long numbers.
"""

from __future__ import annotations

from operator import mul
from typing import Final

# --- Payment cards -----------------------------------------------------------

# Luhn (ISO/IEC 7812-1 annex B): double every second digit from the right. The
# sums run over bytes so the loop stays in C: this runs for every card-shaped
# candidate. _LUHN_DOUBLED maps the byte of digit d to the digit sum of 2d.
_LUHN_DOUBLED: Final = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (ASCII digits only) passes the Luhn mod-10 check."""
    raw = digits.encode("ascii")
    kept = raw[-1::-2]
    total = sum(kept) - 48 * len(kept) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))
    return total % 10 == 0


def _lengths(lo: int, hi: int) -> frozenset[int]:
    return frozenset(range(lo, hi + 1))


# Issuer identification number ranges, as data: (brand, first, last, lengths).
# ``first``/``last`` are digit prefixes of equal length compared numerically.
# Sources: ISO/IEC 7812 registrations as summarised on Wikipedia's "Payment
# card number" IIN table, Interswitch Verve ranges (506099-506198, 507865-507964,
# 650002-650027) and the Verve test BINs Paystack publishes (506066, 507850),
# which sit outside the usual tables. The table errs on the side of masking:
# a false positive costs a few digits of log context, a false negative leaks
# cardholder data.
_ALL_CARD_LENGTHS: Final = _lengths(13, 19)
CARD_RANGES: Final[tuple[tuple[str, str, str, frozenset[int]], ...]] = (
    ("verve", "506099", "506198", _lengths(16, 19)),
    ("verve", "507865", "507964", _lengths(16, 19)),
    ("verve", "650002", "650027", _lengths(16, 19)),
    ("verve", "506066", "506066", _lengths(16, 19)),
    ("verve", "507850", "507850", _lengths(16, 19)),
    ("uatp", "1", "1", frozenset({15})),
    ("mir", "2200", "2204", _lengths(16, 19)),
    ("mastercard", "2221", "2720", frozenset({16})),
    ("diners", "300", "305", _lengths(14, 19)),
    ("jcb", "3088", "3088", _lengths(16, 19)),
    ("diners", "3095", "3095", _lengths(14, 19)),
    ("jcb", "3096", "3096", _lengths(16, 19)),
    ("jcb", "3112", "3112", _lengths(16, 19)),
    ("jcb", "3158", "3158", _lengths(16, 19)),
    ("jcb", "3337", "3337", _lengths(16, 19)),
    ("amex", "34", "34", frozenset({15})),
    ("jcb", "3528", "3589", _lengths(16, 19)),
    ("diners", "36", "36", _lengths(14, 19)),
    ("amex", "37", "37", frozenset({15})),
    ("diners", "38", "39", _lengths(14, 19)),
    ("visa", "4", "4", frozenset({13, 16, 19})),
    ("maestro", "50", "50", _ALL_CARD_LENGTHS),
    ("mastercard", "51", "55", frozenset({16})),
    ("bankcard", "5610", "5610", frozenset({16})),
    ("maestro", "56", "69", _ALL_CARD_LENGTHS),
    ("unionpay", "81", "81", _lengths(16, 19)),
    ("troy", "9792", "9792", frozenset({16})),
)


def _prefix_table() -> dict[str, list[tuple[str, frozenset[int]]]]:
    """Every IIN prefix in CARD_RANGES expanded, for dictionary lookups."""
    table: dict[str, list[tuple[str, frozenset[int]]]] = {}
    for brand, first, last, lengths in CARD_RANGES:
        width = len(first)
        for n in range(int(first), int(last) + 1):
            table.setdefault(f"{n:0{width}d}", []).append((brand, lengths))
    return table


_PREFIXES: Final = _prefix_table()
_PREFIX_WIDTHS: Final = tuple(sorted({len(first) for _, first, _, _ in CARD_RANGES}, reverse=True))


def card_brand(digits: str) -> str | None:
    """The brand whose IIN range and length admit ``digits``, or None.

    The longest matching prefix wins, so specific ranges (Verve's 506099-506198)
    take precedence over broad ones (Maestro's 50).
    """
    n = len(digits)
    for width in _PREFIX_WIDTHS:
        for brand, lengths in _PREFIXES.get(digits[:width], ()):
            if n in lengths:
                return brand
    return None


def is_pan(digits: str) -> bool:
    """A primary account number: 13-19 digits, a known IIN range, and Luhn."""
    return 13 <= len(digits) <= 19 and card_brand(digits) is not None and luhn_valid(digits)


# --- NUBAN (CBN Nigeria Uniform Bank Account Number) -----------------------------

# CBN "Revised standards on NUBAN" (2020): the check digit covers a 6-digit
# institution code followed by the 9-digit serial. Legacy 3-digit deposit-money
# bank codes are left-padded with "000"; 5-digit other-financial-institution
# codes are prefixed with "9". For 3-digit codes this equals the 2010 rule
# (weights 3,7,3,3,7,3,... over code + serial), because the padding adds zero.
_NUBAN_WEIGHTS: Final = (3, 7, 3) * 5
_NUBAN_WEIGHT_SUM: Final = sum(_NUBAN_WEIGHTS)


def institution_code(bank_code: str) -> str | None:
    """The 6-digit institution code for a 3-, 5- or 6-digit bank code, or None."""
    if not bank_code.isascii() or not bank_code.isdigit():
        return None
    if len(bank_code) == 3:
        return "000" + bank_code
    if len(bank_code) == 5:
        return "9" + bank_code
    if len(bank_code) == 6:
        return bank_code
    return None


def nuban_check_digit(bank_code: str, serial: str) -> int:
    """The NUBAN check digit for a bank code and a 9-digit serial.

    Raises:
        ValueError: the bank code is not 3, 5 or 6 digits, or the serial not 9 digits.
    """
    code = institution_code(bank_code)
    if code is None:
        raise ValueError(f"bank code must be 3, 5 or 6 ASCII digits, got {len(bank_code)} chars")
    if len(serial) != 9 or not serial.isascii() or not serial.isdigit():
        raise ValueError(f"NUBAN serial must be 9 ASCII digits, got {len(serial)} chars")
    return _check_digit(code + serial)


def _check_digit(fifteen: str) -> int:
    # Over the ASCII bytes, then remove the '0' (48) each byte adds times its weight.
    total = sum(map(mul, fifteen.encode("ascii"), _NUBAN_WEIGHTS)) - 48 * _NUBAN_WEIGHT_SUM
    return (10 - total % 10) % 10


def nuban_valid(bank_code: str, nuban: str) -> bool:
    """True when the 10-digit ``nuban`` carries the right check digit for ``bank_code``."""
    if len(nuban) != 10 or not nuban.isascii() or not nuban.isdigit():
        return False
    code = institution_code(bank_code)
    if code is None:
        return False
    return _check_digit(code + nuban[:9]) == ord(nuban[9]) - 48


# --- Nigerian phone numbers -------------------------------------------------------

# NCC numbering plan: mobile numbers are 0 + 10 digits nationally, +234 + 10
# digits internationally, and the national significant number starts 70, 71,
# 80, 81, 90 or 91 (07x/08x/09x prefixes).
_NG_MOBILE_LEADS: Final = frozenset({"70", "71", "80", "81", "90", "91"})


def ng_mobile_nsn(digits: str) -> str | None:
    """The 10-digit national significant number of a Nigerian mobile, or None."""
    if len(digits) == 11 and digits[0] == "0":
        nsn = digits[1:]
    elif len(digits) == 13 and digits.startswith("234"):
        nsn = digits[3:]
    else:
        return None
    return nsn if nsn[:2] in _NG_MOBILE_LEADS else None
