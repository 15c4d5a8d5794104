"""NUBAN generation: the CBN corpus, and agreement with the masker's independent checker.

The bank generates account numbers (refbank.nuban) and the masker detects them
(ramparts.masking); they are two implementations of one published algorithm,
so each checks the other, and both check the public cases.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ramparts.masking._checks import nuban_valid
from refbank.nuban import check_digit, is_valid, make_nuban


def test_cbn_corpus(conformance_dir: Path) -> None:
    cases = json.loads((conformance_dir / "pii" / "pii_corpus.json").read_text())["nuban"]["cases"]
    wrong = []
    for case in cases:
        made = make_nuban(case["bank_code"], int(case["serial"])) if "serial" in case else None
        if case["valid"] and made not in (None, case["nuban"]):
            wrong.append(case)
        if is_valid(case["bank_code"], case["nuban"]) != case["valid"]:
            wrong.append(case)
    assert wrong == []
    assert len(cases) == 55


@given(
    bank=st.sampled_from(["011", "044", "058", "000999", "50211", "090267"]),
    serial=st.integers(0, 10**9 - 1),
)
def test_generated_numbers_pass_the_maskers_checker(bank: str, serial: int) -> None:
    nuban = make_nuban(bank, serial)
    assert nuban_valid(bank, nuban)
    wrong = nuban[:9] + str((check_digit(bank, nuban[:9]) + 1) % 10)
    assert not nuban_valid(bank, wrong)
