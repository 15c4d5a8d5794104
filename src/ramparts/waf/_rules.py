"""Rules and the loader that turns SecLang directives into them.

The loader is strict: a directive, variable, operator, transformation,
action or ``ctl`` it cannot evaluate is a :class:`WafLoadError` naming the
file and line. ``collect_errors=True`` (used by ``ramparts waf check``) keeps
going and returns every problem instead of stopping at the first.

Accepted with no effect, by design (documented in the package docstring):
audit-log directives and actions (the event stream is our audit trail),
PCRE limits, temp/data directories, ``initcol`` / ``expirevar`` (persistent
collections are per-transaction here), ``SecComponentSignature``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ramparts.waf._errors import WafLoadError
from ramparts.waf._macros import Macro
from ramparts.waf._operators import Operator, build_operator
from ramparts.waf._seclang import (
    Directive,
    parse_file,
    parse_text,
    split_actions,
    split_variables,
)
from ramparts.waf._transforms import TRANSFORMS, Transform
from ramparts.waf._variables import Target, parse_target

__all__ = ["Ctl", "EngineConfig", "Rule", "RuleSet", "SetVar", "load_rules"]

SEVERITIES = {
    "EMERGENCY": 0,
    "ALERT": 1,
    "CRITICAL": 2,
    "ERROR": 3,
    "WARNING": 4,
    "NOTICE": 5,
    "INFO": 6,
    "DEBUG": 7,
}
DISRUPTIVE = frozenset({"deny", "block", "pass", "allow", "drop", "redirect"})
# Actions accepted with no effect on matching (see module docstring).
NO_EFFECT_ACTIONS = frozenset(
    {
        "auditlog",
        "noauditlog",
        "ver",
        "rev",
        "maturity",
        "accuracy",
        "initcol",
        "expirevar",
        "sanitisematched",
        "sanitisearg",
        "sanitiserequestheader",
        "sanitiseresponseheader",
        "sanitizematched",
        "sanitizearg",
        "xmlns",
    }
)
NO_EFFECT_DIRECTIVES = frozenset(
    {
        "seccomponentsignature",
        "seccollectiontimeout",
        "secauditengine",
        "secauditlog",
        "secauditlog2",
        "secauditlogparts",
        "secauditlogrelevantstatus",
        "secauditlogtype",
        "secauditlogformat",
        "secauditlogstoragedir",
        "secauditlogdirmode",
        "secauditlogfilemode",
        "secdebuglog",
        "secdebugloglevel",
        "secpcrematchlimit",
        "secpcrematchlimitrecursion",
        "sectmpdir",
        "secdatadir",
        "secuploaddir",
        "secuploadfilemode",
        "secuploadkeepfiles",
        "secuploadfilelimit",
        "sectmpsaveuploadedfiles",
        "secrequestbodyinmemorylimit",
        "secunicodemapfile",
        "secstatusengine",
        "secrequestbodyjsondepthlimit",
        "seccookieformat",
        "secargumentseparator",
        "secresponsebodylimitaction",
    }
)
CTL_NO_EFFECT = frozenset({"auditengine", "auditlogparts", "debugloglevel", "parsexmlintoargs"})
BODY_PROCESSORS = frozenset({"URLENCODED", "MULTIPART", "XML", "JSON"})
DEFERRED = frozenset(
    {
        "secruleremovebyid",
        "secruleremovebytag",
        "secruleremovebymsg",
        "secruleupdatetargetbyid",
        "secruleupdatetargetbytag",
        "secruleupdateactionbyid",
    }
)


@dataclass(slots=True)
class SetVar:
    collection: str
    name: Macro
    op: str  # "=", "+", "-", "!" (delete)
    value: Macro | None


@dataclass(slots=True)
class Ctl:
    name: str  # lower-case
    value: str
    ids: tuple[tuple[int, int], ...] = ()
    targets: tuple[Target, ...] = ()


@dataclass(slots=True, eq=False)
class Rule:
    """One SecRule / SecAction / SecMarker (a marker has ``marker`` set and nothing else)."""

    file: str
    line: int
    id: int = 0
    phase: int = 2
    marker: str | None = None
    targets: list[Target] = field(default_factory=list)
    exclusions: list[Target] = field(default_factory=list)
    operator: Operator | None = None
    transforms: tuple[str, ...] = ()
    transform_fns: tuple[Transform, ...] = ()
    multi_match: bool = False
    capture: bool = False
    chain: Rule | None = None
    chained: bool = False  # this rule is a link after the first
    wants_chain: bool = False
    disruptive: str | None = None
    status: int | None = None
    # What ``block`` means for this rule: its phase's SecDefaultAction.
    block_action: str = "pass"
    block_status: int | None = None
    allow_scope: str = ""
    msg: Macro | None = None
    logdata: Macro | None = None
    tags: tuple[str, ...] = ()
    severity: int | None = None
    log: bool = True
    setvars: list[SetVar] = field(default_factory=list)
    ctls: list[Ctl] = field(default_factory=list)
    setenvs: list[tuple[str, Macro]] = field(default_factory=list)
    skip: int = 0
    skip_after: str | None = None
    # Set by the engine: (transformations, prefilter id) for the skip-by-lookup fast path.
    fast: tuple[tuple[str, ...], int] | None = None
    # The ctl actions of every link, run once the whole chain matched.
    all_ctls: tuple[Ctl, ...] = ()

    def __repr__(self) -> str:
        if self.marker is not None:
            return f"<Marker {self.marker}>"
        return f"<Rule {self.id} phase {self.phase} {self.file}:{self.line}>"

    def links(self) -> Iterable[Rule]:
        r: Rule | None = self
        while r is not None:
            yield r
            r = r.chain


@dataclass(slots=True)
class EngineConfig:
    """The engine-wide directives (SecRuleEngine, body access and limits)."""

    rule_engine: str = "on"  # on | off | detectiononly
    request_body_access: bool = True
    request_body_limit: int = 13_107_200
    request_body_no_files_limit: int = 131_072
    request_body_limit_action: str = "reject"  # reject | processpartial
    response_body_access: bool = False
    response_body_mime_types: tuple[str, ...] = ("text/plain", "text/html")
    response_body_limit: int = 524_288
    arguments_limit: int = 1000


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)  # top-level rules and markers, in order
    config: EngineConfig = field(default_factory=EngineConfig)
    errors: list[WafLoadError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def by_phase(self, phase: int) -> list[Rule]:
        return [r for r in self.rules if r.marker is not None or r.phase == phase]

    def find(self, rule_id: int) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None


def _parse_ids(text: str) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError as exc:
            raise ValueError(f"bad rule id or range {part!r}") from exc
        out.append((a, b))
    if not out:
        raise ValueError("no rule ids given")
    return tuple(out)


def _in_ranges(rule_id: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(a <= rule_id <= b for a, b in ranges)


class _Loader:
    def __init__(self, collect_errors: bool) -> None:
        self.collect = collect_errors
        self.rs = RuleSet()
        self.defaults: dict[int, list[tuple[str, str | None]]] = {}
        self.pending_chain: Rule | None = None  # the last link, waiting for its next
        self.deferred: list[Directive] = []
        self.seen_ids: set[int] = set()

    def fail(self, err: WafLoadError) -> None:
        if not self.collect:
            raise err
        self.rs.errors.append(err)

    # -- directives ---------------------------------------------------------
    def directive(self, d: Directive) -> None:
        name = d.name.lower()
        if name in DEFERRED:
            # As in ModSecurity v3, removals and target/action updates apply to
            # the whole rule set, wherever they are written (before or after).
            self.deferred.append(d)
            return
        handler = getattr(self, f"d_{name}", None)
        if handler is not None:
            handler(d)
            return
        if name in NO_EFFECT_DIRECTIVES:
            return
        raise d.error(f"unsupported directive {d.name}")

    def _args(self, d: Directive, n: int) -> tuple[str, ...]:
        if len(d.args) != n:
            raise d.error(f"{d.name} takes {n} argument(s), got {len(d.args)}")
        return d.args

    def _on_off(self, d: Directive) -> bool:
        (v,) = self._args(d, 1)
        if v.lower() not in ("on", "off"):
            raise d.error(f"{d.name} takes On or Off, got {v!r}")
        return v.lower() == "on"

    def _int(self, d: Directive) -> int:
        (v,) = self._args(d, 1)
        try:
            return int(v)
        except ValueError as exc:
            raise d.error(f"{d.name} takes a number, got {v!r}") from exc

    def d_secruleengine(self, d: Directive) -> None:
        (v,) = self._args(d, 1)
        if v.lower() not in ("on", "off", "detectiononly"):
            raise d.error(f"SecRuleEngine takes On, Off or DetectionOnly, got {v!r}")
        self.rs.config.rule_engine = v.lower()

    def d_secrequestbodyaccess(self, d: Directive) -> None:
        self.rs.config.request_body_access = self._on_off(d)

    def d_secresponsebodyaccess(self, d: Directive) -> None:
        self.rs.config.response_body_access = self._on_off(d)

    def d_secrequestbodylimit(self, d: Directive) -> None:
        self.rs.config.request_body_limit = self._int(d)

    def d_secrequestbodynofileslimit(self, d: Directive) -> None:
        self.rs.config.request_body_no_files_limit = self._int(d)

    def d_secresponsebodylimit(self, d: Directive) -> None:
        self.rs.config.response_body_limit = self._int(d)

    def d_secargumentslimit(self, d: Directive) -> None:
        self.rs.config.arguments_limit = self._int(d)

    def d_secrequestbodylimitaction(self, d: Directive) -> None:
        (v,) = self._args(d, 1)
        if v.lower() not in ("reject", "processpartial"):
            raise d.error(f"SecRequestBodyLimitAction takes Reject or ProcessPartial, got {v!r}")
        self.rs.config.request_body_limit_action = v.lower()

    def d_secresponsebodymimetype(self, d: Directive) -> None:
        self.rs.config.response_body_mime_types = tuple(a.lower() for a in d.args)

    def d_secdefaultaction(self, d: Directive) -> None:
        (text,) = self._args(d, 1)
        actions = split_actions(text, d)
        phase = 2
        for n, v in actions:
            if n.lower() == "phase":
                phase = self._phase(v, d)
        if not any(n.lower() in DISRUPTIVE for n, _ in actions):
            raise d.error("SecDefaultAction needs a disruptive action")
        self.defaults[phase] = [(n, v) for n, v in actions if n.lower() != "phase"]

    def d_secmarker(self, d: Directive) -> None:
        (name,) = self._args(d, 1)
        self._close_chain(d)
        self.rs.rules.append(Rule(file=d.file, line=d.line, marker=name, phase=0))

    def d_secaction(self, d: Directive) -> None:
        (actions,) = self._args(d, 1)
        self._add_rule(d, None, None, actions)

    def d_secrule(self, d: Directive) -> None:
        if len(d.args) not in (2, 3):
            raise d.error(f"SecRule takes 2 or 3 arguments, got {len(d.args)}")
        self._add_rule(d, d.args[0], d.args[1], d.args[2] if len(d.args) == 3 else "")

    def d_secruleremovebyid(self, d: Directive) -> None:
        try:
            ranges = _parse_ids(" ".join(d.args))
        except ValueError as exc:
            raise d.error(str(exc)) from exc
        self.rs.rules = [r for r in self.rs.rules if r.marker or not _in_ranges(r.id, ranges)]

    def d_secruleremovebytag(self, d: Directive) -> None:
        (tag,) = self._args(d, 1)
        self.rs.rules = [r for r in self.rs.rules if r.marker or tag not in r.tags]

    def d_secruleremovebymsg(self, d: Directive) -> None:
        (msg,) = self._args(d, 1)
        self.rs.rules = [r for r in self.rs.rules if r.marker or r.msg is None or r.msg.text != msg]

    def _update_targets(self, d: Directive, rules: list[Rule], text: str) -> None:
        for part in split_variables(text, d):
            try:
                t = parse_target(part)
            except ValueError as exc:
                raise d.error(str(exc)) from exc
            for r in rules:
                if t.negated:
                    r.exclusions.append(t)
                else:
                    r.targets.append(t)

    def d_secruleupdatetargetbyid(self, d: Directive) -> None:
        if len(d.args) != 2:
            raise d.error("SecRuleUpdateTargetById takes an id and targets")
        try:
            ranges = _parse_ids(d.args[0])
        except ValueError as exc:
            raise d.error(str(exc)) from exc
        rules = [r for r in self.rs.rules if r.marker is None and _in_ranges(r.id, ranges)]
        if not rules:
            raise d.error(f"SecRuleUpdateTargetById: no rule {d.args[0]}")
        self._update_targets(d, rules, d.args[1])

    def d_secruleupdatetargetbytag(self, d: Directive) -> None:
        if len(d.args) != 2:
            raise d.error("SecRuleUpdateTargetByTag takes a tag and targets")
        rules = [r for r in self.rs.rules if r.marker is None and d.args[0] in r.tags]
        if not rules:
            raise d.error(f"SecRuleUpdateTargetByTag: no rule tagged {d.args[0]!r}")
        self._update_targets(d, rules, d.args[1])

    def d_secruleupdateactionbyid(self, d: Directive) -> None:
        if len(d.args) != 2:
            raise d.error("SecRuleUpdateActionById takes an id and actions")
        try:
            rule_id = int(d.args[0].split(":")[0])
        except ValueError as exc:
            raise d.error(f"bad rule id {d.args[0]!r}") from exc
        rule = self.rs.find(rule_id)
        if rule is None:
            raise d.error(f"SecRuleUpdateActionById: no rule {rule_id}")
        self._apply_actions(rule, split_actions(d.args[1], d), d, first=True, update=True)

    # -- rules --------------------------------------------------------------
    @staticmethod
    def _phase(v: str | None, d: Directive) -> int:
        names = {"request": 2, "response": 4, "logging": 5}
        if v is None:
            raise d.error("phase needs a value")
        if v.lower() in names:
            return names[v.lower()]
        if v not in ("1", "2", "3", "4", "5"):
            raise d.error(f"bad phase {v!r}")
        return int(v)

    def _close_chain(self, d: Directive) -> None:
        if self.pending_chain is not None:
            last = self.pending_chain
            self.pending_chain = None
            raise d.error(f"rule at {last.file}:{last.line} says chain but no rule follows")

    def _add_rule(
        self, d: Directive, targets: str | None, operator: str | None, actions_text: str
    ) -> None:
        rule = Rule(file=d.file, line=d.line)
        parent = self.pending_chain
        first = parent is None
        self.pending_chain = None
        if targets is not None:
            for part in split_variables(targets, d):
                try:
                    t = parse_target(part)
                except ValueError as exc:
                    raise d.error(str(exc)) from exc
                (rule.exclusions if t.negated else rule.targets).append(t)
            if not rule.targets:
                raise d.error("SecRule has only exclusions, no target")
        if operator is not None:
            rule.operator = build_operator(operator, d)
        actions = split_actions(actions_text, d)
        # Phase first: defaults depend on it.
        if first:
            for n, v in actions:
                if n.lower() == "phase":
                    rule.phase = self._phase(v, d)
            defaults = self.defaults.get(rule.phase, [])
            self._apply_actions(rule, defaults, d, first=True, default=True)
        else:
            assert parent is not None
            rule.phase = parent.phase
            rule.chained = True
        self._apply_actions(rule, actions, d, first=first)
        if first:
            if rule.id == 0:
                raise d.error("rule has no id")
            if rule.id in self.seen_ids:
                raise d.error(f"duplicate rule id {rule.id}")
            self.seen_ids.add(rule.id)
            self.rs.rules.append(rule)
        else:
            assert parent is not None
            parent.chain = rule
            rule.id = parent.id
        if rule.wants_chain:
            self.pending_chain = rule

    def _apply_actions(
        self,
        rule: Rule,
        actions: list[tuple[str, str | None]],
        d: Directive,
        *,
        first: bool,
        default: bool = False,
        update: bool = False,
    ) -> None:
        transforms: list[str] = list(rule.transforms)
        for raw_name, v in actions:
            n = raw_name.lower()
            if n == "id":
                if default:
                    continue
                try:
                    rule.id = int(v or "")
                except ValueError as exc:
                    raise d.error(f"bad id {v!r}") from exc
                if not first:
                    raise d.error("id is only allowed on the first rule of a chain")
            elif n == "phase":
                if not first and not update:
                    raise d.error("phase is only allowed on the first rule of a chain")
            elif n in DISRUPTIVE and default:
                rule.block_action = n
            elif n == "status" and default:
                rule.block_status = int(v or "403")
            elif n in DISRUPTIVE:
                if not first:
                    raise d.error(f"disruptive action {n} inside a chain")
                rule.disruptive = n
                if n == "allow":
                    rule.allow_scope = (v or "").lower()
                    if rule.allow_scope not in ("", "phase", "request"):
                        raise d.error(f"bad allow scope {v!r}")
                elif n == "redirect":
                    rule.status = rule.status or 302
            elif n == "status":
                try:
                    rule.status = int(v or "")
                except ValueError as exc:
                    raise d.error(f"bad status {v!r}") from exc
            elif n == "msg":
                rule.msg = Macro.parse(v or "")
            elif n == "logdata":
                rule.logdata = Macro.parse(v or "")
            elif n == "tag":
                rule.tags = (*rule.tags, v or "")
            elif n == "severity":
                sev = (v or "").upper()
                if sev in SEVERITIES:
                    rule.severity = SEVERITIES[sev]
                elif sev.isdigit() and int(sev) <= 7:
                    rule.severity = int(sev)
                else:
                    raise d.error(f"bad severity {v!r}")
            elif n == "t":
                name = (v or "").lower()
                if name == "none":
                    transforms = []
                    continue
                if name not in TRANSFORMS:
                    raise d.error(f"unsupported transformation t:{v}")
                transforms.append(name)
            elif n == "chain":
                rule.wants_chain = True
            elif n == "capture":
                rule.capture = True
            elif n == "multimatch":
                rule.multi_match = True
            elif n == "log":
                rule.log = True
            elif n == "nolog":
                rule.log = False
            elif n == "setvar":
                rule.setvars.append(self._setvar(v, d))
            elif n == "setenv":
                name, sep, val = (v or "").partition("=")
                if not name:
                    raise d.error("setenv needs name=value")
                rule.setenvs.append((name, Macro.parse(val if sep else "1")))
            elif n == "ctl":
                rule.ctls.append(self._ctl(v, d))
            elif n == "skip":
                try:
                    rule.skip = int(v or "")
                except ValueError as exc:
                    raise d.error(f"bad skip {v!r}") from exc
            elif n == "skipafter":
                if not v:
                    raise d.error("skipAfter needs a marker")
                rule.skip_after = v
            elif n in NO_EFFECT_ACTIONS:
                continue
            else:
                raise d.error(f"unsupported action {raw_name}")
        rule.transforms = tuple(transforms)
        rule.transform_fns = tuple(TRANSFORMS[t] for t in transforms)

    def _setvar(self, v: str | None, d: Directive) -> SetVar:
        if not v:
            raise d.error("setvar needs a value")
        text = v.strip()
        delete = text.startswith("!")
        if delete:
            text = text[1:]
        lhs, sep, rhs = text.partition("=")
        coll, dot, name = lhs.partition(".")
        if not dot or not name:
            raise d.error(f"setvar target must be collection.name, got {lhs!r}")
        coll = coll.upper()
        if coll not in ("TX", "IP", "GLOBAL", "SESSION", "USER", "RESOURCE"):
            raise d.error(f"setvar on unsupported collection {coll}")
        if delete:
            return SetVar(coll, Macro.parse(name), "!", None)
        if not sep:
            return SetVar(coll, Macro.parse(name), "=", Macro.parse("1"))
        op = "="
        if rhs.startswith("+"):
            op, rhs = "+", rhs[1:]
        elif rhs.startswith("-"):
            op, rhs = "-", rhs[1:]
        return SetVar(coll, Macro.parse(name), op, Macro.parse(rhs))

    def _ctl(self, v: str | None, d: Directive) -> Ctl:
        name, sep, value = (v or "").partition("=")
        key = name.strip().lower()
        if not sep:
            raise d.error(f"ctl needs name=value, got {v!r}")
        value = value.strip()
        if key in ("ruleremovebyid",):
            try:
                return Ctl(key, value, ids=_parse_ids(value))
            except ValueError as exc:
                raise d.error(f"ctl:{name}: {exc}") from exc
        if key in ("ruleremovebytag", "ruleremovebymsg"):
            return Ctl(key, value)
        if key in ("ruleremovetargetbyid", "ruleremovetargetbytag", "ruleremovetargetbymsg"):
            what, semi, targets = value.partition(";")
            if not semi:
                raise d.error(f"ctl:{name} needs what;TARGET")
            try:
                parsed = tuple(parse_target(t) for t in split_variables(targets, d))
            except ValueError as exc:
                raise d.error(f"ctl:{name}: {exc}") from exc
            if key == "ruleremovetargetbyid":
                try:
                    return Ctl(key, what, ids=_parse_ids(what), targets=parsed)
                except ValueError as exc:
                    raise d.error(f"ctl:{name}: {exc}") from exc
            return Ctl(key, what, targets=parsed)
        if key == "ruleengine":
            if value.lower() not in ("on", "off", "detectiononly"):
                raise d.error(f"ctl:ruleEngine takes On, Off or DetectionOnly, got {value!r}")
            return Ctl(key, value.lower())
        if key == "requestbodyprocessor":
            if value.upper() not in BODY_PROCESSORS:
                raise d.error(f"unsupported request body processor {value!r}")
            return Ctl(key, value.upper())
        if key in ("requestbodyaccess", "forcerequestbodyvariable", "responsebodyaccess"):
            if value.lower() not in ("on", "off"):
                raise d.error(f"ctl:{name} takes On or Off")
            return Ctl(key, value.lower())
        if key in CTL_NO_EFFECT:
            return Ctl(key, value)
        raise d.error(f"unsupported ctl:{name}")

    def finish(self) -> None:
        for d in self.deferred:
            try:
                getattr(self, f"d_{d.name.lower()}")(d)
            except WafLoadError as err:
                self.fail(err)
        if self.pending_chain is not None:
            last = self.pending_chain
            self.pending_chain = None
            self.fail(WafLoadError(last.file, last.line, "chain with no rule after it"))
        markers = {r.marker for r in self.rs.rules if r.marker is not None}
        for r in self.rs.rules:
            # ModSecurity also accepts a rule id as the skipAfter target.
            if (
                r.skip_after is not None
                and r.skip_after not in markers
                and not (r.skip_after.isdigit() and self.rs.find(int(r.skip_after)))
            ):
                self.fail(WafLoadError(r.file, r.line, f"skipAfter: no marker {r.skip_after!r}"))


def load_rules(
    paths: Iterable[str | Path],
    *,
    preamble: str | None = None,
    collect_errors: bool = False,
) -> RuleSet:
    """Load SecLang files (directories load their ``*.conf`` in name order).

    ``preamble`` is SecLang text loaded first (the engine's own settings).
    """
    loader = _Loader(collect_errors)
    directives: list[Directive] = []
    if preamble:
        directives.extend(parse_text(preamble, "<engine>"))
    for p in paths:
        path = Path(p)
        files = sorted(path.glob("*.conf")) if path.is_dir() else [path]
        for f in files:
            loader.rs.files.append(str(f))
            try:
                directives.extend(parse_file(f))
            except WafLoadError as err:
                loader.fail(err)
    orphan_links = False  # skipping the rest of a chain whose head failed to load
    for d in directives:
        is_rule = d.name.lower() in ("secrule", "secaction")
        chains = is_rule and bool(d.args) and re.search(r"(?:^|[\s,])chain(?:$|[\s,])", d.args[-1])
        if orphan_links and is_rule:
            orphan_links = bool(chains)
            continue
        orphan_links = False
        try:
            loader.directive(d)
        except WafLoadError as err:
            loader.fail(err)
            loader.pending_chain = None
            orphan_links = bool(chains)
    loader.finish()
    return loader.rs
