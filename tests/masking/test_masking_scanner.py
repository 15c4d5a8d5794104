"""The combined scanner's internals that correctness depends on: the shape and the gates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ramparts.masking import Kind, Masker
from ramparts.masking import _patterns as P

M = Masker()


class TestShape:
    def test_digit_runs_read_zero_then_ones(self) -> None:
        """Only the first digit of a run is a "0", so only it is a scan candidate."""
        assert P.shape_of("ID 4242-42 x9") == "id 0111-01 x0"

    def test_letters_are_lower_cased(self) -> None:
        """ASCII letters are lower-cased; everything else stays."""
        assert P.shape_of("Bearer AbC é Ω") == "bearer abc é Ω"

    @given(st.text(max_size=200))
    def test_same_length_ascii_or_not(self, text: str) -> None:
        """Position for position: a span in the shape is the same span in the text."""
        shape = P.shape_of(text)
        assert len(shape) == len(text)
        for a, b in zip(text, shape, strict=True):
            if a.isascii() and a.isdigit():
                assert b in "01"
            elif "A" <= a <= "Z":
                assert b == a.lower()
            else:
                assert b == a

    def test_spans_survive_non_ascii_text(self) -> None:
        """Findings point into the original text even around non-ASCII letters."""
        text = "Ọlá Adéwálé bvn 22212345678 ✓ ọ@example.com"
        spans = [(f.kind, text[f.start : f.end]) for f in M.findings(text)]
        assert spans == [(Kind.BVN, "22212345678"), (Kind.EMAIL, "ọ@example.com")]
        assert M.mask_text(text) == "Ọlá Adéwálé bvn [BVN] ✓ [EMAIL]"


class TestGates:
    @pytest.mark.parametrize("gate", P.GATES)
    def test_every_gate_opens_its_detector(self, gate: str) -> None:
        """A gated key word is masked when present (its gate opens the scanner variant)."""
        word = {"session": "session_id", "credential": "credentials"}.get(gate, gate)
        assert M.mask_text(f"{word}=hunter2") == f"{word}=[SECRET]"

    def test_gate_closed_means_word_not_scanned(self) -> None:
        """With no gate word in the text, the variant without those detectors is used."""
        assert P.scanner_for(P.shape_of("status=200 path=/x")) is P.scanner_for("")


def test_secret_value_extended_over_digits_swallows_inner_findings() -> None:
    """A number inside an extended secret value is not masked twice."""
    assert M.mask_text("api_key=x1 22212345678 done") == "api_key=[SECRET] done"
