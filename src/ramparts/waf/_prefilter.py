"""A prefilter so a clean request does not run every regex.

For each ``@rx`` pattern we derive, from its parse tree, a set of literal
strings such that every match must contain at least one of them (``(?i)
union\\s+select`` needs ``union`` or ``select``; the engine picks the more
selective). All those literals go into one Aho-Corasick automaton. Each
distinct transformed value is scanned once per transaction (lower-cased,
ASCII only, as the literals are), which yields the set of patterns worth
running; any other ``@rx`` cannot match and is skipped. ``@pm`` phrase lists
join the same automaton (a phrase is its own required literal), so one scan
answers every ``@pm``/``@pmFromFile`` too. A pattern with no
usable literal (``^\\d+$``) has no entry and always runs, so correctness
never depends on the prefilter: it can only say "maybe" too often.

Hyperscan's prefilter mode was measured first: compiling the CRS patterns
into one database took over a minute, too slow for start-up.
"""

from __future__ import annotations

import re
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as P  # type: ignore[attr-defined]

import ahocorasick

from ramparts.waf._regex import translate_pcre
from ramparts.waf._transforms import lowercase

__all__ = ["Prefilter", "required_literals"]

_EMPTY: frozenset[int] = frozenset()
_MAX_SET = 48
_SMALL_CLASS = 6

# A node's info: (exact, required). ``exact`` is the finite set of strings
# the node matches (or None); ``required`` a set of which every match
# contains one (or None = nothing known).
Info = tuple[frozenset[str] | None, frozenset[str] | None]


def _score(s: frozenset[str] | None) -> tuple[int, int]:
    if not s:
        return (-1, 0)
    return (min(len(x) for x in s), -len(s))


def _best(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None or "" in a:
        return b if b is not None and "" not in b else None
    if b is None or "" in b:
        return a
    return a if _score(a) >= _score(b) else b


def _class_chars(items: list[tuple[object, object]]) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is C.LITERAL:
            chars.add(lowercase(chr(av)))  # type: ignore[arg-type]
        elif op is C.RANGE:
            lo, hi = av  # type: ignore[misc]
            if hi - lo > _SMALL_CLASS:
                return None
            chars.update(lowercase(chr(x)) for x in range(lo, hi + 1))
        else:  # NEGATE, CATEGORY, ...
            return None
        if len(chars) > _SMALL_CLASS:
            return None
    return frozenset(chars)


def _seq(items: list[tuple[object, object]]) -> Info:
    run: frozenset[str] | None = frozenset({""})
    exact_all = True
    best: frozenset[str] | None = None
    for item in items:
        ex, req = _node(item)
        if ex is None:
            exact_all = False
            best = _best(best, run)
            best = _best(best, req)
            run = frozenset({""})
            continue
        assert run is not None
        if len(run) * len(ex) > _MAX_SET:
            exact_all = False
            best = _best(best, run)
            run = ex
            continue
        run = frozenset(a + b for a in run for b in ex)
    best = _best(best, run)
    return (run if exact_all else None, best)


def _node(item: tuple[object, object]) -> Info:
    op, av = item
    if op is C.LITERAL:
        return frozenset({lowercase(chr(av))}), None  # type: ignore[arg-type]
    if op is C.IN:
        chars = _class_chars(av)  # type: ignore[arg-type]
        return chars, None
    if op is C.SUBPATTERN:
        return _seq(list(av[-1]))  # type: ignore[index]
    if op is C.ATOMIC_GROUP:
        return _seq(list(av))  # type: ignore[arg-type]
    if op is C.BRANCH:
        branches = [_seq(list(b)) for b in av[1]]  # type: ignore[index]
        exact: frozenset[str] | None = frozenset()
        req: frozenset[str] | None = frozenset()
        for ex, rq in branches:
            if exact is not None and ex is not None and len(exact) + len(ex) <= _MAX_SET:
                exact = exact | ex
            else:
                exact = None
            one = _best(rq, ex)
            ok = req is not None and one is not None and "" not in one
            req = req | one if ok else None  # type: ignore[operator]
        return exact, req
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        lo, _hi, sub = av  # type: ignore[misc]
        if lo == 0:
            return None, None
        ex, rq = _seq(list(sub))
        if _hi == lo == 1:
            return ex, rq
        return None, _best(rq, ex)
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
        return frozenset({""}), None
    return None, None


def required_literals(pattern: str) -> frozenset[str] | None:
    """Lower-case literals one of which every match of ``pattern`` contains, or None."""
    try:
        tree = P.parse(translate_pcre(pattern), re.ASCII)
    except (re.error, ValueError, RecursionError):
        return None
    ex, req = _seq(list(tree))
    best = _best(req, ex)
    if best is None or not best or "" in best:
        return None
    return best


class Prefilter:
    """Maps a value to the ids of the patterns that may match it."""

    def __init__(self, literal_sets: list[frozenset[str] | None]) -> None:
        """``literal_sets[i]``: literals one of which a match of operator ``i`` contains."""
        self.covered: set[int] = set()
        by_literal: dict[str, list[int]] = {}
        for pid, lits in enumerate(literal_sets):
            if not lits or "" in lits:
                continue
            self.covered.add(pid)
            for lit in lits:
                by_literal.setdefault(lit, []).append(pid)
        self.automaton: ahocorasick.Automaton | None = None
        if by_literal:
            auto = ahocorasick.Automaton()
            for lit, ids in by_literal.items():
                auto.add_word(lit, tuple(ids))
            auto.make_automaton()
            self.automaton = auto

    @property
    def enabled(self) -> bool:
        return self.automaton is not None

    def scan(self, value: str) -> frozenset[int]:
        auto = self.automaton
        if auto is None:
            return _EMPTY
        hits: set[int] = set()
        for _end, ids in auto.iter(lowercase(value)):
            hits.update(ids)
        return frozenset(hits) if hits else _EMPTY
