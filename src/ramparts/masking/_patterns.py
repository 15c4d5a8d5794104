"""The detectors compiled into ONE regular expression, run over a "shape" of the text.

Why one regex, and why this shape: the masker runs on every log line of every
service, and most lines hold nothing to mask. Python's ``re`` can skip ahead
with a C loop over a *first-character set*, but only when every top-level
alternative starts with a plain literal character (see ``_get_charset_prefix``
in CPython's ``re/_compiler.py``). So each detector is declared as the literal
characters it can start with plus the pattern that follows, and the builder
emits one alternative per first character::

    0(?:digits...)()|w(?:(?<=passw)ord...)()|@(?:domain...)()|...

The empty group that ends each alternative is its marker: ``match.lastindex``
names the alternative that matched, and the builder records where that
alternative's own groups start. Boundaries that would sit *before* a match
are written after the first character as a look-behind one character wider,
``(?<![a-z0-9].)``.

Candidates are what cost: every position holding a first character enters the
regex engine and walks the whole top-level alternation (about 50 ns), so the
design keeps candidates rare and the alternation short:

* The scan runs over the text's SHAPE (``shape_of``), a same-length string in
  which ASCII letters are lower-cased and every digit run reads "0111...1".
  Only the first digit of a run is a candidate (not every digit of every
  timestamp and trace id), one literal "0" stands for all ten digits, and
  patterns need no IGNORECASE and no upper-case twins. Spans in the shape are
  spans in the text; the masker reads the real characters from the text.
* Secret key words are ANCHORED on their rarest letter: ``password`` on its
  "w", ``token`` and ``api_key`` on their "k", ``authorization`` on its "z",
  a JWT on the "j" of "eyj", each with a look-behind for the letters before.
* Words with no rare letter (``secret``, ``session_id``, ``pin``...) are
  GATED: a C-speed ``in`` check decides whether they join the scan, and the
  scanner for each combination of open gates is compiled once and cached.

Each line is still scanned once, by one combined regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Handler names the masker dispatches on.
NUMBER: Final = "number"
PLUS_PHONE: Final = "plus_phone"
EMAIL: Final = "email"
JWT: Final = "jwt"
BEARER: Final = "bearer"
SECRET_KV: Final = "secret_kv"  # noqa: S105 -- a handler name
AUTH_KV: Final = "auth_kv"
URL_USERINFO: Final = "url_userinfo"
PEM: Final = "pem"


@dataclass(frozen=True, slots=True)
class Detector:
    """One alternative of the combined scanner.

    ``first`` lists the literal characters a match can start with; ``rest`` is
    the pattern after that character (its capture groups are the detector's own,
    numbered from 1 in the order they appear), written for the shape: lower
    case, any digit may read "0" or "1"; ``gate`` is a substring without which
    it cannot match, or empty for "always scanned".
    """

    handler: str
    first: str
    rest: str
    gate: str = ""


@dataclass(frozen=True, slots=True)
class Compiled:
    """The combined scanner and, per marker group, (handler, group offset)."""

    scanner: re.Pattern[str]
    markers: dict[int, tuple[str, int]]


def build(detectors: tuple[Detector, ...]) -> Compiled:
    """Compile detectors into one scanner; see the module docstring for the shape.

    Alternatives sharing a first character are nested under it, so at a
    candidate position ``re`` compares one literal per distinct first character.
    """
    by_first: dict[str, list[Detector]] = {}
    for det in detectors:
        for ch in det.first:
            by_first.setdefault(ch, []).append(det)
    order = list(by_first)
    parts: list[str] = []
    markers: dict[int, tuple[str, int]] = {}
    groups = 0
    for ch in order:
        inner: list[str] = []
        for det in by_first[ch]:
            own = re.compile(det.rest).groups
            inner.append(f"(?:{det.rest})()")
            markers[groups + own + 1] = (det.handler, groups)
            groups += own + 1
        body = inner[0] if len(inner) == 1 else "(?:" + "|".join(inner) + ")"
        parts.append(re.escape(ch) + body)
    return Compiled(re.compile("|".join(parts)), markers)


# --- Secrets in key/value form -----------------------------------------------------

# A key *ending* in one of these words names a secret (``db_password``,
# ``refresh_token``, ``X-Api-Key``, ``client_secret``). The match starts inside
# the word, so any prefix is covered without scanning it.
#
# Most words are ANCHORED on their rarest letter (w, k, z, g, v): the scan
# stops only at that letter and a look-behind checks the letters before it, so
# common letters never become scan candidates (all in the shape's lower case).
# Rows: spellings up to and including the anchor, the rest of the word, and
# whether the word only counts standing alone (``pwd=`` not ``cwd=``, ``cvv=``
# not ``xcvv=``).
ANCHORED_WORDS: Final = (
    (("passw",), "(?:ord|d)", False),
    (("pw",), "d", True),
    (("tok",), "en", False),
    (
        tuple(
            f"{word}{sep}k"
            for word in ("api", "access", "private", "secret", "signing")
            for sep in ("", "_", "-")
        ),
        "ey",
        False,
    ),
    (("sig",), "nature", False),
    (("cv",), "(?:v|c)[0-9]?", True),
)
# Header-like keys, anchored the same way; their values have their own grammar.
ANCHORED_HEADER_WORDS: Final = (
    (("authoriz",), "ation", "auth"),
    (("cook",), "ie", "cookie"),
)
# Words with no rare letter are GATED instead: they join the scan only for
# texts that contain them (checked with ``in`` before the scan). Rows: pattern,
# gate (a lower-case substring every spelling contains), standalone only.
GATED_WORDS: Final = (
    ("secret", "secret", False),
    ("session[_-]?id", "session", False),
    ("credentials?", "credential", False),
    ("passphrase", "passphrase", False),
    ("passcode", "passcode", False),
    ("pin", "pin", True),
    ("otp", "otp", True),
)

# Between key and value: an optional closing quote (escaped inside a JSON string
# or not), then ``:`` or ``=`` with a little space.
_KEY_TO_VALUE: Final = r"""(?:\\?["'])?[ \t]{0,3}[:=][ \t]{0,3}"""
# Quoted forms are written as unrolled loops ([^"\\]*(?:\\.[^"\\]*)*): ``re`` runs
# a single-character-class repeat in C, while (?:a|b)* costs a state save per
# character, which made a quoted JWT cost 10 us.
# The value: double-quoted, escaped-double-quoted (JSON inside a JSON string),
# single-quoted, or bare. Each form's content is one group. A bare number keeps
# its space- or dash-separated groups ("pin=1234 5678", a card after "key="),
# so no digits of it are left behind; other bare values stop at whitespace and
# at the delimiters of query strings, cookies, JSON and lists, and may not start
# with ``{`` or ``[`` (a nested object is scanned as text).
_VALUE: Final = (
    r'''(?:"([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"'''
    r'''|\\"([^"\\\n]*+(?:\\[^"\n][^"\\\n]*+)*+)\\"'''
    r"""|'([^'\n]*)'"""
    r"""|([0-9](?:[ -]?[0-9])*+[^\s"',;&}\]\\]*)"""
    r"""|([^\s"',;&{}\[\]\\][^\s"',;&}\]\\]*))"""
)
# Authorization values: keep the scheme, mask the credentials. Parameterised
# schemes (Digest, AWS SigV4), whose parameters hold quoted strings, are
# masked to the end of the line.
_AUTH_VALUE: Final = (
    r'''(?:"([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"'''
    r"""|'([^'\n]*)'"""
    r"""|(?:digest|aws[0-9]-hmac-sha[0-9]+|hoba|mutual)[ \t]+([^\r\n]+)"""
    r"""|(?:(?:bearer|basic|token|bot|negotiate|ntlm|apikey|dpop)[ \t]+)?"""
    r"""([0-9](?:[ -]?[0-9])*+[^\s"',;\\]*|[^\s"',;\\]+))"""
)
# Cookies are ``a=b; c=d`` lists: a bare value runs to the end of the line.
_COOKIE_VALUE: Final = r"""(?:"([^"\\\n]*+(?:\\.[^"\\\n]*+)*+)"|'([^'\n]*)'|([^\r\n"'\\]+))"""


def _look_behind(spellings: tuple[str, ...], *, alone: bool) -> str:
    """After the anchor letter: the spelling before it, and a boundary.

    Spellings of equal length share one look-behind (an alternation inside a
    look-behind must have a fixed width), so the scan runs one look-behind per
    length at an anchor letter, not one per spelling.
    """
    by_width: dict[int, list[str]] = {}
    for sp in spellings:
        by_width.setdefault(len(sp), []).append(re.escape(sp))
    checks = [f"(?<={'|'.join(alts)})" for _, alts in sorted(by_width.items())]
    out = checks[0] if len(checks) == 1 else f"(?:{'|'.join(checks)})"
    if alone:
        out += "".join(f"(?<![a-z0-9]{'.' * w})" for w in sorted(by_width))
    return out


def _secret_detectors() -> list[Detector]:
    dets: list[Detector] = []
    for spellings, rest, alone in ANCHORED_WORDS:
        pattern = f"{_look_behind(spellings, alone=alone)}{rest}{_KEY_TO_VALUE}{_VALUE}"
        dets.append(Detector(SECRET_KV, spellings[0][-1], pattern))
    for spellings, rest, kind in ANCHORED_HEADER_WORDS:
        value = _AUTH_VALUE if kind == "auth" else _COOKIE_VALUE
        pattern = f"{_look_behind(spellings, alone=False)}{rest}{_KEY_TO_VALUE}{value}"
        dets.append(Detector(AUTH_KV, spellings[0][-1], pattern))
    for word, gate, alone in GATED_WORDS:
        boundary = "(?<![a-z0-9].)" if alone else ""
        pattern = f"{boundary}{word[1:]}{_KEY_TO_VALUE}{_VALUE}"
        dets.append(Detector(SECRET_KV, word[0], pattern, gate))
    return dets


# --- Everything else -----------------------------------------------------------------

# Not preceded by a letter or digit, nor part of a decimal fraction ("0.3000...04").
_NUM_BOUNDARY: Final = r"(?<![a-z0-9].)(?<![0-9]\..)"
# At least 10 digits (the shortest identifier we classify), single spaces or
# dashes allowed between digits (card and phone groupings), taken possessively
# so the scan never backtracks into a run. The cheap look-ahead (nine more
# characters from [0-9 -]) rejects most short runs before the exact one counts
# digits; the run is an unrolled loop so plain digits repeat in C. What follows
# the run is checked by the masker: a last group glued to a letter
# ("... 4567abc") is dropped from the run, not the whole run.
_NUMBER_REST: Final = r"(?=[0-9 -]{9})(?=(?:[ -]?[0-9]){9})[0-9]*+(?:[ -][0-9]++)*+"
# +234, an optional "(0)", then ten digits; the masker checks the digits are a
# Nigerian mobile number (in the shape every digit reads 0 or 1).
_PLUS_PHONE_REST: Final = (
    r"(?<![a-z0-9].)[0-9]{3}[ -]?(?:\(0\)[ -]?)?[0-9]{3}(?:[ -]?[0-9]){7}(?![0-9a-z])"
)
# An e-mail is found at its "@": the domain is matched here and the local part is
# walked backwards by the masker (a look-behind cannot have variable width, and
# starting at every letter that might begin a local part would defeat the
# first-character skip). Labels follow RFC 1035; the TLD is letters or an IDNA
# A-label (xn--...).
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL_DOMAIN_REST: Final = (
    rf"{_LABEL}(?:\.{_LABEL})*\.(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{2,59}})(?![a-z0-9_-])"
)
# RFC 7519 compact JWS (three segments) or JWE (five); the header is base64url
# JSON, so it starts "eyJ" ("eyj" in the shape). Anchored on the "j"; the match
# starts two characters after the token does.
_B64URL: Final = r"[a-z0-9_-]"
_JWT_REST: Final = (
    rf"(?<=eyj)(?<!{_B64URL}eyj){_B64URL}{{2,}}\.{_B64URL}{{2,}}\.{_B64URL}*"
    rf"(?:\.{_B64URL}*\.{_B64URL}*)?(?!{_B64URL})"
)
JWT_ANCHOR_OFFSET: Final = 2
_BEARER_REST: Final = r"(?<![a-z0-9].)earer[ \t]+([a-z0-9._~+/=-]{8,})"
# scheme://user:password@host -> the password.
_URL_USERINFO_REST: Final = r"//[^/\s:@?#]+:([^/\s@?#]+)@"
# RFC 7468 private-key blocks (PKCS#1, PKCS#8, encrypted, EC, OpenSSH, PGP). A
# block with no END in the same text is masked to the end of the text.
_PEM_REST: Final = (
    r"----begin [a-z0-9 ]*private key(?: block)?-----"
    r"(?s:.*?(-----end [a-z0-9 ]*private key(?: block)?-----)|.*)"
)

DETECTORS: Final[tuple[Detector, ...]] = (
    Detector(NUMBER, "0", f"{_NUM_BOUNDARY}{_NUMBER_REST}"),
    Detector(PEM, "-", _PEM_REST),
    Detector(JWT, "j", _JWT_REST),
    Detector(BEARER, "b", _BEARER_REST),
    *_secret_detectors(),
    Detector(URL_USERINFO, ":", _URL_USERINFO_REST),
    Detector(EMAIL, "@", _EMAIL_DOMAIN_REST),
    Detector(PLUS_PHONE, "+", _PLUS_PHONE_REST),
)
COMPILED: Final = build(DETECTORS)

# Gates are substrings of the shape (lower case, no digits).
GATES: Final = tuple(dict.fromkeys(d.gate for d in DETECTORS if d.gate))
_GATE_BITS: Final = {gate: 1 << i for i, gate in enumerate(GATES)}
# Scanner variants by open-gate mask: at most 2**len(GATES), built on first use.
_VARIANTS: dict[int, Compiled] = {}

_UPPER: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SHAPE_BYTES: Final = bytes.maketrans(
    (_UPPER + "123456789").encode(), (_UPPER.lower() + "000000000").encode()
)
_SHAPE_STR: Final = str.maketrans(_UPPER + "123456789", _UPPER.lower() + "000000000")


def shape_of(text: str) -> str:
    """``text`` with ASCII letters lower-cased and each digit run as "0111...1".

    Same length as ``text``, position for position. Every digit first becomes
    "0"; then "00" -> "01" and "10" -> "11" (each replace is one C pass) turn a
    run of n zeros into "0" and n-1 ones, so only the first digit of a run is a
    scan candidate. ASCII text takes the bytes path (several times faster than
    ``str.translate``); other text is shaped the same way, more slowly.
    """
    if text.isascii():
        raw = text.encode("ascii").translate(_SHAPE_BYTES)
        return raw.replace(b"00", b"01").replace(b"10", b"11").decode("ascii")
    return text.translate(_SHAPE_STR).replace("00", "01").replace("10", "11")


def scanner_for(shape: str) -> Compiled:
    """The combined scanner of the detectors whose gates are open for ``shape``."""
    mask = 0
    # The common case, no gate open, is one C-level pass over the gates.
    if any(map(shape.__contains__, GATES)):
        for gate in GATES:
            if gate in shape:
                mask |= _GATE_BITS[gate]
    compiled = _VARIANTS.get(mask)
    if compiled is None:
        # A race between threads only compiles one variant twice.
        compiled = build(tuple(d for d in DETECTORS if not d.gate or _GATE_BITS[d.gate] & mask))
        _VARIANTS[mask] = compiled
    return compiled


# For line streams (``Masker.mask_lines``): a key block opened and not closed on
# this line, and the line that closes it.
PEM_OPEN_WITHOUT_END: Final = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?!.*-----END [A-Z0-9 ]*PRIVATE KEY)",
    re.IGNORECASE,
)
PEM_END: Final = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", re.IGNORECASE)
