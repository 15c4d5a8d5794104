"""SecLang operators (``@rx``, ``@pm``, ``@eq`` ...), each built once at load.

An operator is compiled from its argument when the rule is loaded (regexes,
Aho-Corasick automata, IP networks), so the per-request work is one call.
Arguments that contain a macro (``%{tx.allowed_methods}``) are expanded per
transaction, as ModSecurity does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ahocorasick
import libinjection
import regex

from ramparts.waf._macros import Macro
from ramparts.waf._regex import RX_SHORT, RX_TIMEOUT, compile_pcre, compile_rx
from ramparts.waf._transforms import lowercase

if TYPE_CHECKING:
    from ramparts.waf._seclang import Directive
    from ramparts.waf._transaction import Transaction

__all__ = ["OPERATORS", "Operator", "build_operator"]


class Operator:
    """Base: ``evaluate`` returns True on a match (before negation)."""

    name = ""
    negated = False
    # Set by the engine when the hyperscan prefilter covers this operator.
    prefilter_id: int | None = None

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        raise NotImplementedError


class Rx(Operator):
    name = "rx"

    def __init__(self, arg: str, where: Directive) -> None:
        self.source = arg
        self.macro = Macro.parse(arg) if "%{" in arg else None
        self.pattern: re.Pattern[str] | None = None
        self._bounded: regex.Pattern[str] | None = None
        if self.macro is None:
            try:
                self.pattern = compile_pcre(arg)
                self._bounded = compile_rx(arg)
            except (regex.error, re.error, ValueError) as exc:
                raise where.error(f"@rx pattern does not compile: {exc}") from exc

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        pid = self.prefilter_id
        if pid is not None and not tx.prefilter_may_match(value, pid):
            return False
        pattern, bounded = self.pattern, self._bounded
        if pattern is None or bounded is None:
            assert self.macro is not None
            try:
                source = self.macro.expand(tx)
                pattern, bounded = compile_pcre(source), compile_rx(source)
            except (regex.error, re.error, ValueError):
                tx.flag_limit("MSC_PCRE_ERROR")  # a bad expanded pattern must not pass silently
                return False
        if len(value) <= RX_SHORT:
            m = pattern.search(value)  # short: even a quadratic pattern is quick; `re` is faster
        else:
            try:
                m = bounded.search(value, timeout=RX_TIMEOUT)
            except TimeoutError:
                tx.flag_limit("MSC_PCRE_LIMITS_EXCEEDED")
                return False
        if m is None:
            return False
        if capture:
            tx.set_captures([m.group(0), *(g or "" for g in m.groups()[:9])])
        return True


class Pm(Operator):
    name = "pm"

    def __init__(self, phrases: list[str], where: Directive) -> None:
        phrases = [lowercase(p) for p in phrases if p]
        self.phrases = frozenset(phrases)
        if not phrases:
            raise where.error(f"@{self.name} has no phrases")
        self.automaton = ahocorasick.Automaton()
        for p in phrases:
            self.automaton.add_word(p, p)
        self.automaton.make_automaton()

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        pid = self.prefilter_id
        if pid is not None and not tx.prefilter_may_match(value, pid):
            return False
        for _end, phrase in self.automaton.iter(lowercase(value)):
            if capture:
                tx.set_captures([phrase])
            return True
        return False


def _pm(arg: str, where: Directive) -> Operator:
    return Pm(arg.split(), where)


def _phrases_from_files(arg: str, where: Directive) -> list[str]:
    phrases: list[str] = []
    for name in arg.split():
        if name.startswith(("http://", "https://")):
            raise where.error("@pmFromFile from a URL is not supported")
        path = Path(name) if Path(name).is_absolute() else where.base_dir / name
        try:
            lines = path.read_text(encoding="latin-1").splitlines()
        except OSError as exc:
            raise where.error(f"cannot read data file {name!r}: {exc.strerror}") from exc
        for line in lines:
            s = line.strip()
            if s and not s.startswith("#"):
                phrases.append(s)
    return phrases


def _pm_from_file(arg: str, where: Directive) -> Operator:
    op = Pm(_phrases_from_files(arg, where), where)
    op.name = "pmFromFile"
    return op


class _MacroArg(Operator):
    """An operator whose argument may contain macros, expanded per call."""

    def __init__(self, arg: str, where: Directive) -> None:
        self.macro = Macro.parse(arg)
        self.static = None if self.macro.dynamic else self.macro.expand(None)

    def arg(self, tx: Transaction) -> str:
        return self.static if self.static is not None else self.macro.expand(tx)


def _string_op(name: str, test: Callable[[str, str], bool]) -> type[_MacroArg]:
    class StringOp(_MacroArg):
        def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
            arg = self.arg(tx)
            ok = test(value, arg)
            if ok and capture:
                tx.set_captures([arg])
            return ok

    StringOp.name = name
    StringOp.__name__ = f"Op_{name}"
    return StringOp


def _within(value: str, arg: str) -> bool:
    return value in arg


def _contains_word(value: str, arg: str) -> bool:
    if not arg:
        return True
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(arg) + r"(?![A-Za-z0-9_])", value) is not None


_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def _to_int(s: str) -> int:
    """C ``atoi``: the leading integer, 0 when there is none."""
    if s.isdigit():
        return int(s)
    m = _LEADING_INT.match(s)
    return int(m.group(1)) if m else 0


def _num_op(name: str, test: Callable[[int, int], bool]) -> type[_MacroArg]:
    class NumOp(_MacroArg):
        def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
            return test(_to_int(value), _to_int(self.arg(tx)))

    NumOp.name = name
    NumOp.__name__ = f"Op_{name}"
    return NumOp


class IpMatch(Operator):
    name = "ipMatch"

    def __init__(self, arg: str, where: Directive) -> None:
        self.nets = []
        for item in re.split(r"[,\s]+", arg.strip()):
            if not item:
                continue
            try:
                self.nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise where.error(f"@ipMatch: bad address {item!r}") from exc

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.nets)


def _ip_match_from_file(arg: str, where: Directive) -> Operator:
    op = IpMatch(" ".join(_phrases_from_files(arg, where)), where)
    op.name = "ipMatchFromFile"
    return op


class ValidateByteRange(Operator):
    name = "validateByteRange"

    def __init__(self, arg: str, where: Directive) -> None:
        allowed = [False] * 256
        for part in arg.replace(" ", "").split(","):
            if not part:
                continue
            try:
                lo, _, hi = part.partition("-")
                a, b = int(lo), int(hi or lo)
            except ValueError as exc:
                raise where.error(f"@validateByteRange: bad range {part!r}") from exc
            if not (0 <= a <= b <= 255):
                raise where.error(f"@validateByteRange: range {part!r} outside 0-255")
            for x in range(a, b + 1):
                allowed[x] = True
        bad = "".join(re.escape(chr(x)) for x in range(256) if not allowed[x])
        self.bad = re.compile(f"[{bad}]") if bad else None

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        return self.bad is not None and self.bad.search(value) is not None


_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class ValidateUrlEncoding(Operator):
    name = "validateUrlEncoding"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        return "%" in value and _BAD_PCT.search(value) is not None


class ValidateUtf8Encoding(Operator):
    name = "validateUtf8Encoding"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        if value.isascii():
            return False
        try:
            value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False


def _libinjection_text(value: str) -> str:
    # The binding encodes str as UTF-8; hand it text whose UTF-8 is the wire bytes.
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return value


class DetectSQLi(Operator):
    name = "detectSQLi"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        if not value:
            return False
        res = libinjection.is_sql_injection(_libinjection_text(value))
        if res["is_sqli"]:
            if capture:
                tx.set_captures([str(res.get("fingerprint", ""))])
            return True
        return False


class DetectXSS(Operator):
    name = "detectXSS"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        if not value:
            return False
        return bool(libinjection.is_xss(_libinjection_text(value))["is_xss"])


class UnconditionalMatch(Operator):
    name = "unconditionalMatch"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        if capture:
            tx.set_captures([value])
        return True


class NoMatch(Operator):
    name = "noMatch"

    def __init__(self, arg: str, where: Directive) -> None:
        pass

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        return False


class StrMatch(Operator):
    name = "strmatch"

    def __init__(self, arg: str, where: Directive) -> None:
        self.needle = arg

    def evaluate(self, tx: Transaction, value: str, capture: bool) -> bool:
        return self.needle in value


Factory = Callable[[str, "Directive"], Operator]

OPERATORS: dict[str, Any] = {
    "rx": Rx,
    "pm": _pm,
    "pmf": _pm_from_file,
    "pmfromfile": _pm_from_file,
    "streq": _string_op("streq", lambda v, a: v == a),
    "contains": _string_op("contains", lambda v, a: a in v),
    "containsword": _string_op("containsWord", _contains_word),
    "beginswith": _string_op("beginsWith", lambda v, a: v.startswith(a)),
    "endswith": _string_op("endsWith", lambda v, a: v.endswith(a)),
    "within": _string_op("within", _within),
    "strmatch": StrMatch,
    "eq": _num_op("eq", lambda v, a: v == a),
    "ge": _num_op("ge", lambda v, a: v >= a),
    "gt": _num_op("gt", lambda v, a: v > a),
    "le": _num_op("le", lambda v, a: v <= a),
    "lt": _num_op("lt", lambda v, a: v < a),
    "ipmatch": IpMatch,
    "ipmatchf": _ip_match_from_file,
    "ipmatchfromfile": _ip_match_from_file,
    "validatebyterange": ValidateByteRange,
    "validateurlencoding": ValidateUrlEncoding,
    "validateutf8encoding": ValidateUtf8Encoding,
    "detectsqli": DetectSQLi,
    "detectxss": DetectXSS,
    "unconditionalmatch": UnconditionalMatch,
    "nomatch": NoMatch,
}


def build_operator(text: str, where: Directive) -> Operator:
    """Parse ``"!@rx foo"`` / ``"foo"`` (a bare pattern means ``@rx``)."""
    negated = False
    s = text
    if s.startswith("!"):
        negated = True
        s = s[1:]
    if s.startswith("@"):
        name, _, arg = s[1:].partition(" ")
        arg = arg.lstrip(" ")
    else:
        name, arg = "rx", s
    factory = OPERATORS.get(name.lower())
    if factory is None:
        raise where.error(f"unsupported operator @{name}")
    op = factory(arg, where)
    op.negated = negated
    return op
