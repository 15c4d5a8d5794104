"""ramparts.masking against the public PII cases in ../shared/conformance/pii.

* ``presidio_recognizer_cases.json``: Microsoft Presidio's own recogniser test
  tables (MIT, microsoft/presidio @ 0aa9f8e4). We run every row of the
  recognisers whose entity we cover (credit card, e-mail, NG NIN) and require
  the same number of findings at the same spans. Recognisers for entities we
  deliberately do not mask are skipped, and counted, below.
* ``pii_corpus.json``: labelled card numbers (brands, lengths, Luhn, 16-19 digit
  Verve), negatives, formatting variants, Presidio's card expectations, and 55
  NUBAN cases with the CBN check digit.

Each test collects every failure before asserting, so one run reports them all.

Pass counts at the time of writing (see the report printed with ``-s``):
Presidio card 19/19, e-mail 8/8, NG NIN 8/9 (one documented deviation);
corpus PANs 93/93, formatting variants 18/18, card expectations 19/19,
NUBAN 55/55 as text and 55/55 as records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ramparts.masking import Kind, Masker
from ramparts.masking._checks import institution_code, nuban_valid

pytestmark = pytest.mark.conformance

M = Masker()

# Presidio recogniser -> the kinds of ours that count as "detected".
COVERED = {
    "test_credit_card_recognizer": {Kind.PAN},
    "test_email_recognizer": {Kind.EMAIL},
    "test_ng_nin_recognizer": {Kind.NIN, Kind.BVN, Kind.BVN_OR_NIN},
}

# Entities we deliberately do not mask, each with why. Their rows are counted
# and skipped, never silently dropped.
NOT_COVERED = {
    "test_phone_recognizer": "every row is a US/BR/IL/JP/CN/DE/IT/GR/FR/IN/UK number; we mask "
    "Nigerian mobiles only (a world-wide phone grammar would mask ordinary numbers in logs)",
    "test_ip_recognizer": "IP addresses are operational data in our logs (peers, egress "
    "decisions) and are needed for incident response",
    "test_url_recognizer": "URLs are routes and upstreams; only their userinfo password is masked",
    "test_iban_recognizer": "IBAN is not used by Nigerian banks; NUBAN is covered instead",
    "test_crypto_recognizer": "crypto wallet addresses are out of scope for a NGN ledger",
    "test_ng_vehicle_registration_recognizer": "vehicle plates are not in our data model",
}

# (recogniser, text) -> why our answer differs from Presidio's.
DEVIATIONS = {
    ("test_ng_nin_recognizer", "12345678901"): (
        "Presidio rejects it with a Verhoeff check digit; NIMC has not published one (the "
        "corpus marks the claim UNVERIFIED), so we mask every standalone 11-digit number: "
        "a false positive costs a number in a log, a false negative leaks an identity"
    ),
}


def _load(conformance_dir: Path, name: str) -> Any:
    return json.loads((conformance_dir / "pii" / name).read_text())


def _spans(text: str, kinds: set[Kind]) -> list[list[int]]:
    return [[f.start, f.end] for f in M.findings(text) if f.kind in kinds]


def test_presidio_recogniser_tables(conformance_dir: Path) -> None:
    """Covered recognisers: same hit count and spans as Presidio, except listed deviations."""
    files = _load(conformance_dir, "presidio_recognizer_cases.json")["files"]
    assert set(files) == set(COVERED) | set(NOT_COVERED), "a recogniser file appeared or vanished"
    failures: list[str] = []
    passed: dict[str, int] = {}
    totals: dict[str, int] = {}
    deviated = 0
    for name, kinds in COVERED.items():
        for table in files[name]["tables"]:
            for row in table["rows"]:
                totals[name] = totals.get(name, 0) + 1
                text = row["text"]
                want = row.get("expected_res") or row.get("expected_positions") or []
                got = _spans(text, kinds)
                ok = len(got) == row["expected_len"] and (
                    not want or got == [list(s) for s in want]
                )
                if (name, text) in DEVIATIONS:
                    assert not ok, f"deviation {name}:{text!r} now matches; remove it"
                    deviated += 1
                elif ok:
                    passed[name] = passed.get(name, 0) + 1
                else:
                    failures.append(f"{name}: {text!r} want {row['expected_len']} {want} got {got}")
    skipped = {name: sum(len(t["rows"]) for t in files[name]["tables"]) for name in NOT_COVERED}
    print(
        "\npresidio tables: "
        + ", ".join(f"{n} {passed.get(n, 0)}/{totals[n]}" for n in COVERED)
        + f"; deviations {deviated}; skipped (not covered) {sum(skipped.values())}: {skipped}"
    )
    assert not failures, "\n".join(failures)
    assert deviated == len(DEVIATIONS)


def test_corpus_pans(conformance_dir: Path) -> None:
    """Luhn-valid PANs of a known brand are masked as cards; the rest are not."""
    corpus = _load(conformance_dir, "pii_corpus.json")
    rows = corpus["pans"] + corpus["pans_synthetic_verve"] + corpus["pans_negative"]
    failures = []
    for row in rows:
        pan = row["pan"]
        # The corpus labels one Luhn-valid number as brand "none": Presidio must not detect it.
        want = row["luhn_valid"] and "brand" in row and not row["brand"].startswith("none")
        found = [f for f in M.findings(pan) if f.kind is Kind.PAN]
        got = found == [] if not want else [(f.start, f.end) for f in found] == [(0, len(pan))]
        if not got:
            failures.append(f"{pan} ({row.get('brand', row.get('why'))}): want PAN={want}")
        if want:
            # The placeholder keeps at most the first six and last four digits.
            shown = f"{pan[:6]}{'*' * (len(pan) - 10)}" if len(pan) >= 16 else "***"
            assert M.mask_text(pan) == f"[PAN:{shown}{pan[-4:]}]", pan
    print(f"\ncorpus PANs: {len(rows) - len(failures)}/{len(rows)}")
    assert not failures, "\n".join(failures)


def test_corpus_formatting_variants(conformance_dir: Path) -> None:
    """Bare, spaced, dashed, urlencoded and JSON forms are found; masked forms are not."""
    rows = _load(conformance_dir, "pii_corpus.json")["pan_formatting_variants"]
    failures = []
    for row in rows:
        got = [f.value for f in M.findings(row["text"]) if f.kind is Kind.PAN]
        want = [row["pan"]] if row["pan"] else []
        if got != want:
            failures.append(f"{row['form']}: {row['text']!r} want {want} got {got}")
    print(f"\nformatting variants: {len(rows) - len(failures)}/{len(rows)}")
    assert not failures, "\n".join(failures)


def test_corpus_presidio_card_expectations(conformance_dir: Path) -> None:
    """Presidio's credit-card expectations as restated in the corpus: exact spans."""
    rows = _load(conformance_dir, "pii_corpus.json")["presidio_credit_card_expectations"]
    failures = [
        f"{r['text']!r}: want {r['spans']} got {_spans(r['text'], {Kind.PAN})}"
        for r in rows
        if _spans(r["text"], {Kind.PAN}) != r["spans"]
    ]
    print(f"\npresidio card expectations: {len(rows) - len(failures)}/{len(rows)}")
    assert not failures, "\n".join(failures)


def test_corpus_nuban(conformance_dir: Path) -> None:
    """Every NUBAN case: the check digit, the padding, text masking and record masking."""
    nuban = _load(conformance_dir, "pii_corpus.json")["nuban"]
    failures = []
    for case in nuban["cases"]:
        code, number, valid = case["bank_code"], case["nuban"], case["valid"]
        if "padded_code" in case and institution_code(code) != case["padded_code"]:
            failures.append(f"{code}: padded to {institution_code(code)}")
        if nuban_valid(code, number) != valid:
            failures.append(f"{code}/{number}: check digit says {not valid}, want {valid}")
        text = f"bank_code={code} account_number={number}"
        in_text = any(f.kind is Kind.NUBAN for f in M.findings(text))
        if in_text != valid:
            failures.append(f"text {text!r}: NUBAN={in_text}, want {valid}")
        masked = M.mask_record({"bank_code": code, "account_number": number})["account_number"]
        # A failing number under an account field is still masked, but never as a NUBAN.
        want_record = "[NUBAN]" if valid else "[ACCOUNT_NUMBER]"
        if masked != want_record:
            failures.append(f"record {code}/{number}: {masked}, want {want_record}")
    print(f"\nNUBAN cases: {len(nuban['cases'])} checked, {len(failures)} failures")
    assert not failures, "\n".join(failures)


def test_corpus_bvn_and_nin_values(conformance_dir: Path) -> None:
    """The vendor sandbox BVNs and Presidio's NIN constants are masked, labelled or not."""
    corpus = _load(conformance_dir, "pii_corpus.json")
    bvns = [v["bvn"] for v in corpus["bvn"]["vendor_sandbox_values"]]
    nins = list(corpus["nin"]["presidio_constants"].values())
    for value in bvns:
        assert M.mask_text(f"bvn: {value}") == "bvn: [BVN]"
        assert value not in M.mask_text(f"customer {value}")
    for value in nins:
        assert M.mask_text(f"NIN {value}") == "NIN [NIN]"
