"""Field names as context: what a record key says about the value under it.

A value in a field named ``bvn``, ``account_number`` or ``client_secret`` is
masked whatever it looks like, because the name is stronger evidence than any
pattern. Keys are split into words (snake_case, kebab-case, camelCase) so
``customerBvn``, ``customer_bvn`` and ``Customer-BVN`` read the same.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache
from typing import Final


class Field(enum.Enum):
    """How a named field's value is masked."""

    SECRET = "secret"  # noqa: S105 -- a rule name, not a password
    BVN = "bvn"
    NIN = "nin"
    ACCOUNT = "account"
    BANK_CODE = "bank_code"
    PAN = "pan"
    PHONE = "phone"
    EMAIL = "email"


_WORDS: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")

# The last word of a key that names a secret.
_SECRET_LAST: Final = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "passcode",
        "pwd",
        "secret",
        "token",
        "cookie",
        "cookies",
        "authorization",
        "credential",
        "credentials",
        "signature",
        "pin",
        "otp",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "apikey",
        "sessionid",
    }
)
# Keys whose words, joined, end in one of these also name a secret.
_SECRET_JOINED_SUFFIX: Final = (
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "sessionid",
    "clientsecret",
)
_BANK_CODE_JOINED: Final = frozenset(
    {"bankcode", "institutioncode", "sortcode", "cbncode", "nipcode", "destinationbankcode"}
)
_ACCOUNT_JOINED: Final = (
    "accountnumber",
    "accountno",
    "accountnum",
    "acctnumber",
    "acctno",
    "acctnum",
    "accno",
    "nuban",
)
_PAN_JOINED: Final = (
    "cardnumber",
    "cardno",
    "cardpan",
    "primaryaccountnumber",
)
_PHONE_LAST: Final = frozenset({"phone", "msisdn", "mobile", "telephone", "tel"})
_PHONE_JOINED_SUFFIX: Final = ("phonenumber", "mobilenumber", "phoneno")


@lru_cache(maxsize=4096)
def classify_key(key: str) -> Field | None:
    """The masking rule for values under ``key``, or None for "scan the value as text".

    Cached: record keys repeat on every line. The cache is bounded, so keys
    that come from untrusted input cannot grow it without limit.
    """
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words:
        return None
    joined = "".join(words)
    last = words[-1]
    # Card numbers before accounts: "primary_account_number" is a PAN.
    if joined == "pan" or joined.endswith(_PAN_JOINED):
        return Field.PAN
    if last in _SECRET_LAST or joined.endswith(_SECRET_JOINED_SUFFIX):
        return Field.SECRET
    if "bvn" in words or joined.endswith("bankverificationnumber"):
        return Field.BVN
    if "nin" in words or joined.endswith(("nationalidentificationnumber", "nationalidnumber")):
        return Field.NIN
    if joined in _BANK_CODE_JOINED:
        return Field.BANK_CODE
    if any(a in joined for a in _ACCOUNT_JOINED):
        return Field.ACCOUNT
    if last in _PHONE_LAST or joined.endswith(_PHONE_JOINED_SUFFIX):
        return Field.PHONE
    if last == "email" or joined.endswith("emailaddress"):
        return Field.EMAIL
    return None
