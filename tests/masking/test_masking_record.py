"""Masking structured records: field names as context, nesting, siblings, key tokenisation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ramparts.masking import Masker

M = Masker()
KEY = b"k" * 32


class TestFieldNames:
    @pytest.mark.parametrize(
        ("key", "value", "masked"),
        [
            ("bvn", "22212345678", "[BVN]"),
            ("customerBvn", 22212345678, "[BVN]"),
            ("Customer-BVN", "222-1234-5678", "[BVN]"),
            ("nin", "98765432102", "[NIN]"),
            ("account_number", "0123456789", "[NUBAN]"),
            ("accountNumber", 123456789, "[ACCOUNT_NUMBER]"),
            ("nuban", "0123456789", "[NUBAN]"),
            ("msisdn", "2348031234567", "[PHONE]"),
            ("email", "Ada@Example.com", "[EMAIL]"),
            ("password", "hunter2", "[SECRET]"),
            ("pin", 1234, "[SECRET]"),
            ("client_secret", {"nested": "x"}, "[SECRET]"),
            ("cookies", ["a=b", "c=d"], "[SECRET]"),
            ("cardNumber", "4242 4242 4242 4242", "[PAN:424242******4242]"),
            ("pan", "4242424242424241", "[PAN]"),
        ],
    )
    def test_named_fields_are_masked_whatever_the_value(
        self, key: str, value: Any, masked: str
    ) -> None:
        """A value under a sensitive field name is masked regardless of context words."""
        assert M.mask_record({key: value}) == {key: masked}

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("amount", 150000),
            ("duration", 0.25),
            ("max_tokens", 100),
            ("password_set", True),
            ("password", None),
            ("bvn", ""),
            ("status", "ok"),
        ],
    )
    def test_harmless_values_stay(self, key: str, value: Any) -> None:
        """Small numbers, floats, booleans, None and empty strings are kept as they are."""
        assert M.mask_record({key: value}) == {key: value}


class TestNUBANSiblings:
    def test_bank_code_sibling_valid(self) -> None:
        """A check-digit-valid account number beside its bank code is a NUBAN."""
        rec = {"bank_code": "058", "account_number": "4323044858"}
        assert M.mask_record(rec) == {"bank_code": "058", "account_number": "[NUBAN]"}

    def test_bank_code_sibling_invalid_is_masked_but_not_a_nuban(self) -> None:
        """Failing the check digit: still masked (it is an account field), not called NUBAN."""
        rec = {"bankCode": 58, "account_number": "4323044859"}
        assert M.mask_record(rec)["account_number"] == "[ACCOUNT_NUMBER]"

    def test_bank_code_sibling_three_digits_as_int(self) -> None:
        """A bank code given as a string with leading zeros works; the code itself stays."""
        rec = {"bank_code": "011", "nuban": "0000014579"}
        assert M.mask_record(rec) == {"bank_code": "011", "nuban": "[NUBAN]"}


class TestStructure:
    def test_nested_dicts_and_lists(self) -> None:
        """Masking recurses through dicts, lists and tuples, keeping their shape."""
        rec = {
            "customer": {"contacts": ["ada@example.com", "08031234567"], "bvn": "22212345678"},
            "headers": {"Authorization": "Bearer abc", "Accept": "json"},
            "pair": ("x", "token=abc"),
        }
        assert M.mask_record(rec) == {
            "customer": {"contacts": ["[EMAIL]", "[PHONE]"], "bvn": "[BVN]"},
            "headers": {"Authorization": "[SECRET]", "Accept": "json"},
            "pair": ("x", "token=[SECRET]"),
        }

    def test_input_is_not_modified(self) -> None:
        """mask_record returns a copy; the caller's record is untouched."""
        rec = {"bvn": "22212345678", "inner": {"password": "p"}}
        snapshot = json.dumps(rec)
        M.mask_record(rec)
        assert json.dumps(rec) == snapshot

    def test_free_text_values_use_the_key_as_context(self) -> None:
        """The key counts as context for the text inside: 'acct' before a 10-digit value."""
        assert M.mask_record({"destination_acct": "0123456789"}) == {"destination_acct": "[NUBAN]"}
        assert M.mask_record({"note": "paid 0123456789"}) == {"note": "paid 0123456789"}

    def test_large_integers_are_scanned(self) -> None:
        """An int that is an identifier becomes a placeholder string."""
        assert M.mask_record({"x": 4242424242424242}) == {"x": "[PAN:424242******4242]"}
        assert M.mask_record({"x": 1764355200}) == {"x": 1764355200}

    def test_keys_are_masked_too(self) -> None:
        """PII used as a key does not survive."""
        assert M.mask_record({"ada@example.com": 1}) == {"[EMAIL]": 1}

    def test_other_objects_are_masked_through_str(self) -> None:
        """Non-JSON objects are masked when their text reveals something, else kept."""

        class Customer:
            def __str__(self) -> str:
                return "Customer(bvn=22212345678)"

        marker = object()
        assert M.mask_record({"c": Customer(), "m": marker}) == {
            "c": "Customer(bvn=[BVN])",
            "m": marker,
        }


class TestTokenisation:
    def test_same_value_same_token_across_formats(self) -> None:
        """Equal identifiers correlate: the +234 and 0 forms of a phone give one token."""
        masker = Masker(hmac_key=KEY)
        a = masker.mask_text("call +2348031234567")
        b = masker.mask_text("call 0803 123 4567")
        assert a == b
        assert a.startswith("call [PHONE:hmac:")

    def test_token_shape_and_known_answer(self) -> None:
        """HMAC-SHA256 over a domain tag and the digits, 12 hex characters."""
        import hashlib
        import hmac

        want = hmac.new(KEY, b"ramparts.masking.v1\x0022212345678", hashlib.sha256).hexdigest()
        masked = Masker(hmac_key=KEY).mask_record({"bvn": "22212345678"})
        assert masked == {"bvn": f"[BVN:hmac:{want[:12]}]"}

    def test_different_keys_different_tokens(self) -> None:
        """Without the key the token cannot be recomputed."""
        a = Masker(hmac_key=KEY).mask_text("bvn 22212345678")
        b = Masker(hmac_key=b"q" * 32).mask_text("bvn 22212345678")
        assert a != b

    def test_pan_keeps_bin_and_last_four_with_token(self) -> None:
        """Cards keep their PCI-permitted digits and gain a token."""
        masked = Masker(hmac_key=KEY).mask_text("4242424242424242")
        assert masked.startswith("[PAN:424242******4242:hmac:")

    def test_secrets_are_never_tokenised(self) -> None:
        """A keyed hash of a password is still a guessing target: secrets stay plain."""
        assert Masker(hmac_key=KEY).mask_text("password=hunter2") == "password=[SECRET]"

    @pytest.mark.parametrize("key", [b"short", b""])
    def test_short_key_rejected_without_echoing_it(self, key: bytes) -> None:
        """Keys under 16 bytes are refused at construction; the message gives only the size."""
        with pytest.raises(ValueError, match="at least 16 bytes") as err:
            Masker(hmac_key=key)
        assert key == b"" or key.decode() not in str(err.value)

    def test_non_bytes_key_rejected(self) -> None:
        """A str key is a type error, not silently encoded."""
        with pytest.raises(TypeError, match="bytes"):
            Masker(hmac_key="k" * 32)  # type: ignore[arg-type]

    def test_repr_does_not_show_the_key(self) -> None:
        """The key never appears in a repr."""
        masker = Masker(hmac_key=b"supersecretkey-0123456789")
        assert "supersecret" not in repr(masker)
        assert "hmac=on" in repr(masker)

    def test_configuration_is_immutable(self) -> None:
        """The masker's configuration cannot change after construction."""
        from dataclasses import FrozenInstanceError

        with pytest.raises(FrozenInstanceError):
            M.reveal_pan_digits = False  # type: ignore[misc]


class TestDepth:
    def test_cyclic_record_does_not_raise(self) -> None:
        """A record that contains itself is cut off, not a RecursionError in a log call."""
        rec: dict[str, object] = {"bvn": "22212345678"}
        rec["self"] = rec
        masked = M.mask_record(rec)
        assert masked["bvn"] == "[BVN]"
        inner = masked
        for _ in range(40):
            if inner == "[TRUNCATED]":
                break
            inner = inner["self"]
        assert inner == "[TRUNCATED]"
