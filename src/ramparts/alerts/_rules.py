"""Loading Sigma rules: the supported subset, located errors, the rule objects.

A file holds one rule or several YAML documents (``---``). Supported:

* detection rules: named selections (maps = AND, lists = OR, lists of strings =
  keywords), field modifiers (see :mod:`._values`), a ``condition`` string (or a
  list of them, OR-ed), and the legacy ``| count([field]) [by f] > N`` with a
  ``timeframe``;
* correlation rules (Sigma correlation spec v2): ``event_count`` and
  ``value_count`` over named rules, ``group-by``, ``timespan``, a ``condition``
  map of ``gt``/``gte``/``lt``/``lte``/``eq`` (several = AND), ``generate``.

Anything else that is Sigma but not implemented (``temporal`` correlations,
``aliases``, filters, encoding modifiers, ``near``) is refused with file and
line. One custom attribute, ``ramparts:``, sets how alerts from a detection rule
are grouped (``group-by``, default ``[service]``) and de-duplicated (``dedup``).

Departures from the spec, on purpose: ``logsource`` is accepted and ignored
(every event is a Ramparts security event); a correlation's ``group-by`` may be
left out, which counts all matching events as one group (an "overall" spike).
Field names are dotted paths into the event (``detail.caller``, ``derived.edge``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ramparts.alerts._condition import (
    Gate,
    Matcher,
    Node,
    TypeGate,
    all_of,
    any_of,
    compile_condition,
    gate_any,
    parse_aggregation,
    split_aggregation,
)
from ramparts.alerts._errors import RuleError
from ramparts.alerts._values import (
    KNOWN_UNSUPPORTED,
    MISSING,
    SUPPORTED_MODIFIERS,
    as_text,
    lookup,
    value_predicate,
    wildcard_regex,
)

LEVELS: Final = ("informational", "low", "medium", "high", "critical")
CORRELATION_OPS: Final = {
    "gt": lambda n, t: n > t,
    "gte": lambda n, t: n >= t,
    "lt": lambda n, t: n < t,
    "lte": lambda n, t: n <= t,
    "eq": lambda n, t: n == t,
}
# Sigma timespans: a number and a unit; months and years as 30 and 365 days.
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}
_DURATION: Final = re.compile(r"^(\d+)([smhdwMy])$")
_TEXT_KEY: Final = "\x00text"  # where a record caches its keyword-search text
DEFAULT_GROUP_BY: Final = ("service",)
_TOP_REFUSED: Final = {
    "action": "'action' (global/repeat/filter documents) is not supported",
    "filter": "Sigma filter rules are not supported",
}


@dataclass(frozen=True, slots=True)
class Window:
    """A count over a sliding time window, per group: the correlation part of a rule."""

    kind: str  # "event_count" or "value_count"
    group_by: tuple[str, ...]
    timespan: float
    field: str | None  # the field whose distinct values are counted (value_count)
    condition: tuple[tuple[str, int], ...]

    def satisfied(self, n: int) -> bool:
        return all(CORRELATION_OPS[op](n, t) for op, t in self.condition)


@dataclass(frozen=True, slots=True)
class Rule:
    """One loaded rule: a detection (``matcher``) or a correlation (``refs``)."""

    key: str  # name, else id, else file#index: what correlations and alerts call it
    title: str
    level: str
    source: str
    line: int
    description: str = ""
    rule_id: str | None = None
    tags: tuple[str, ...] = ()
    matcher: Matcher | None = field(default=None, repr=False)
    gate: TypeGate | None = None  # event types the matcher can accept (None: any)
    window: Window | None = None
    refs: tuple[str, ...] = ()
    generate: bool = False
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    dedup: float | None = None

    @property
    def is_correlation(self) -> bool:
        return bool(self.refs)


@dataclass(frozen=True)
class RuleSet:
    """Rules with references resolved; built by :func:`load_rules` or :func:`parse_rules`."""

    rules: tuple[Rule, ...]
    # Base rules whose own matches raise no alert: referenced by a correlation
    # without ``generate: true`` (the spec's default).
    quiet: frozenset[str] = frozenset()

    @property
    def detections(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.is_correlation)

    @property
    def correlations(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.is_correlation)

    def __len__(self) -> int:
        return len(self.rules)


def _line(node: Any, key: Any = None) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        return (lc.key(key)[0] if key is not None else lc.line) + 1
    except (KeyError, TypeError, AttributeError):
        return lc.line + 1


class _Doc:
    """One YAML document being turned into a Rule; knows its file for errors."""

    def __init__(self, source: str, node: Any, index: int) -> None:
        self.source = source
        self.node = node
        self.index = index

    def fail(self, message: str, node: Any = None, key: Any = None) -> RuleError:
        return RuleError(self.source, _line(self.node if node is None else node, key), message)

    def string(self, key: str, *, required: bool = False, node: Any = None) -> str | None:
        parent = self.node if node is None else node
        value = parent.get(key)
        if value is None:
            if required:
                raise self.fail(f"'{key}' is required", parent)
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"'{key}' must be a non-empty string", parent, key)
        return value

    def strings(self, key: str, node: Any) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"'{key}' must be a list of strings", node, key)
        return tuple(value)

    def duration(self, key: str, node: Any) -> float:
        value = node.get(key)
        m = _DURATION.match(str(value)) if isinstance(value, str | int) else None
        if m is None or int(m.group(1)) == 0:
            raise self.fail(
                f"'{key}' must be a duration like 30s, 5m, 1h or 1d, got {value!r}", node, key
            )
        return float(int(m.group(1)) * _UNITS[m.group(2)])

    # -- the whole document

    def rule(self) -> Rule:
        node = self.node
        if not isinstance(node, Mapping):
            raise self.fail("a rule must be a YAML mapping")
        for key, why in _TOP_REFUSED.items():
            if key in node:
                raise self.fail(why, node, key)
        title = self.string("title", required=True)
        assert title is not None
        name = self.string("name")
        rule_id = self.string("id")
        level = node.get("level", "medium")
        if level not in LEVELS:
            raise self.fail(
                f"'level' must be one of {', '.join(LEVELS)}, got {level!r}", node, "level"
            )
        description = self.string("description") or ""
        tags = self.strings("tags", node)
        common: dict[str, Any] = {
            "key": name or rule_id or f"{self.source}#{self.index}",
            "title": title,
            "level": level,
            "source": self.source,
            "line": _line(node) or 1,
            "description": description,
            "rule_id": rule_id,
            "tags": tags,
        }
        has_det, has_cor = "detection" in node, "correlation" in node
        if has_det == has_cor:
            raise self.fail("a rule needs exactly one of 'detection' or 'correlation'")
        if has_cor:
            if "ramparts" in node:
                raise self.fail("'ramparts' options apply to detection rules", node, "ramparts")
            return self.correlation(common)
        generate = node.get("generate")
        if generate is not None:
            raise self.fail("'generate' belongs to a correlation rule", node, "generate")
        return self.detection(common)

    # -- detection rules

    def detection(self, common: dict[str, Any]) -> Rule:
        det = self.node["detection"]
        if not isinstance(det, Mapping):
            raise self.fail("'detection' must be a mapping", self.node, "detection")
        if "condition" not in det:
            raise self.fail("'detection' needs a 'condition'", self.node, "detection")
        selections: dict[str, Node] = {}
        for name, body in det.items():
            if name in ("condition", "timeframe"):
                continue
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
                raise self.fail(
                    f"selection name {name!r} must be letters, digits, _ . -", det, name
                )
            selections[name] = self.selection(det, name, body)
        if not selections:
            raise self.fail("'detection' has no selections", self.node, "detection")
        cond = det["condition"]
        conds = cond if isinstance(cond, list) else [cond]
        if not conds or not all(isinstance(c, str) for c in conds):
            raise self.fail("'condition' must be a string or a list of strings", det, "condition")
        nodes: list[Node] = []
        window = None
        for text in conds:
            expr, agg_text = split_aggregation(text)
            try:
                nodes.append(compile_condition(expr, selections))
                if agg_text is not None:
                    if len(conds) > 1:
                        raise ValueError("an aggregation needs a single condition")
                    agg = parse_aggregation(agg_text)
                    window = Window(
                        "value_count" if agg.field else "event_count",
                        agg.group_by,
                        0.0,
                        agg.field,
                        ((agg.op, agg.threshold),),
                    )
            except ValueError as exc:
                raise self.fail(str(exc), det, "condition") from None
        if window is not None:
            if "timeframe" not in det:
                raise self.fail("a count aggregation needs a 'timeframe'", det, "condition")
            window = Window(
                window.kind,
                window.group_by,
                self.duration("timeframe", det),
                window.field,
                window.condition,
            )
        elif "timeframe" in det:
            raise self.fail("'timeframe' only applies to a count aggregation", det, "timeframe")
        matcher = any_of([m for m, _ in nodes])
        gate = gate_any([g for _, g in nodes])
        group_by, dedup = self.ramparts_options(window)
        return Rule(
            matcher=matcher, gate=gate, window=window, group_by=group_by, dedup=dedup, **common
        )

    def ramparts_options(self, window: Window | None) -> tuple[tuple[str, ...], float | None]:
        opts = self.node.get("ramparts")
        group_by = window.group_by if window is not None else DEFAULT_GROUP_BY
        if opts is None:
            return group_by, None
        if not isinstance(opts, Mapping):
            raise self.fail("'ramparts' must be a mapping", self.node, "ramparts")
        for key in opts:
            if key not in ("group-by", "dedup"):
                raise self.fail(
                    f"unknown 'ramparts' option {key!r} (want group-by, dedup)", opts, key
                )
        if "group-by" in opts:
            if window is not None:
                raise self.fail("group-by comes from the aggregation's 'by'", opts, "group-by")
            group_by = self.strings("group-by", opts)
        dedup = self.duration("dedup", opts) if "dedup" in opts else None
        return group_by, dedup

    def selection(self, det: Any, name: str, body: Any) -> Node:
        if isinstance(body, Mapping):
            return self.field_map(body)
        if isinstance(body, list) and body:
            if all(isinstance(item, Mapping) for item in body):
                maps = [self.field_map(item) for item in body]
                return any_of([m for m, _ in maps]), gate_any([g for _, g in maps])
            if all(isinstance(item, str | int) and not isinstance(item, bool) for item in body):
                return _keywords([str(item) for item in body]), None
            raise self.fail(f"selection {name!r} mixes maps and values", det, name)
        raise self.fail(
            f"selection {name!r} must be a map, a list of maps or a list of keywords", det, name
        )

    def field_map(self, body: Any) -> Node:
        if not body:
            raise self.fail("a selection map is empty", body)
        parts: list[Matcher] = []
        gate: Gate = None
        for key, value in body.items():
            if not isinstance(key, str):
                raise self.fail(f"field name {key!r} must be a string", body, key)
            fieldname, *mods = key.split("|")
            if not fieldname:
                raise self.fail(
                    f"{key!r} has no field name (keyword modifiers are not supported)", body, key
                )
            for mod in mods:
                if mod in KNOWN_UNSUPPORTED:
                    raise self.fail(f"modifier '|{mod}' is not supported", body, key)
                if mod not in SUPPORTED_MODIFIERS:
                    raise self.fail(f"unknown modifier '|{mod}' in {key!r}", body, key)
            mod_t = tuple(mods)
            values = list(value) if isinstance(value, list) else [value]
            if not values:
                raise self.fail(f"{key!r} has an empty list of values", body, key)
            try:
                preds = [value_predicate(_plain(v), mod_t) for v in values]
            except ValueError as exc:
                raise self.fail(f"{key!r}: {exc}", body, key) from None
            parts.append(_field_matcher(fieldname, preds, every="all" in mods))
            if fieldname == "type" and gate is None:
                gate = _type_gate(values, mods)
        return all_of(parts), gate

    # -- correlation rules

    def correlation(self, common: dict[str, Any]) -> Rule:
        cor = self.node["correlation"]
        if not isinstance(cor, Mapping):
            raise self.fail("'correlation' must be a mapping", self.node, "correlation")
        kind = cor.get("type")
        if kind in ("temporal", "temporal_ordered"):
            raise self.fail(f"correlation type {kind!r} is not supported", cor, "type")
        if kind not in ("event_count", "value_count"):
            raise self.fail(
                f"correlation 'type' must be event_count or value_count, got {kind!r}",
                cor,
                "type" if "type" in cor else None,
            )
        for key in cor:
            if key == "aliases":
                raise self.fail("correlation 'aliases' are not supported", cor, key)
            if key not in ("type", "rules", "group-by", "timespan", "condition"):
                raise self.fail(f"unknown correlation attribute {key!r}", cor, key)
        refs = self.strings("rules", cor)
        if not refs:
            raise self.fail(
                "correlation 'rules' must name at least one rule", self.node, "correlation"
            )
        group_by = self.strings("group-by", cor)
        if "timespan" not in cor:
            raise self.fail("correlation needs a 'timespan'", self.node, "correlation")
        timespan = self.duration("timespan", cor)
        cond = cor.get("condition")
        if not isinstance(cond, Mapping) or not cond:
            raise self.fail(
                "correlation 'condition' must be a map like {gte: 10}",
                cor,
                "condition" if "condition" in cor else None,
            )
        ops: list[tuple[str, int]] = []
        value_field = None
        for op, n in cond.items():
            if op == "field":
                if not isinstance(n, str) or not n:
                    raise self.fail("condition 'field' must be a field name", cond, op)
                value_field = n
                continue
            if op not in CORRELATION_OPS:
                raise self.fail(
                    f"condition operator {op!r} is not one of gt, gte, lt, lte, eq", cond, op
                )
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise self.fail(f"condition {op!r} needs a non-negative integer", cond, op)
            ops.append((op, n))
        if not ops:
            raise self.fail("correlation 'condition' has no comparison", cond)
        if kind == "value_count" and value_field is None:
            raise self.fail("a value_count condition needs 'field'", cond)
        if kind == "event_count" and value_field is not None:
            raise self.fail("'field' only applies to value_count", cond, "field")
        generate = self.node.get("generate", False)
        if not isinstance(generate, bool):
            raise self.fail("'generate' must be true or false", self.node, "generate")
        window = Window(kind, group_by, timespan, value_field, tuple(ops))
        return Rule(refs=refs, window=window, generate=generate, group_by=group_by, **common)


def _type_gate(values: list[Any], mods: list[str]) -> Gate:
    """The event types a ``type`` field item admits, when it is literal enough to say."""
    if set(mods) - {"startswith"} or not all(isinstance(v, str) for v in values):
        return None
    if any(ch in v for v in values for ch in "*?\\"):
        return None
    lowered = tuple(v.lower() for v in values)
    if "startswith" in mods:
        return TypeGate(frozenset(), lowered)
    return TypeGate(frozenset(lowered))


def _plain(value: Any) -> Any:
    """ruamel scalars (ScalarFloat, ...) as plain Python values."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _field_matcher(name: str, preds: list[Any], *, every: bool) -> Matcher:
    if len(preds) == 1:
        (pred,) = preds
        return lambda r: pred(lookup(r, name))
    if every:
        return lambda r: all(p(lookup(r, name)) for p in preds)
    return lambda r: any(p(v) for v in (lookup(r, name),) for p in preds)


def record_text(record: dict[str, Any]) -> str:
    """The text keywords search: the event's own fields as JSON, computed once per record."""
    text = record.get(_TEXT_KEY)
    if text is None:
        own = {k: v for k, v in record.items() if k not in ("derived", _TEXT_KEY)}
        text = json.dumps(own, default=as_text, ensure_ascii=False)
        record[_TEXT_KEY] = text
    return text


def _keywords(words: list[str]) -> Matcher:
    rxs = [wildcard_regex(w, prefix=True, suffix=True, cased=False) for w in words]
    return lambda r: any(rx.fullmatch(record_text(r)) for rx in rxs)  # type: ignore[arg-type]


def parse_rules(text: str, source: str = "<rules>") -> list[Rule]:
    """The rules in one YAML text (one or more documents); raises RuleError."""
    yaml = YAML(typ="rt")
    try:
        docs = [d for d in yaml.load_all(text) if d is not None]
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(source, line, f"invalid YAML: {problem}") from None
    if not docs:
        raise RuleError(source, None, "no rules in file")
    return [_Doc(source, d, i).rule() for i, d in enumerate(docs)]


def build_ruleset(rules: Iterable[Rule]) -> RuleSet:
    """Check names are unique and correlations name known detection rules."""
    rules = tuple(rules)
    by_ref: dict[str, Rule] = {}
    for r in rules:
        for ref in {r.key, r.rule_id} - {None}:
            assert ref is not None
            if ref in by_ref and by_ref[ref] is not r:
                first = by_ref[ref]
                raise RuleError(
                    r.source,
                    r.line,
                    f"rule {ref!r} is already defined at {first.source}:{first.line}",
                )
            by_ref[ref] = r
    quiet: set[str] = set()
    resolved: list[Rule] = []
    for r in rules:
        if r.is_correlation:
            keys = []
            for ref in r.refs:
                base = by_ref.get(ref)
                if base is None:
                    raise RuleError(r.source, r.line, f"correlation names unknown rule {ref!r}")
                if base.is_correlation:
                    raise RuleError(
                        r.source, r.line, f"correlation of correlation {ref!r} is not supported"
                    )
                keys.append(base.key)
                if not r.generate:
                    quiet.add(base.key)
            r = Rule(**{**_fields(r), "refs": tuple(keys)})  # noqa: PLW2901 - canonical keys
        resolved.append(r)
    return RuleSet(tuple(resolved), frozenset(quiet))


def _fields(rule: Rule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in Rule.__slots__}


def _rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
        if not files:
            raise RuleError(str(path), None, "no .yml or .yaml rule files in directory")
        return files
    if not path.exists():
        raise RuleError(str(path), None, "no such file or directory")
    return [path]


def load_rules(*paths: str | Path) -> RuleSet:
    """Load rule files and directories (``*.yml``, ``*.yaml``, recursively); raises RuleError."""
    if not paths:
        raise RuleError("<rules>", None, "no rule files given")
    rules: list[Rule] = []
    for p in paths:
        for f in _rule_files(Path(p)):
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleError(str(f), None, f"cannot read: {exc}") from None
            rules.extend(parse_rules(text, str(f)))
    return build_ruleset(rules)


def default_rules_dir() -> Path:
    """Where the built-in rules live (package data)."""
    return Path(str(resources.files("ramparts.alerts") / "rules"))


def default_rules() -> RuleSet:
    """The built-in rules shipped in ``ramparts/alerts/rules``."""
    return load_rules(default_rules_dir())


def rule_value(record: Mapping[str, Any], name: str) -> str:
    """A group-by value as a label: a missing or null field reads as the empty string."""
    v = lookup(record, name)
    return "" if v is MISSING or v is None else as_text(v)
