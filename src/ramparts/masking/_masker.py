"""The masker: one scan per text, typed placeholders, records masked by field name."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from ramparts.masking import _context as C
from ramparts.masking import _patterns as P
from ramparts.masking._checks import is_pan, ng_mobile_nsn, nuban_valid
from ramparts.masking._fields import Field, classify_key
from ramparts.masking._finding import TOKENISED_KINDS, Finding, Kind
from ramparts.masking._tokens import Tokeniser

_NUMBER, _EMAIL, _SECRET_KV, _AUTH_KV = P.NUMBER, P.EMAIL, P.SECRET_KV, P.AUTH_KV
_PLUS_PHONE, _JWT, _BEARER, _URL_USERINFO, _PEM = (
    P.PLUS_PHONE,
    P.JWT,
    P.BEARER,
    P.URL_USERINFO,
    P.PEM,
)
_DIGITS_ONLY: Final = str.maketrans("", "", " -()+")
_DIGIT_GROUPS: Final = re.compile(r"(?:[ -][0-9]+)+")
# Records nested deeper than this (or cyclic) are cut off with _TRUNCATED.
_MAX_DEPTH: Final = 32
_TRUNCATED: Final = "[TRUNCATED]"
# The shortest text that can hold anything to mask: "pin=1", "otp:1".
_SHORTEST_FINDING: Final = 5
_PLAIN: Final = {kind: f"[{kind.value}]" for kind in Kind}
_ASCII_ALNUM: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

# Record scalars under a named field are replaced whole with these kinds.
_FIELD_KIND: Final = {
    Field.SECRET: Kind.SECRET,
    Field.BVN: Kind.BVN,
    Field.NIN: Kind.NIN,
    Field.PHONE: Kind.PHONE,
    Field.EMAIL: Kind.EMAIL,
}


class _Line:
    """Per-text state for one scan: the text, its shape, its field name, lazy bank codes."""

    __slots__ = ("_codes", "context", "shape", "text")

    def __init__(self, text: str, shape: str, context: str) -> None:
        self.text = text
        self.shape = shape
        self.context = context
        self._codes: list[str] | None = None

    def before(self, start: int, width: int) -> str:
        """Up to ``width`` lower-case characters before ``start``, led by the field name.

        Taken from the shape, which is lower-case already; context words hold
        no digits, so the shape's "0"/"1" digits do not matter here.
        """
        window = self.shape[max(0, start - width) : start]
        if start < width and self.context:
            return f"{self.context.lower()}={window}"
        return window

    def codes(self) -> list[str]:
        """Bank codes written anywhere in the text, found once and only when needed.

        Found in the shape (lower-case), read from the text (real digits).
        """
        if self._codes is None:
            text, shape = self.text, self.shape
            self._codes = (
                [text[m.start(1) : m.end(1)] for m in C.BANK_CODE.finditer(shape)]
                if "code" in shape
                else []
            )
        return self._codes


@dataclass(frozen=True)
class Masker:
    """Masks PII and secrets in text and in structured records.

    >>> m = Masker()
    >>> m.mask_text("bvn=22212345678 card 4242 4242 4242 4242 to ada@example.com")
    'bvn=[BVN] card [PAN:424242******4242] to [EMAIL]'
    >>> m.mask_record({"account_number": "0123456789", "password": "hunter2", "n": 3})
    {'account_number': '[NUBAN]', 'password': '[SECRET]', 'n': 3}

    Args:
        hmac_key: if given (at least 16 bytes), identifiers are tokenised as
            ``[BVN:hmac:3f2a9c1d0b7e]`` so equal values correlate; see
            ``ramparts.masking._tokens`` for why a plain hash would not do.
        mask_unlabelled_ids: mask an 11-digit number with no context word as
            ``[BVN_OR_NIN]``. On by default: BVN and NIN have no public checksum,
            so without it an identifier logged without its label would leak.
        reveal_pan_digits: keep the first six and last four digits of a card
            number (PCI DSS 3.4's maximum) for PANs of 16 or more digits, and
            only the last four for shorter ones, whose BIN and last four would
            leave too few unknown digits.

    The configuration is fixed at construction; the object is immutable and
    safe to share between threads.
    """

    hmac_key: bytes | None = field(default=None, repr=False)
    mask_unlabelled_ids: bool = True
    reveal_pan_digits: bool = True
    _tokeniser: Tokeniser | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.hmac_key is not None:
            object.__setattr__(self, "_tokeniser", Tokeniser(self.hmac_key))
        # Masked record keys, per masker because tokens depend on the key; bounded.
        object.__setattr__(self, "_mask_key", lru_cache(maxsize=4096)(self._mask_key_uncached))

    def __repr__(self) -> str:
        return (
            f"Masker(hmac={'on' if self._tokeniser else 'off'}, "
            f"mask_unlabelled_ids={self.mask_unlabelled_ids}, "
            f"reveal_pan_digits={self.reveal_pan_digits})"
        )

    # --- public API ------------------------------------------------------------

    def findings(self, text: str) -> list[Finding]:
        """Every value :meth:`mask_text` would replace, in order, as typed spans."""
        return self._scan(text, "")

    def mask_text(self, text: str) -> str:
        """``text`` with every finding replaced by its placeholder."""
        return self._mask_text(text, "")

    def mask_record(self, obj: Any) -> Any:
        """A masked copy of a JSON-like record (dicts, lists, scalars), masked recursively.

        Field names are context: a value under ``bvn``, ``account_number``,
        ``password`` ... is masked whole; other strings are scanned as text with
        their key as context. Keys are scanned too. Objects that are not JSON
        types are masked through ``str()`` when that reveals something.
        """
        return self._mask_value(obj, "", None, 0)

    def mask_lines(self, lines: Iterable[str]) -> Iterator[str]:
        """Mask a stream of lines, carrying a private-key block across lines.

        A ``-----BEGIN ... PRIVATE KEY-----`` line without its END masks every
        following line up to and including the END line, so a key printed over
        many lines never leaks line by line.
        """
        in_key = False
        for raw in lines:
            line = raw[:-1] if raw.endswith("\n") else raw
            eol = raw[len(line) :]
            if in_key:
                end = P.PEM_END.search(line)
                if end is None:
                    yield f"[{Kind.PRIVATE_KEY}]{eol}"
                    continue
                in_key = False
                line = f"[{Kind.PRIVATE_KEY}]" + line[end.end() :]
            masked = self._mask_text(line, "")
            if "-----" in line and P.PEM_OPEN_WITHOUT_END.search(line):
                in_key = True
            yield masked + eol

    # --- scanning --------------------------------------------------------------

    def _mask_text(self, text: str, context: str) -> str:
        found = self._scan(text, context)
        if not found:
            return text
        out: list[str] = []
        pos = 0
        for f in found:
            out.append(text[pos : f.start])
            out.append(self._placeholder(f, text))
            pos = f.end
        out.append(text[pos:])
        return "".join(out)

    def _scan(self, text: str, context: str) -> list[Finding]:
        if len(text) < _SHORTEST_FINDING:
            return []
        found: list[Finding] = []
        line: _Line | None = None
        shape = P.shape_of(text)
        compiled = P.scanner_for(shape)
        markers = compiled.markers
        for m in compiled.scanner.finditer(shape):
            handler, base = markers[m.lastindex]  # type: ignore[index]
            # Markers hold the _patterns handler constants themselves, so identity
            # tests suffice; commonest first.
            if handler is _NUMBER:
                if line is None:
                    line = _Line(text, shape, context)
                self._numbers(line, m.start(), m.end(), found)
            elif handler is _EMAIL:
                _email(text, m.start(), m.end(), found)
            elif handler is _SECRET_KV or handler is _AUTH_KV:
                start, end = _value_span(m, base)
                if start < end:
                    if text[end - 1].isdigit():
                        # A value that ends in digits and is followed by more
                        # digit groups ("Bearer=5591 4177 7631 7067") takes
                        # them too: no part of a number is left behind.
                        tail = _DIGIT_GROUPS.match(text, end)
                        if tail is not None:
                            end = tail.end()
                    found.append(Finding(Kind.SECRET, start, end))
            elif handler is _PLUS_PHONE:
                digits = _phone_value(text[m.start() : m.end()])
                if len(digits) == 10:
                    found.append(Finding(Kind.PHONE, m.start(), m.end(), digits))
                else:
                    # "+" and digits, but not a Nigerian mobile: classify the
                    # digits as any other number.
                    if line is None:
                        line = _Line(text, shape, context)
                    self._numbers(line, m.start() + 1, m.end(), found)
            elif handler is _JWT:
                found.append(Finding(Kind.JWT, m.start() - P.JWT_ANCHOR_OFFSET, m.end()))
            elif handler is _BEARER or handler is _URL_USERINFO:
                found.append(Finding(Kind.SECRET, m.start(base + 1), m.end(base + 1)))
            elif handler is _PEM:
                found.append(Finding(Kind.PRIVATE_KEY, m.start(), m.end()))
        if len(found) > 1:
            found = _without_overlaps(found)
        return found

    def _numbers(self, line: _Line, start: int, end: int, found: list[Finding]) -> None:
        """Classify a run of digits (maybe grouped by spaces or dashes) into findings."""
        text = line.text
        if end < len(text) and text[end] in _ASCII_ALNUM:
            # The last group runs into a letter: it is part of a word, not of
            # this number. Without a separator the whole run is such a word.
            cut = max(text.rfind(" ", start, end), text.rfind("-", start, end))
            if cut == -1:
                return
            end = cut
        run = text[start:end]
        if run.isdigit():
            kind = self._classify(line, run, start, single=True)
            if kind is not None:
                found.append(Finding(kind, start, end, run))
            return
        # Grouped digits. Usually the whole run is one card or phone: try that first.
        whole = run.replace(" ", "").replace("-", "")
        if 11 <= len(whole) <= 19:
            kind = self._classify(line, whole, start, single=False)
            if kind is not None:
                found.append(Finding(kind, start, end, whole))
                return
        # Otherwise find the longest card or phone starting at each group.
        groups: list[tuple[int, int]] = []
        pos = start
        for part in run.replace("-", " ").split(" "):
            groups.append((pos, pos + len(part)))
            pos += len(part) + 1
        i = 0
        while i < len(groups):
            best: tuple[int, Kind, str] | None = None
            digits = ""
            for j in range(i, len(groups)):
                digits += text[groups[j][0] : groups[j][1]]
                if len(digits) > 19:
                    break
                kind = self._classify(line, digits, groups[i][0], single=i == j)
                if kind is not None:
                    best = (j, kind, digits)
            if best is None:
                i += 1
                continue
            j, kind, digits = best
            found.append(Finding(kind, groups[i][0], groups[j][1], digits))
            i = j + 1

    def _classify(self, line: _Line, digits: str, start: int, *, single: bool) -> Kind | None:
        n = len(digits)
        if n in (11, 13) and ng_mobile_nsn(digits) is not None:
            if n == 11 and single:
                near = C.nearest_id_context(line.before(start, C.ID_CONTEXT_WINDOW))
                if near in ("bvn", "nin"):
                    return Kind.BVN if near == "bvn" else Kind.NIN
            return Kind.PHONE
        if n >= 13:
            return Kind.PAN if is_pan(digits) else None
        if not single:
            return None
        if n == 11:
            near = C.nearest_id_context(line.before(start, C.ID_CONTEXT_WINDOW))
            if near == "bvn":
                return Kind.BVN
            if near == "nin":
                return Kind.NIN
            return Kind.BVN_OR_NIN if self.mask_unlabelled_ids else None
        if n == 10:
            codes = line.codes()
            if codes:
                # With a bank code present the check digit decides: a 10-digit
                # number that fails it is not claimed as a NUBAN.
                return Kind.NUBAN if any(nuban_valid(c, digits) for c in codes) else None
            if C.ACCOUNT_CONTEXT.search(line.before(start, C.ACCOUNT_CONTEXT_WINDOW)):
                return Kind.NUBAN
        return None

    # --- records -----------------------------------------------------------------

    def _mask_value(
        self, value: Any, key: str, siblings: Mapping[Any, Any] | None, depth: int
    ) -> Any:
        kind = type(value)
        if kind is str:
            rule = classify_key(key) if key else None
            if rule is None or rule is Field.BANK_CODE or not value:
                return self._mask_text(value, key)
            return self._mask_field(rule, value, siblings)
        if value is None or kind is bool:
            return value
        rule = classify_key(key) if key else None
        if kind is int and rule is None and -1_000_000_000 < value < 1_000_000_000:
            # Fewer than ten digits and no telling field name: nothing to find.
            return value
        if rule is Field.SECRET:
            return f"[{Kind.SECRET}]"
        if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= _MAX_DEPTH:
            # A self-referencing or absurdly deep record: stop rather than raise
            # inside a logging call, and show nothing of what is below.
            return _TRUNCATED
        if isinstance(value, Mapping):
            return {
                (self._mask_key(k) if isinstance(k, str) else k): self._mask_value(
                    v, k if isinstance(k, str) else "", value, depth + 1
                )
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            items = [self._mask_value(v, key, None, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if rule is not None and rule is not Field.BANK_CODE:
            return self._mask_field(rule, str(value), siblings)
        if kind is float:
            # Amounts and durations; a decimal fraction is never an identifier.
            return value
        text = str(value)
        masked = self._mask_text(text, key)
        return value if masked == text else masked

    def _mask_field(self, rule: Field, value: str, siblings: Mapping[Any, Any] | None) -> str:
        digits = value.translate(_DIGITS_ONLY)
        if rule is Field.ACCOUNT:
            kind = Kind.NUBAN
            code = _sibling_bank_code(siblings)
            if len(digits) != 10 or (code is not None and not nuban_valid(code, digits)):
                kind = Kind.ACCOUNT_NUMBER
            return self._placeholder(Finding(kind, 0, len(value), digits), value)
        if rule is Field.PAN:
            if is_pan(digits):
                return self._placeholder(Finding(Kind.PAN, 0, len(value), digits), value)
            return f"[{Kind.PAN}]"
        kind = _FIELD_KIND[rule]
        norm = value.strip().lower() if kind is Kind.EMAIL else digits
        return self._placeholder(Finding(kind, 0, len(value), norm), value)

    def _mask_key_uncached(self, key: str) -> str:
        return self._mask_text(key, "")

    # --- rendering -------------------------------------------------------------

    def _placeholder(self, f: Finding, text: str) -> str:
        if self._tokeniser is None and f.kind is not Kind.PAN:
            out = _PLAIN[f.kind]
            if f.start and text[f.start - 1] not in "\"'" and _after_json_colon(text, f.start):
                return f'"{out}"'
            return out
        label = f.kind.value
        if f.kind is Kind.PAN and self.reveal_pan_digits and f.value:
            d = f.value
            shown = f"{d[:6]}{'*' * (len(d) - 10)}{d[-4:]}" if len(d) >= 16 else f"***{d[-4:]}"
            label = f"{label}:{shown}"
        if self._tokeniser is not None and f.kind in TOKENISED_KINDS and f.value:
            value = _phone_value(f.value) if f.kind is Kind.PHONE else f.value
            label = f"{label}:hmac:{self._tokeniser.token(value)}"
        out = f"[{label}]"
        # A bare JSON number ("bvn": 22212345678 inside a text line) becomes a
        # string, so masking a JSON line as text keeps it valid JSON.
        if f.start and text[f.start - 1] not in "\"'" and _after_json_colon(text, f.start):
            return f'"{out}"'
        return out


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    """Drop findings inside an earlier one (a secret value extended over a number)."""
    kept = [found[0]]
    for f in found[1:]:
        if f.start >= kept[-1].end:
            kept.append(f)
    return kept


def _after_json_colon(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    if i < 1 or text[i] != ":":
        return False
    i -= 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i >= 0 and text[i] == '"'


def _value_span(m: Any, base: int) -> tuple[int, int]:
    """The span of whichever value group of a key/value detector matched."""
    for g in range(base + 1, base + 6):
        start = m.start(g)
        if start != -1:
            return start, m.end(g)
    return m.end(), m.end()  # unreachable: every value form has a group


def _email(text: str, at: int, end: int, found: list[Finding]) -> None:
    """Walk back from the '@' over the local part; absorb findings inside it."""
    floor = max(0, at - C.EMAIL_LOCAL_MAX)
    local = C.EMAIL_LOCAL_REVERSED.match(text[floor:at][::-1])
    start = at - (local.end() if local else 0)
    while start < at and text[start] == ".":
        start += 1
    # "ada.08031234567@example.ng": the number was masked first, but it is part
    # of the address; one e-mail finding covers it. A finding that only
    # overlaps the local part's start (a secret's value) keeps its span.
    while found and found[-1].end > start:
        if found[-1].start < start:
            start = found[-1].end
            break
        found.pop()
    if start < at:
        found.append(Finding(Kind.EMAIL, start, end, text[start:end].lower()))


def _phone_value(raw: str) -> str:
    """The national significant number, so +234 and 0-prefixed forms tokenise alike."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    nsn = ng_mobile_nsn(digits)
    if nsn is not None:
        return nsn
    if digits.startswith("2340") and len(digits) == 14:
        return digits[4:]
    return digits


def _sibling_bank_code(siblings: Mapping[Any, Any] | None) -> str | None:
    if not siblings:
        return None
    for k, v in siblings.items():
        if isinstance(k, str) and classify_key(k) is Field.BANK_CODE:
            # An int code has lost its leading zeros (58 for "058").
            code = f"{v:03d}" if type(v) is int else str(v).strip()
            if code.isdigit() and len(code) in (3, 5, 6):
                return code
    return None
