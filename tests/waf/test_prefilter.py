"""The literal prefilter may say "maybe" too often, never "no" for a value that matches."""

from __future__ import annotations

import json
import re
from itertools import islice
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ramparts.waf import WafEngine
from ramparts.waf._operators import Rx
from ramparts.waf._prefilter import Prefilter, required_literals
from ramparts.waf._regex import compile_pcre
from ramparts.waf._transforms import TRANSFORMS


def test_required_literals_examples() -> None:
    assert required_literals(r"(?i)union\s+select") in ({"union"}, {"select"})
    assert required_literals(r"abc|de") == {"abc", "de"}
    assert required_literals(r"[ab]cd") == {"acd", "bcd"}
    assert required_literals(r"^\d+$") is None
    assert required_literals(r"a?b*") is None
    assert required_literals(r"(?:x|\w)yz") == {"yz"}


def _crs_values(crs_dir: Path, limit: int) -> list[str]:
    decode = TRANSFORMS["urldecodeuni"]
    out: list[str] = []
    with (crs_dir / "crs_regression_tests.jsonl").open() as fh:
        for line in islice(fh, 0, None, 12):
            inp = json.loads(line)["stages"][0]["input"]
            for raw in (inp.get("uri") or "", str(inp.get("data") or "")):
                if raw:
                    out.append(decode(raw))
                    out.append(decode(decode(raw)).lower())
            if len(out) >= limit:
                break
    return out


def test_prefilter_never_hides_a_crs_match(crs_engine: WafEngine, crs_dir: Path) -> None:
    ops = [
        link.operator
        for rule in crs_engine.ruleset.rules
        for link in rule.links()
        if isinstance(link.operator, Rx) and link.operator.prefilter_id is not None
    ]
    assert len(ops) > 250
    pf = crs_engine.prefilter
    checked = 0
    for value in _crs_values(crs_dir, 160):
        hits = pf.scan(value)
        for op in ops:
            if op.prefilter_id not in hits:
                assert op.pattern is not None
                assert op.pattern.search(value) is None, (op.source[:80], value[:80])
                checked += 1
    assert checked > 10_000


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["ab", "c", "(?:x|yz)", "[pq]", "\\d", "k+", "m?", "(?i)"]),
        min_size=1,
        max_size=5,
    ),
    st.text(alphabet="abcxyzpqkm1 ABC", max_size=12),
)
def test_prefilter_is_sound_on_generated_patterns(parts: list[str], text: str) -> None:
    pattern = "".join(p for p in parts if p != "(?i)")
    if "(?i)" in parts:
        pattern = "(?i)" + pattern
    try:
        rx = compile_pcre(pattern)
    except re.error:
        return
    pf = Prefilter([required_literals(pattern)])
    if 0 in pf.covered and rx.search(text):
        assert 0 in pf.scan(text)
