"""The Sigma subset: what loads and matches, and what is refused with file and line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.alerts._helpers import defaults, event

from ramparts.alerts import AlertEngine, RuleError, parse_rules
from ramparts.alerts._enrich import Enricher
from ramparts.alerts._rules import build_ruleset


def matcher(detection: str):
    text = "title: t\ndetection:\n" + textwrap.indent(textwrap.dedent(detection), "    ")
    (rule,) = parse_rules(text, "t.yml")
    assert rule.matcher is not None
    return rule.matcher


REC: dict[str, Any] = {
    "type": "jwt.rejected",
    "service": "gateway",
    "peer": "10.1.2.3",
    "outcome": "deny",
    "reason": "Token Expired",
    "detail": {"subject": "ada", "score": 7, "ids": ["942100", "941110"], "path": "C:\\x*y"},
}

# (detection body, expected match against REC)
CASES = [
    ("s:\n  type: jwt.rejected\ncondition: s", True),
    ("s:\n  type: JWT.REJECTED\ncondition: s", True),  # plain strings are case-insensitive
    ("s:\n  type|cased: JWT.REJECTED\ncondition: s", False),
    ("s:\n  type: jwt.*\ncondition: s", True),
    ("s:\n  type: jwt.?ejected\ncondition: s", True),
    ("s:\n  type: jwt\ncondition: s", False),  # whole-field match without wildcards
    ("s:\n  reason|contains: expired\ncondition: s", True),
    ("s:\n  reason|startswith: token\ncondition: s", True),
    ("s:\n  reason|endswith: token\ncondition: s", False),
    ("s:\n  reason|contains|all: [token, expired]\ncondition: s", True),
    ("s:\n  reason|contains|all: [token, revoked]\ncondition: s", False),
    ("s:\n  reason|contains: [revoked, expired]\ncondition: s", True),  # list = OR
    ("s:\n  type: jwt.rejected\n  service: ledger\ncondition: s", False),  # map = AND
    ("s:\n  - service: ledger\n  - service: gateway\ncondition: s", True),  # list of maps = OR
    ("s:\n  reason|re: '^Token'\ncondition: s", True),
    ("s:\n  reason|re: '^token'\ncondition: s", False),  # re is case-sensitive
    ("s:\n  reason|re|i: '^token'\ncondition: s", True),
    ("s:\n  peer|cidr: 10.0.0.0/8\ncondition: s", True),
    ("s:\n  peer|cidr: [192.168.0.0/16, 172.16.0.0/12]\ncondition: s", False),
    ("s:\n  peer|cidr|all: [10.0.0.0/8, 10.1.0.0/16]\ncondition: s", True),
    ("s:\n  peer|cidr|all: [10.0.0.0/8, 10.9.0.0/16]\ncondition: s", False),
    ("s:\n  reason|re|all: ['^Token', 'Expired$']\ncondition: s", True),
    ("s:\n  detail.score|gte: 7\ncondition: s", True),
    ("s:\n  detail.score|gt: 7\ncondition: s", False),
    ("s:\n  detail.score: 7\ncondition: s", True),
    ("s:\n  detail.ids: '942100'\ncondition: s", True),  # a list field matches any element
    ("s:\n  detail.missing: null\ncondition: s", True),
    ("s:\n  detail.subject: null\ncondition: s", False),
    ("s:\n  detail.subject: ''\ncondition: s", False),
    ("s:\n  detail.missing: ''\ncondition: s", False),
    ("s:\n  detail.subject|exists: true\ncondition: s", True),
    ("s:\n  detail.missing|exists: true\ncondition: s", False),
    ("s:\n  detail.path: 'C:\\\\x\\*y'\ncondition: s", True),  # escaped backslash and star
    ("s:\n  detail.path: 'C:\\\\x\\*z'\ncondition: s", False),
    ("k:\n  - '*expired*'\n  - nothing\ncondition: k", True),  # keywords search all text
    ("k:\n  - nothing\ncondition: k", False),
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: a or b", True),
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: a and b", False),
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: not a and b", True),
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: not (a or b)", False),
    # not binds tighter than and, and tighter than or: (not a) or (b and a)
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: not a or b and a", True),
    ("sel_1:\n  type: x\nsel_2:\n  service: gateway\ncondition: 1 of sel_*", True),
    ("sel_1:\n  type: x\nsel_2:\n  service: gateway\ncondition: all of sel_*", False),
    ("a:\n  type: jwt.rejected\nb:\n  service: gateway\ncondition: all of them", True),
    # 'them' leaves out identifiers that start with an underscore
    ("a:\n  type: jwt.rejected\n_b:\n  service: ledger\ncondition: all of them", True),
    ("a:\n  type: x\n_b:\n  service: gateway\ncondition: 1 of them", False),
    ("a:\n  type: x\nb:\n  service: gateway\ncondition: [a, b]", True),  # list = OR
]


@pytest.mark.parametrize(("body", "want"), CASES)
def test_match_table(body: str, want: bool) -> None:
    assert matcher(body)(dict(REC)) is want


# (rule text, line of the error, fragment of the message)
INVALID = [
    ("title: t\ndetection:\n  s:\n    type|base64: x\n  condition: s\n", 4, "not supported"),
    ("title: t\ndetection:\n  s:\n    type|bogus: x\n  condition: s\n", 4, "unknown modifier"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s and\n", 5, "ends too early"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s or t\n", 5, "'t'"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: 1 of x*\n", 5, "matches no selection"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: 2 of s\n", 5, "'1 of' or 'all of'"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s | near y\n", 5, "near"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: any of s\n", 5, "'any'"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s | max(x) > 1\n", 5, "max"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s | count() > 1\n", 5, "timeframe"),
    ("title: t\ndetection:\n  s:\n    type: x\n  condition: s\n", None, None),  # valid control
    ("title: t\ndetection:\n  s:\n    x|cidr: 10.0.0.300/8\n  condition: s\n", 4, "cidr"),
    ("title: t\ndetection:\n  s:\n    x|re: '('\n  condition: s\n", 4, "regular expression"),
    ("title: t\ndetection:\n  s:\n    x|gt: many\n  condition: s\n", 4, "needs a number"),
    ("title: t\ndetection:\n  s: []\n  condition: s\n", 3, "must be a map"),
    ("title: t\ndetection:\n  s:\n    type: x\n", 2, "needs a 'condition'"),
    ("detection:\n  s:\n    type: x\n  condition: s\n", 1, "'title' is required"),
    ("title: t\nlevel: severe\ndetection:\n  s: {a: b}\n  condition: s\n", 2, "level"),
    ("title: t\ndetection:\n  s: {a: b}\n  condition: s\n  timeframe: 5m\n", 5, "only applies"),
    ("title: t\ncorrelation:\n  type: temporal\n  rules: [a]\n", 3, "temporal"),
    ("title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
     "  condition: {gte: 1}\n  aliases: {}\n", 7, "aliases"),
    ("title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5x\n"
     "  condition: {gte: 1}\n", 5, "duration"),
    ("title: t\ncorrelation:\n  type: value_count\n  rules: [a]\n  timespan: 5m\n"
     "  condition: {gte: 1}\n", 6, "needs 'field'"),
    ("title: t\ncorrelation:\n  type: event_count\n  rules: [a]\n  timespan: 5m\n"
     "  condition: {above: 1}\n", 6, "above"),
    ("title: t\naction: global\n", 2, "not supported"),
    ("title: t\ndetection: [\n", 3, "invalid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "fragment"), INVALID)
def test_invalid_rules_are_located(text: str, line: int | None, fragment: str | None) -> None:
    if fragment is None:
        assert parse_rules(text, "rule.yml")
        return
    with pytest.raises(RuleError) as info:
        parse_rules(text, "rule.yml")
    assert info.value.source == "rule.yml"
    assert info.value.line == line, str(info.value)
    assert fragment in info.value.message
    assert str(info.value).startswith(f"rule.yml:{line}: ")


def test_second_document_errors_carry_its_line() -> None:
    """Lines count from the top of the file across '---' documents."""
    text = (
        "title: a\ndetection:\n  s: {a: b}\n  condition: s\n---\n"
        "title: b\ndetection:\n  s: {a|wide: b}\n  condition: s\n"
    )
    with pytest.raises(RuleError) as info:
        parse_rules(text, "two.yml")
    assert info.value.line == 8


class TestCorrelationReferences:
    BASE = "title: base\nname: base\ndetection:\n  s: {type: x}\n  condition: s\n"

    def test_unknown_reference_is_refused(self) -> None:
        cor = (
            "---\ntitle: c\ncorrelation:\n  type: event_count\n  rules: [nope]\n"
            "  timespan: 1m\n  condition: {gte: 2}\n"
        )
        with pytest.raises(RuleError, match="unknown rule 'nope'"):
            build_ruleset(parse_rules(self.BASE + cor, "c.yml"))

    def test_reference_by_id_and_generate(self) -> None:
        """A base rule may be named by id; generate: true keeps its own alerts."""
        base = (
            "title: base\nid: 5638f7c0-ac70-491d-8465-2a65075e0d86\n"
            "detection:\n  s: {type: x}\n  condition: s\n"
        )
        cor = (
            "---\ntitle: c\ncorrelation:\n  type: event_count\n"
            "  rules: [5638f7c0-ac70-491d-8465-2a65075e0d86]\n  timespan: 1m\n"
            "  condition: {gte: 2, lte: 3}\ngenerate: true\n"
        )
        rs = build_ruleset(parse_rules(base + cor, "c.yml"))
        assert rs.quiet == frozenset()
        (c,) = rs.correlations
        assert c.window is not None and c.window.condition == (("gte", 2), ("lte", 3))
        assert [c.window.satisfied(n) for n in (1, 2, 3, 4)] == [False, True, True, False]

    def test_duplicate_names_are_refused(self) -> None:
        with pytest.raises(RuleError, match=r"already defined at c\.yml:1"):
            build_ruleset(parse_rules(self.BASE + "---\n" + self.BASE, "c.yml"))


def gate(detection: str):
    text = "title: t\ndetection:\n" + textwrap.indent(textwrap.dedent(detection), "    ")
    (rule,) = parse_rules(text, "t.yml")
    return rule.gate


class TestTypeGate:
    """The type gate lets the engine skip rules; it must never exclude a possible match."""

    def test_literal_types_gate_exactly(self) -> None:
        g = gate("s:\n  type: [JWT.Rejected, authz.denied]\ncondition: s")
        assert g is not None
        assert g.admits("jwt.rejected") and g.admits("authz.denied")
        assert not g.admits("jwt.accepted")

    def test_startswith_gates_by_prefix(self) -> None:
        g = gate("s:\n  type|startswith: audit.\ncondition: s")
        assert g is not None and g.admits("audit.rollback") and not g.admits("auditx")

    @pytest.mark.parametrize(
        "body",
        [
            "s:\n  type: a.b\ncondition: not s",
            "s:\n  type: a.b\nk:\n  - word\ncondition: s or k",
            "s:\n  - type: a.b\n  - service: x\ncondition: s",
            "s:\n  type: a.*\ncondition: s",
            "s:\n  type|contains: a\ncondition: s",
        ],
    )
    def test_anything_looser_is_ungated(self, body: str) -> None:
        assert gate(body) is None

    def test_and_takes_the_constrained_side(self) -> None:
        g = gate("s:\n  type: a.b\nt:\n  service: x\ncondition: t and s")
        assert g is not None and g.admits("a.b") and not g.admits("c.d")

    def test_negated_type_rule_still_fires(self) -> None:
        """'not s' matches every other type: the engine must evaluate it for them."""
        rules = build_ruleset(
            parse_rules("title: t\nname: r\ndetection:\n  s: {type: a.b}\n  condition: not s\n")
        )
        alerts = AlertEngine(rules, silence_after=None).replay([event("c.d"), event("a.b")])
        assert [a.event["type"] for a in alerts] == ["c.d"]


TYPES = [
    "egress.blocked", "authz.denied", "authz.allowed", "jwt.rejected", "mtls.rejected",
    "ratelimit.exceeded", "waf.blocked", "secrets.request", "audit.rollback", "witness.refused",
    "shipper.entries_dropped", "alerts.source_silent", "x.y", "AUTHZ.Denied",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    type_=st.sampled_from(TYPES),
    outcome=st.sampled_from(["allow", "deny"]),
    detail=st.dictionaries(
        st.sampled_from(["destination", "subject", "path", "caller", "note"]),
        st.sampled_from(
            ["169.254.169.254:80", "ada", "sys/leases/renew", "x", "4242 4242 4242 4242"]
        ),
    ),
)
def test_gate_never_hides_a_match(type_: str, outcome: str, detail: dict[str, str]) -> None:
    """For every default rule: matcher(record) implies gate.admits(type)."""

    rec = Enricher().record(event(type_, outcome=outcome, **detail))
    for rule in defaults().detections:
        assert rule.matcher is not None
        if rule.gate is not None and rule.matcher(rec):
            assert rule.gate.admits(type_), rule.key
