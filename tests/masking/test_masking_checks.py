"""Checksums and number plans: Luhn, card ranges, the NUBAN check digit, mobile numbers."""

from __future__ import annotations

import pytest

from ramparts.masking._checks import (
    card_brand,
    institution_code,
    is_pan,
    luhn_valid,
    ng_mobile_nsn,
    nuban_check_digit,
    nuban_valid,
)


class TestLuhn:
    @pytest.mark.parametrize("pan", ["4242424242424242", "378282246310005", "79927398713"])
    def test_valid_numbers_pass(self, pan: str) -> None:
        """Known Luhn-valid numbers pass."""
        assert luhn_valid(pan)

    @pytest.mark.parametrize("pan", ["4242424242424241", "378282246310004", "79927398710"])
    def test_altered_check_digit_fails(self, pan: str) -> None:
        """Changing the last digit breaks the check."""
        assert not luhn_valid(pan)


class TestCardBrand:
    @pytest.mark.parametrize(
        ("pan", "brand"),
        [
            ("5060990000000000", "verve"),
            ("5061980000000000000", "verve"),
            ("6500020000000000", "verve"),
            ("5078650000000000", "verve"),
            ("4111111111111111", "visa"),
            ("2221000000000000", "mastercard"),
            ("371449635398431", "amex"),
            ("122000000000003", "uatp"),
        ],
    )
    def test_ranges(self, pan: str, brand: str) -> None:
        """Numbers inside a listed range and length get that brand."""
        assert card_brand(pan) == brand

    @pytest.mark.parametrize(
        "pan",
        [
            "0000000000000000",  # Luhn-valid, no issuer
            "1748503543012",  # 1-prefix is UATP only at 15 digits
            "371449635398431000",  # Amex is 15 digits only
            "9912345678901234",  # unassigned
        ],
    )
    def test_outside_ranges(self, pan: str) -> None:
        """A number outside every range or length has no brand and is no PAN."""
        assert card_brand(pan) is None
        assert not is_pan(pan)

    def test_pan_needs_luhn_and_brand(self) -> None:
        """is_pan needs both the range and the checksum."""
        assert is_pan("4242424242424242")
        assert not is_pan("4242424242424241")


class TestNUBAN:
    def test_cbn_worked_examples(self) -> None:
        """CBN NUBAN proposal v0.4, examples 1 and 2 (bank 011)."""
        assert nuban_check_digit("011", "000001457") == 9
        assert nuban_check_digit("011", "000000022") == 0
        assert nuban_valid("011", "0000014579")
        assert not nuban_valid("011", "0000014578")

    @pytest.mark.parametrize(
        ("code", "padded"), [("058", "000058"), ("50211", "950211"), ("999058", "999058")]
    )
    def test_institution_code_padding(self, code: str, padded: str) -> None:
        """3-digit codes gain '000', 5-digit codes a '9', 6-digit codes stay."""
        assert institution_code(code) == padded

    @pytest.mark.parametrize("code", ["58", "0581", "abc", "", "٠٥٨"])
    def test_bad_bank_codes(self, code: str) -> None:
        """Other lengths and non-ASCII digits are no bank code."""
        assert institution_code(code) is None
        assert not nuban_valid(code, "0000014579")

    def test_bad_serial_raises_naming_the_length(self) -> None:
        """A malformed serial is an error that names the expected length."""
        with pytest.raises(ValueError, match="9 ASCII digits"):
            nuban_check_digit("011", "12345")

    @pytest.mark.parametrize("nuban", ["000001457", "00000145790", "000001457x"])
    def test_wrong_shape_is_invalid(self, nuban: str) -> None:
        """Only exactly ten ASCII digits can be a NUBAN."""
        assert not nuban_valid("011", nuban)


class TestMobile:
    @pytest.mark.parametrize(
        ("digits", "nsn"),
        [
            ("08031234567", "8031234567"),
            ("2347031234567", "7031234567"),
            ("09121234567", "9121234567"),
        ],
    )
    def test_prefixes(self, digits: str, nsn: str) -> None:
        """0- and 234-prefixed mobiles reduce to the same national significant number."""
        assert ng_mobile_nsn(digits) == nsn

    @pytest.mark.parametrize("digits", ["06031234567", "0803123456", "2346031234567"])
    def test_not_mobile(self, digits: str) -> None:
        """Other leads or lengths are not Nigerian mobile numbers."""
        assert ng_mobile_nsn(digits) is None
