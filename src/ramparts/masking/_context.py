"""Context around a candidate: the words and bank codes that type or confirm it.

The scanner finds candidates; these decide what they are. An 11-digit number
is a BVN or a NIN by the nearest label before it; a 10-digit number is a NUBAN
when the key right before it names an account, or when a bank code elsewhere
in the text makes its CBN check digit verifiable. An e-mail's local part is
found here too, walking back from the "@" the scanner stopped at.
"""

from __future__ import annotations

import re
from typing import Final

# RFC 5321 section 4.5.3.1.1: a local part is at most 64 octets.
EMAIL_LOCAL_MAX: Final = 64
# The local part, matched on the REVERSED text before the "@" (one C-level
# repeat instead of a Python loop walking backwards). Letters, digits (any
# script: RFC 6531 allows UTF-8 local parts) and "._%+-"; RFC 5322 also allows
# !#$&'*/=?^`{|}~, which would swallow "user=" from "user=ada@example.com".
EMAIL_LOCAL_REVERSED: Final = re.compile(r"[\w.%+-]{0,64}")

# --- Context words ------------------------------------------------------------------
#
# All of these work on LOWER-CASED text. The regexes start with literal letters
# (look-behinds come after them), so ``re`` skips to candidates as in the
# scanner; an IGNORECASE pattern would be tried at every position.

# Words near an 11-digit number that say which identifier it is; the nearest
# one before the number wins. The leading greedy ".*" runs to the end of the
# window and backtracks, so the first match found is the LAST word: one C-level
# pass instead of a search per word.
_ID_CONTEXT_LAST: Final = re.compile(
    r".*(bvn|bank[ _-]?verification"
    r"|n(?<![a-z]n)in(?![a-z])|vnin|nimc|national[ _-]?ident|identity[ _-]?number"
    r"|phone|mobile|msisdn|t(?<![a-z]t)el(?![a-z]))",
    re.DOTALL,
)
ID_CONTEXT_WINDOW: Final = 48


def nearest_id_context(window: str) -> str | None:
    """'bvn', 'nin' or 'phone' for the context word nearest the end of ``window``.

    ``window`` is lower-case text that ends where the number starts.
    """
    m = _ID_CONTEXT_LAST.match(window)
    if m is None:
        return None
    first = m.group(1)[0]
    if first == "b":
        return "bvn"
    if first in "pmt":
        return "phone"
    return "nin"


# A 10-digit number is an account number when the key right before it says so:
# "account 0123456789", "acct_no=0123456789", "nuban: ...", '"account_number":"...'.
# Anchored at the end so "account_id=42 ts=1764355200" does not make a timestamp
# an account number.
ACCOUNT_CONTEXT: Final = re.compile(
    r"(?:a(?:ccount|cct|/c|(?<![a-z].)cc)|nuban)(?:[ _.-]?(?:number|num|no|nr))?[.#]?"
    r"""(?:\\?["'])?\s{0,3}[:=]?\s{0,3}(?:\\?["'])?\s{0,3}$"""
)
ACCOUNT_CONTEXT_WINDOW: Final = 40

# A bank code anywhere in the same text enables the NUBAN check digit. The
# pattern starts with the literal "code" so ``re`` finds candidates with its
# fast literal search; the look-behinds then accept only bank-code key names.
_CODE_KEYS: Final = ("bank", "institution", "sort", "cbn")
BANK_CODE: Final = re.compile(
    "code(?:"
    + "|".join(f"(?<={k}code)|(?<={k}[ _-]code)" for k in _CODE_KEYS)
    + r""")(?:\\?["'])?\s{0,3}[:=]?\s{0,3}(?:\\?["'])?\s{0,3}"""
    + r"([0-9]{6}|[0-9]{5}|[0-9]{3})(?![0-9])"
)
