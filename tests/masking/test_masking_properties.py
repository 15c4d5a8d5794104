"""Properties: generated valid identifiers embedded in random text never survive masking."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.masking.masking_gen import (
    BANK_CODES,
    CARD_SHAPES,
    luhn_break,
    make_bvn,
    make_nuban,
    make_pan,
    make_phone,
)

from ramparts.masking import Masker

M = Masker()
KEYED = Masker(hmac_key=b"property-test-key-0123456789")

# Noise around the planted value: any text, then a delimiter, so the value is a
# separate token (a digit run glued to letters is deliberately not scanned).
noise = st.text(max_size=40)
delimiter = st.sampled_from([" ", "=", ": ", ",", '"', "(", "\n", "\t", "[", "/", "|", "&"])
seeds = st.integers(min_value=0, max_value=2**32 - 1)
# Without digits, so no neighbouring number can join the planted one.
digitless = st.text(alphabet=st.characters(exclude_categories=("Nd",)), max_size=40)


def card_forms(pan: str, rng: random.Random) -> str:
    """The PAN bare, or grouped in fours with spaces or dashes."""
    style = rng.choice(["bare", " ", "-"])
    if style == "bare":
        return pan
    return style.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def planted(before: str, d1: str, value: str, d2: str, after: str) -> str:
    return f"{before}{d1}{value}{d2}{after}"


@settings(max_examples=300, deadline=None)
@given(noise, delimiter, seeds, delimiter, noise)
def test_valid_pans_never_survive(before: str, d1: str, seed: int, d2: str, after: str) -> None:
    """A Luhn-valid card number in any grouping is masked wherever it is planted."""
    rng = random.Random(seed)
    prefix, length = rng.choice(CARD_SHAPES)
    pan = make_pan(rng, prefix, length)
    text = planted(before, d1, card_forms(pan, rng), d2, after)
    for masker in (M, KEYED):
        out = masker.mask_text(text)
        assert pan not in out.replace(" ", "").replace("-", "")
        assert pan[6:-4] not in out.replace(" ", "").replace("-", "")


@settings(max_examples=200, deadline=None)
@given(noise, delimiter, seeds, noise)
def test_valid_nubans_never_survive(before: str, d1: str, seed: int, after: str) -> None:
    """A check-digit-valid NUBAN beside its bank code is masked in text and in records."""
    rng = random.Random(seed)
    code = rng.choice(BANK_CODES)
    nuban = make_nuban(rng, code)
    text = planted(before, d1, f"bank_code={code} account_number={nuban}", " ", after)
    assert nuban not in M.mask_text(text)
    record = {"note": before, "bank_code": code, "account_number": nuban, "tail": after}
    assert nuban not in repr(M.mask_record(record))


@settings(max_examples=200, deadline=None)
@given(noise, delimiter, seeds, delimiter, noise)
def test_bvns_and_phones_never_survive(
    before: str, d1: str, seed: int, d2: str, after: str
) -> None:
    """11-digit BVNs (with or without a label) and mobile numbers are masked."""
    rng = random.Random(seed)
    bvn, phone = make_bvn(rng), make_phone(rng)
    label = rng.choice(["", "bvn ", "BVN: ", "nin="])
    text = planted(before, d1, f"{label}{bvn} tel {phone}", d2, after)
    out = M.mask_text(text)
    assert bvn not in out
    assert phone not in out


@settings(max_examples=200, deadline=None)
@given(digitless, delimiter, seeds, digitless)
def test_luhn_failing_numbers_are_never_called_cards(
    before: str, d1: str, seed: int, after: str
) -> None:
    """The near-miss twin: with the check digit broken, no PAN finding covers it."""
    rng = random.Random(seed)
    prefix, length = rng.choice(CARD_SHAPES)
    bad = luhn_break(make_pan(rng, prefix, length))
    text = f"{before}{d1}{bad} {after}"
    start = len(before) + len(d1)
    for f in M.findings(text):
        if f.kind == "PAN":
            assert not (f.start <= start and f.end >= start + len(bad))
