"""JWKS vetting: whole-document rejections, per-key skips, and key selection."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.jwt.jwt_helpers import Keys, jwks_of, public_jwk

from ramparts.jwt import JWKSError, KeyResolutionError, parse_jwks


def ring(document: Any, *, allow_symmetric: bool = False):
    return parse_jwks(document, source="test", allow_symmetric=allow_symmetric)


class TestWholeDocument:
    """Problems that make the whole JWKS unusable."""

    def test_good_document_loads_every_key(self, keys: Keys) -> None:
        """The twin: a clean set of public keys loads completely."""
        loaded = ring(jwks_of(keys.rsa, keys.ec, keys.ed))
        assert loaded.kids == {"rsa-1", "ec-1", "ed-1"}
        assert loaded.skipped == ()

    @pytest.mark.parametrize("document", [b"[]", b"{", b'{"keys": {}}', b'{"nokeys": []}'])
    def test_not_a_key_set(self, document: bytes) -> None:
        """Anything but {"keys": [...]} is refused."""
        with pytest.raises(JWKSError):
            ring(document)

    def test_duplicate_kid(self, keys: Keys) -> None:
        """Two keys under one kid make selection ambiguous."""
        twin = public_jwk(keys.rsa2, kid="rsa-1")
        with pytest.raises(JWKSError, match="appears twice"):
            ring({"keys": [public_jwk(keys.rsa), twin]})

    def test_private_key_material(self, keys: Keys) -> None:
        """A published set holding a private key is a leak, not a key set."""
        with pytest.raises(JWKSError, match="private key material"):
            ring({"keys": [dict(keys.rsa.as_dict(private=True))]})

    def test_symmetric_mixed_with_asymmetric(self, keys: Keys) -> None:
        """HMAC secrets next to public keys are the alg-confusion setup."""
        secret = dict(keys.hmac.as_dict(private=True))
        with pytest.raises(JWKSError, match="mixes"):
            ring({"keys": [secret, public_jwk(keys.rsa)]}, allow_symmetric=True)

    def test_secret_not_accepted_from_network_source(self, keys: Keys) -> None:
        """oct keys only from a local file."""
        secret = {"keys": [dict(keys.hmac.as_dict(private=True))]}
        with pytest.raises(JWKSError, match="local file"):
            ring(secret, allow_symmetric=False)
        assert ring(secret, allow_symmetric=True).kids == {"hs-1"}

    def test_duplicate_member_in_document(self) -> None:
        with pytest.raises(JWKSError):
            ring(b'{"keys": [], "keys": []}')


def _small_rsa_jwk() -> dict[str, Any]:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    return {"kty": "RSA", "n": _b64(numbers.n), "e": _b64(numbers.e), "kid": "small"}


def _b64(value: int) -> str:
    from ramparts.jwt._codec import b64url_encode

    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()


class TestPerKeySkips:
    """Unusable keys are skipped with a reason; the rest of the set still works."""

    @pytest.mark.parametrize(
        ("extra", "why"),
        [
            ({"use": "enc"}, "use"),
            ({"key_ops": ["encrypt"]}, "key_ops"),
            ({"alg": "RSA-OAEP"}, "not a supported signature algorithm"),
            ({"alg": "ES256"}, "does not fit key type"),
            ({"kty": "XYZ"}, "not supported"),
        ],
    )
    def test_key_is_skipped(self, keys: Keys, extra: dict[str, Any], why: str) -> None:
        loaded = ring({"keys": [public_jwk(keys.rsa2, **extra), public_jwk(keys.rsa)]})
        assert loaded.kids == {"rsa-1"}
        assert len(loaded.skipped) == 1
        assert why in loaded.skipped[0]

    def test_twin_sig_key_with_matching_alg_is_kept(self, keys: Keys) -> None:
        loaded = ring({"keys": [public_jwk(keys.rsa, use="sig", alg="RS256", key_ops=["verify"])]})
        assert loaded.kids == {"rsa-1"}

    def test_small_rsa_key_is_skipped(self) -> None:
        loaded = ring({"keys": [_small_rsa_jwk()]})
        assert loaded.keys == ()
        assert "1024 bits" in loaded.skipped[0]

    def test_ec_point_off_curve_is_skipped(self, keys: Keys) -> None:
        bad = public_jwk(keys.ec)
        bad["y"] = bad["x"]
        assert ring({"keys": [bad]}).keys == ()

    def test_repr_never_shows_key_material(self, keys: Keys) -> None:
        loaded = ring({"keys": [dict(keys.hmac.as_dict(private=True))]}, allow_symmetric=True)
        secret = keys.hmac.as_dict(private=True)["k"]
        assert secret not in repr(loaded)
        assert secret not in repr(loaded.keys[0])


class TestSelection:
    """Key choice by kid and alg."""

    def test_kid_selects_exactly_that_key(self, keys: Keys) -> None:
        loaded = ring(jwks_of(keys.rsa, keys.rsa2))
        assert loaded.select("RS256", "rsa-2").kid == "rsa-2"

    def test_key_pinned_to_other_alg_is_a_mismatch(self, keys: Keys) -> None:
        loaded = ring({"keys": [public_jwk(keys.rsa, alg="PS256")]})
        with pytest.raises(KeyResolutionError) as caught:
            loaded.select("RS256", "rsa-1")
        assert caught.value.reason == "key_mismatch"
        assert loaded.select("PS256", "rsa-1").kid == "rsa-1"

    def test_curve_must_fit_alg(self, keys: Keys) -> None:
        loaded = ring(jwks_of(keys.ec))
        with pytest.raises(KeyResolutionError):
            loaded.select("ES384", "ec-1")

    def test_no_kid_and_no_fitting_key(self, keys: Keys) -> None:
        loaded = ring(jwks_of(keys.ec))
        with pytest.raises(KeyResolutionError) as caught:
            loaded.select("RS256", None)
        assert caught.value.reason == "unknown_kid"
