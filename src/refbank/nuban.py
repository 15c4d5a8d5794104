"""NUBAN account numbers (CBN's Nigeria Uniform Bank Account Number).

A NUBAN is a 9-digit serial and a check digit. The check digit covers the
bank's 6-digit institution code followed by the serial, with weights 3, 7, 3
repeated; check = (10 - S mod 10) mod 10.

>>> check_digit("000011", "000001457")
9
>>> make_nuban("000011", 1457)
'0000014579'
>>> is_valid("000011", "0000014579")
True
"""

from __future__ import annotations

WEIGHTS = (3, 7, 3) * 5


def check_digit(bank_code: str, serial: str) -> int:
    digits = _institution(bank_code) + serial
    if len(serial) != 9 or not digits.isdigit():
        raise ValueError(
            f"NUBAN needs a 6-digit bank code and a 9-digit serial, got {bank_code!r}, {serial!r}"
        )
    total = sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True))
    return (10 - total % 10) % 10


def make_nuban(bank_code: str, serial_number: int) -> str:
    if not 0 <= serial_number < 10**9:
        raise ValueError(f"serial must be 0..999999999, got {serial_number}")
    serial = f"{serial_number:09d}"
    return serial + str(check_digit(bank_code, serial))


def is_valid(bank_code: str, nuban: str) -> bool:
    return (
        len(nuban) == 10 and nuban.isdigit() and check_digit(bank_code, nuban[:9]) == int(nuban[9])
    )


def _institution(bank_code: str) -> str:
    # 3-digit deposit-money-bank codes are left-padded with "000"; 5-digit codes
    # of other financial institutions are prefixed with "9".
    if len(bank_code) == 3:
        return "000" + bank_code
    if len(bank_code) == 5:
        return "9" + bank_code
    return bank_code
