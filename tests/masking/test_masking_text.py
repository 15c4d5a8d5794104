"""Masking free text: positives, near-misses that fail a checksum, exact spans, context."""

from __future__ import annotations

import json

import pytest

from ramparts.masking import Finding, Kind, Masker

M = Masker()


def kinds(text: str, masker: Masker = M) -> list[tuple[Kind, str]]:
    """(kind, masked substring) for each finding, in order."""
    return [(f.kind, text[f.start : f.end]) for f in masker.findings(text)]


class TestCards:
    @pytest.mark.parametrize(
        ("text", "span"),
        [
            ("card 4242424242424242 ok", (5, 21)),
            ("card 4242 4242 4242 4242 ok", (5, 24)),
            ("card 4242-4242-4242-4242 ok", (5, 24)),
            ("amex 3782 822463 10005", (5, 22)),
            ("verve 5060990000000000002 done", None),  # Luhn fails
            ("card=5061980000000000001&exp=1230", (5, 24)),
        ],
    )
    def test_exact_spans(self, text: str, span: tuple[int, int] | None) -> None:
        """A card is masked from its first to its last digit, separators included."""
        found = [f for f in M.findings(text) if f.kind is Kind.PAN]
        if span is None:
            assert found == []
        else:
            assert [(f.start, f.end) for f in found] == [span]

    def test_nineteen_digit_verve_keeps_bin_and_last_four(self) -> None:
        """PCI DSS: at most the first six and last four digits stay visible."""
        assert M.mask_text("pan 5061980000000000001") == "pan [PAN:506198*********0001]"

    def test_short_pan_shows_last_four_only(self) -> None:
        """For 15-digit and shorter cards the BIN is hidden too (too few unknown digits)."""
        assert M.mask_text("3782 822463 10005") == "[PAN:***0005]"

    def test_reveal_can_be_turned_off(self) -> None:
        """reveal_pan_digits=False masks every digit."""
        assert Masker(reveal_pan_digits=False).mask_text("4242424242424242") == "[PAN]"

    @pytest.mark.parametrize(
        "text",
        [
            "4242424242424241",  # Luhn fails
            "4242 4242 4242 4241",
            "4012-8888-8888-1882",
            "0000000000000000",  # Luhn passes, no issuer range
            "1748503543012",  # Luhn passes, 1-prefix only at 15 digits
            "424242******4242",  # already masked
            "ref 42424242424242424242",  # 20 digits: no card is that long
        ],
    )
    def test_near_misses_are_not_cards(self, text: str) -> None:
        """Numbers that fail Luhn or the issuer ranges are not masked as cards."""
        assert all(f.kind is not Kind.PAN for f in M.findings(text))

    def test_adjacent_cards_are_split(self) -> None:
        """Three differently formatted cards in a row are three findings (Presidio's case)."""
        text = "4012888888881881 4012-8888-8888-1881 4012 8888 8888 1881"
        spans = [(f.start, f.end) for f in M.findings(text)]
        assert spans == [(0, 16), (17, 36), (37, 56)]

    def test_digits_glued_to_letters_are_not_scanned(self) -> None:
        """A digit run inside a hex id is not an identifier (trace ids would break)."""
        assert M.findings("trace=ab4242424242424242cd") == []

    def test_decimal_fraction_is_not_scanned(self) -> None:
        """0.30000000000000004 is a float, not a Diners card."""
        assert M.findings("took 0.30000000000000004 s") == []


class TestNUBAN:
    def test_valid_check_digit_with_bank_code_is_masked(self) -> None:
        """A bank code in the line turns on the CBN check digit; a valid NUBAN is masked."""
        assert M.mask_text("bank_code=058 account=4323044858") == "bank_code=058 account=[NUBAN]"

    def test_failing_check_digit_with_bank_code_is_not_a_nuban(self) -> None:
        """The near miss: check digit +1 with the bank code present is not masked as NUBAN."""
        text = "bank_code=058 account=4323044859"
        assert all(f.kind is not Kind.NUBAN for f in M.findings(text))

    def test_valid_nuban_next_to_bank_code_needs_no_account_word(self) -> None:
        """With a bank code, a check-digit-valid 10-digit number is masked anywhere."""
        assert kinds("bankCode: 011 ref 0000014579") == [(Kind.NUBAN, "0000014579")]

    def test_five_digit_ofi_code(self) -> None:
        """A 5-digit institution code is prefixed with 9 (corpus case 50211)."""
        assert kinds("bank_code=50211 acct=3808791389") == [(Kind.NUBAN, "3808791389")]

    @pytest.mark.parametrize(
        "text",
        [
            "account 0123456789",
            "acct_no=0123456789",
            "nuban: 0123456789",
            '"account_number":"0123456789"',
            "to beneficiary_account=0123456789",
            "A/C 0123456789",
        ],
    )
    def test_account_context_without_bank_code(self, text: str) -> None:
        """Without a bank code, the key right before a 10-digit number decides."""
        assert [k for k, _ in kinds(text)] == [Kind.NUBAN]

    @pytest.mark.parametrize(
        "text",
        [
            "ts=1764355200",
            "account_id=42 ts=1764355200",
            "account opened ts=1764355200",
            "order 0123456789 shipped",
        ],
    )
    def test_ten_digits_without_account_context_survive(self, text: str) -> None:
        """Unix timestamps and order numbers are not account numbers."""
        assert M.findings(text) == []


class TestBVNAndNIN:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("bvn=22212345678", Kind.BVN),
            ("Bank Verification Number: 22212345678", Kind.BVN),
            ("NIN: 98765432102", Kind.NIN),
            ("national identity number 98765432102", Kind.NIN),
            ('{"customer_nin": "98765432102"}', Kind.NIN),
            ("customer 22212345678 verified", Kind.BVN_OR_NIN),
        ],
    )
    def test_context_types_the_number(self, text: str, kind: Kind) -> None:
        """Context words name the identifier; with none it is still masked as BVN_OR_NIN."""
        assert [k for k, _ in kinds(text)] == [kind]

    def test_nearest_context_wins(self) -> None:
        """With both words near, the closer one types the number."""
        assert kinds("nin ok, bvn 22212345678") == [(Kind.BVN, "22212345678")]

    def test_unlabelled_ids_can_be_kept(self) -> None:
        """mask_unlabelled_ids=False keeps 11-digit numbers that have no context word."""
        masker = Masker(mask_unlabelled_ids=False)
        assert masker.findings("customer 22212345678 verified") == []
        assert kinds("bvn 22212345678", masker) == [(Kind.BVN, "22212345678")]

    @pytest.mark.parametrize("text", ["1234567890a", "x22212345678", "222123456789"])
    def test_wrong_shape(self, text: str) -> None:
        """Glued to a letter, or 12 digits: not a BVN or NIN."""
        assert M.findings(text) == []


class TestPhones:
    @pytest.mark.parametrize(
        "number",
        [
            "08031234567",
            "0803 123 4567",
            "0803-123-4567",
            "+2348031234567",
            "+234 803 123 4567",
            "+234 (0) 803 123 4567",
            "2348031234567",
            "07011223344",
            "09151234567",
        ],
    )
    def test_formats(self, number: str) -> None:
        """National, international and grouped forms are one PHONE finding each."""
        text = f"call {number} now"
        assert kinds(text) == [(Kind.PHONE, number)]

    def test_bvn_context_overrides_phone_shape(self) -> None:
        """An 11-digit number labelled bvn is a BVN even if it looks like a mobile."""
        assert kinds("bvn: 08031234567") == [(Kind.BVN, "08031234567")]


class TestEmail:
    @pytest.mark.parametrize(
        ("text", "email"),
        [
            ("mail ada@example.com now", "ada@example.com"),
            ("user=ada.lovelace+ng@bank.example.com.ng,", "ada.lovelace+ng@bank.example.com.ng"),
            ("a@xn--d1acufc.xn--p1ai", "a@xn--d1acufc.xn--p1ai"),
            ("to <Ada_L@Example.ORG>", "Ada_L@Example.ORG"),
        ],
    )
    def test_spans(self, text: str, email: str) -> None:
        """The whole address is one finding; delimiters around it stay."""
        assert kinds(text) == [(Kind.EMAIL, email)]

    @pytest.mark.parametrize("text", ["info@presidio.", "@timestamp", "hello-world", "a@b"])
    def test_not_emails(self, text: str) -> None:
        """No TLD, or no local part: not an address."""
        assert M.findings(text) == []

    def test_digits_in_local_part_join_the_email(self) -> None:
        """A phone number used as a local part is masked with the address, not beside it."""
        assert M.mask_text("from ada.08031234567@example.ng") == "from [EMAIL]"


class TestSecrets:
    @pytest.mark.parametrize(
        ("text", "masked"),
        [
            ("password=hunter2 user=ada", "password=[SECRET] user=ada"),
            ("db_password: 'correct horse'", "db_password: '[SECRET]'"),
            ('{"client_secret": "s3cr3t", "n": 1}', '{"client_secret": "[SECRET]", "n": 1}'),
            ("?access_token=abc.def&x=1", "?access_token=[SECRET]&x=1"),
            ("X-Api-Key: k-123", "X-Api-Key: [SECRET]"),
            ("apikey=abc", "apikey=[SECRET]"),
            ("refresh_token=r1 passwd=p2", "refresh_token=[SECRET] passwd=[SECRET]"),
            ("private_key=abc", "private_key=[SECRET]"),
            ("pin=1234 shipping=12", "pin=[SECRET] shipping=12"),
            ('msg="{\\"password\\": \\"hunter2\\"}"', 'msg="{\\"password\\": \\"[SECRET]\\"}"'),
            ("Cookie: session=abc; theme=dark", "Cookie: [SECRET]"),
            ("https://ada:s3cr3t@db.internal/x", "https://ada:[SECRET]@db.internal/x"),
        ],
    )
    def test_key_value_forms(self, text: str, masked: str) -> None:
        """Values of secret-named keys are masked in every common syntax; keys stay."""
        assert M.mask_text(text) == masked

    @pytest.mark.parametrize(
        ("text", "masked"),
        [
            ("Authorization: Bearer abc.def", "Authorization: Bearer [SECRET]"),
            ("authorization=Basic YWRhOnBhc3M=", "authorization=Basic [SECRET]"),
            ('"Authorization": "Bearer abc"', '"Authorization": "[SECRET]"'),
            (
                'Authorization: Digest username="ada", response="x"',
                "Authorization: Digest [SECRET]",
            ),
            ("then bearer abcdefghijkl used", "then bearer [SECRET] used"),
        ],
    )
    def test_authorization_values(self, text: str, masked: str) -> None:
        """The scheme stays readable, the credentials do not."""
        assert M.mask_text(text) == masked

    @pytest.mark.parametrize(
        ("text", "masked"),
        [
            ("API_KEY=abc123", "API_KEY=[SECRET]"),
            ("PASSWORD=hunter2", "PASSWORD=[SECRET]"),
            ("DB_SECRET=s", "DB_SECRET=[SECRET]"),
            ("AUTHORIZATION: Bearer abc", "AUTHORIZATION: Bearer [SECRET]"),
            ("Set-Cookie: sid=1; HttpOnly", "Set-Cookie: [SECRET]"),
            ("SESSION_ID=abc PIN=1234 OTP=123456", "SESSION_ID=[SECRET] PIN=[SECRET] OTP=[SECRET]"),
            ("x-amz-signature=abc", "x-amz-signature=[SECRET]"),
            ("CVV2=123", "CVV2=[SECRET]"),
        ],
    )
    def test_any_case(self, text: str, masked: str) -> None:
        """Key words match in any case (environment-style and header-style keys)."""
        assert M.mask_text(text) == masked

    @pytest.mark.parametrize(
        "text",
        [
            "signing_key=4156 4177 7631 7067",
            "AUTHORIZATION=4156 4177 7631 7067",
            "authorization: Bearer=4156 4177 7631 7067",
            "pin=4156-4177-7631-7067",
        ],
    )
    def test_grouped_number_as_a_value_is_masked_whole(self, text: str) -> None:
        """Regression (found by the property tests): a card spaced in groups after a
        secret key lost only its first group to the value mask."""
        masked = M.mask_text(text)
        assert "4177" not in masked and "7067" not in masked

    @pytest.mark.parametrize("text", ["max_tokens=100", "tokens=5", "secret_version=3", "pinned"])
    def test_keys_that_only_contain_a_word_are_not_secrets(self, text: str) -> None:
        """Only keys that end in a secret word mark their value."""
        assert M.findings(text) == []


class TestTokensAndKeys:
    JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLWJ5dGVz"

    def test_jwt_span(self) -> None:
        """A compact JWS is one JWT finding covering its three segments."""
        text = f"got {self.JWT}, rejected"
        assert kinds(text) == [(Kind.JWT, self.JWT)]

    def test_unsigned_and_jwe(self) -> None:
        """alg=none tokens (empty signature) and five-segment JWEs are JWTs too."""
        assert kinds("t eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.")[0][0] is Kind.JWT
        jwe = "eyJhbGciOiJSU0EifQ.a2V5.aXY.Y2lwaGVy.dGFn"
        assert kinds(jwe) == [(Kind.JWT, jwe)]

    def test_pem_block(self) -> None:
        """A private-key block is masked from BEGIN to END; text after it stays."""
        text = "key -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- done"
        assert M.mask_text(text) == "key [PRIVATE_KEY] done"

    def test_pem_in_a_json_string(self) -> None:
        """Escaped newlines (a key inside a JSON string) are masked the same way."""
        text = '{"k": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----"}'
        assert M.mask_text(text) == '{"k": "[PRIVATE_KEY]"}'

    def test_unterminated_pem_masks_to_the_end(self) -> None:
        """Fail closed: with no END, everything after BEGIN is masked."""
        assert M.mask_text("x -----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn") == "x [PRIVATE_KEY]"

    def test_public_keys_and_certificates_stay(self) -> None:
        """Only private keys are secrets."""
        text = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"
        assert M.findings(text) == []

    def test_pem_across_lines(self) -> None:
        """mask_lines carries a key block over line boundaries and keeps the line count."""
        lines = [
            "before 08031234567\n",
            "-----BEGIN RSA PRIVATE KEY-----\n",
            "MIIEpAIBAAKCAQEA\n",
            "-----END RSA PRIVATE KEY----- after bvn 22212345678\n",
            "plain\n",
        ]
        assert list(M.mask_lines(lines)) == [
            "before [PHONE]\n",
            "[PRIVATE_KEY]\n",
            "[PRIVATE_KEY]\n",
            "[PRIVATE_KEY] after bvn [BVN]\n",
            "plain\n",
        ]


class TestOutput:
    def test_json_line_stays_valid_json(self) -> None:
        """A bare JSON number that is masked becomes a string, so the line still parses."""
        line = '{"n": 22212345678, "card": "4242424242424242", "password": 12345}'
        masked = M.mask_text(line)
        assert json.loads(masked) == {
            "n": "[BVN_OR_NIN]",
            "card": "[PAN:424242******4242]",
            "password": "[SECRET]",
        }

    def test_clean_text_is_returned_unchanged(self) -> None:
        """Nothing found: the very same string comes back."""
        text = "2026-11-28T18:12:35Z INFO gateway status=200 latency_ms=12 path=/v1/x"
        assert M.mask_text(text) is text

    def test_masking_is_idempotent(self) -> None:
        """Masked output has nothing left to mask."""
        text = "bvn 22212345678 card 4242424242424242 ada@example.com token=abc"
        once = M.mask_text(text)
        assert M.mask_text(once) == once

    def test_finding_repr_hides_the_value(self) -> None:
        """A finding printed in a failure message does not show what it masks."""
        (finding,) = M.findings("bvn 22212345678")
        assert isinstance(finding, Finding)
        assert "22212345678" not in repr(finding)
        assert repr(finding) == "Finding(kind=BVN, start=4, end=15)"
