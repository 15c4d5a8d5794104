"""IssuerPolicy is checked when built; policy_from_config reads the topology's issuer entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ramparts.jwt
from ramparts.jwt import ALGORITHMS, IssuerPolicy, policy_from_config


def build(**overrides: Any) -> IssuerPolicy:
    values: dict[str, Any] = {
        "issuer": "https://idp.test",
        "audiences": ("api",),
        "algorithms": ("RS256",),
        "jwks": "https://idp.test/jwks.json",
    }
    values.update(overrides)
    return IssuerPolicy(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issuer": ""}, "issuer"),
        ({"audiences": ()}, "audiences"),
        ({"audiences": "api"}, "not one string"),
        ({"algorithms": ()}, "algorithms"),
        ({"algorithms": ("none",)}, "'none' is refused"),
        ({"algorithms": ("RS1",)}, "unknown algorithm"),
        ({"algorithms": ("HS256", "RS256")}, "mixes HMAC and asymmetric"),
        ({"jwks": ""}, "jwks"),
        ({"algorithms": ("HS256",)}, "local file"),
        ({"leeway_seconds": -1}, "leeway_seconds"),
        ({"leeway_seconds": 3600}, "leeway_seconds"),
        ({"leeway_seconds": True}, "leeway_seconds"),
        ({"required_claims": ("",)}, "required_claims"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
    ],
)
def test_bad_policy_is_refused_naming_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)


def test_good_policy_twin() -> None:
    """The twin: a sound policy builds, and HMAC-only is allowed on its own."""
    assert build().allows("RS256") and not build().allows("ES256")
    assert build(algorithms=("HS256", "HS512"), jwks="/etc/ramparts/hs.json").symmetric


def test_none_is_not_an_algorithm() -> None:
    assert "none" not in {a.lower() for a in ALGORITHMS}


@dataclass(frozen=True)
class StandInIssuer:
    """The shape the lead's topology gives (gateway.issuers[i])."""

    issuer: str = "https://auth.refbank.local"
    jwks: str = ".ramparts/jwks.json"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    audiences: tuple[str, ...] = ("refbank-api",)
    leeway_seconds: int = 30
    required_claims: tuple[str, ...] = ("exp", "sub")


def test_policy_from_stand_in_config(tmp_path: Path) -> None:
    policy = policy_from_config(StandInIssuer(), base_dir=tmp_path)
    assert policy.issuer == "https://auth.refbank.local"
    assert policy.jwks == str(tmp_path / ".ramparts/jwks.json")
    assert policy.algorithms == ("RS256", "ES256")
    assert policy.required_claims == ("exp", "sub")
    url = policy_from_config(StandInIssuer(jwks="https://auth.example/jwks"), base_dir=tmp_path)
    assert url.jwks == "https://auth.example/jwks"


def test_policy_from_config_names_missing_fields() -> None:
    @dataclass
    class Partial:
        issuer: str = "x"

    with pytest.raises(ValueError, match="jwks"):
        policy_from_config(Partial())


def test_policy_from_the_real_topology() -> None:
    """The lead's loader and this module agree on the issuer fields."""
    from ramparts.config import default_topology

    issuers = default_topology().gateway.issuers
    assert issuers
    for entry in issuers:
        assert policy_from_config(entry).issuer == entry.issuer


def test_public_names_match_all() -> None:
    """__all__ lists exactly the public names the package exports."""
    public = {n for n in vars(ramparts.jwt) if not n.startswith("_")}
    modules = {n for n in public if n in {"cli"}}
    assert set(ramparts.jwt.__all__) == public - modules


def test_package_docstring_example_runs() -> None:
    """The example at the top of ramparts.jwt runs as written."""
    import doctest

    result = doctest.testmod(ramparts.jwt, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
