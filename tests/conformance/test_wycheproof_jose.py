"""ramparts.jwt against Wycheproof's JOSE vectors (../shared/conformance/wycheproof).

JWS vectors: each group's key is the configured key (its ``public`` JWK, or
the ``private`` one for HMAC groups) and the allowed algorithm is pinned to
the key's ``alg``; ``valid`` must verify and ``invalid`` must be rejected.
JWK vectors: the group's key set is the configured JWKS, the algorithms are
the algs its keys declare; the same rule applies.

Deviations are listed below with the reason; each is asserted to still
deviate, so a listed case cannot silently start passing or failing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ramparts.jwt import ALGORITHMS, JWKSError, JWTError, parse_jwks, verify_jws

pytestmark = pytest.mark.conformance

#: tcId -> why ramparts.jwt answers differently from the vector on purpose.
JWS_DEVIATIONS: dict[int, str] = {
    346: "RFC 7520 figure 20 is signed PS384 but the vector's key says alg PS256; a key's "
    "alg pins it (RFC 7517 4.4), so the strict policy rejects",
    350: "same as 346, with key_ops",
    347: "RFC 7520 figure 27 key says alg 'ES521', which is no JWS algorithm (ES512 is); "
    "a key pinned to an unknown alg is skipped",
    351: "same as 347, with key_ops",
    367: "marked invalid ('invalidBase64Padding') but the bytes equal valid tcId 357",
    370: "marked invalid ('invalidBase64PaddingInPayload') but the bytes equal valid tcId 357",
    372: "marked valid although '?' sits inside the header's base64url; RFC 7515 section 2 "
    "base64url has no such character, and a lenient decoder invites parser differentials",
    373: "same as 372, in the payload segment",
}
JWK_DEVIATIONS: dict[int, str] = {}


def _load(conformance_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((conformance_dir / "wycheproof" / name).read_text())


def _verdict(token: Any, key_set: dict[str, Any], algorithms: set[str]) -> tuple[str, str]:
    """('valid'|'invalid', why) for one token against one configured key set."""
    # JSON serialization (a dict) is not accepted: only the compact form is.
    text = token if isinstance(token, str) else json.dumps(token)
    try:
        ring = parse_jwks(key_set, source="wycheproof", allow_symmetric=True)
        verify_jws(text, ring, algorithms=algorithms)
    except JWTError as exc:
        return "invalid", exc.reason
    except JWKSError as exc:
        return "invalid", f"jwks: {exc}"
    return "valid", ""


def _run(
    groups: list[dict[str, Any]], deviations: dict[int, str], key_set_of: Any
) -> tuple[int, list[str]]:
    checked, failures = 0, []
    for group in groups:
        key_set = key_set_of(group)
        algorithms = {k["alg"] for k in key_set["keys"] if isinstance(k.get("alg"), str)}
        for case in group["tests"]:
            checked += 1
            got, why = _verdict(case["jws"], key_set, algorithms)
            tc = case["tcId"]
            if tc in deviations:
                if got == case["result"]:
                    failures.append(f"tcId {tc}: listed as a deviation but now matches")
                continue
            if got != case["result"]:
                failures.append(
                    f"tcId {tc} ({case['comment']}): want {case['result']}, got {got} {why}"
                )
    return checked, failures


def _jws_key_set(group: dict[str, Any]) -> dict[str, Any]:
    key = group.get("public") or group.get("private")
    return {"keys": [key] if key else []}


def _jwk_key_set(group: dict[str, Any]) -> dict[str, Any]:
    return group.get("public") or group["private"]


def test_jws_vectors(conformance_dir: Path) -> None:
    data = _load(conformance_dir, "json_web_signature_test.json")
    checked, failures = _run(data["testGroups"], JWS_DEVIATIONS, _jws_key_set)
    assert checked == data["numberOfTests"] == 401
    assert not failures, f"{len(failures)}/{checked} JWS vectors differ:\n" + "\n".join(failures)


def test_jwk_vectors(conformance_dir: Path) -> None:
    data = _load(conformance_dir, "json_web_key_test.json")
    checked, failures = _run(data["testGroups"], JWK_DEVIATIONS, _jwk_key_set)
    assert checked == data["numberOfTests"] == 26
    assert not failures, f"{len(failures)}/{checked} JWK vectors differ:\n" + "\n".join(failures)


def test_jwk_invalid_keys_are_refused_even_without_alg_pinning(conformance_dir: Path) -> None:
    """Defence in depth: with every algorithm allowed, bad key sets still reject.

    The pinned run above can reject some cases on the alg alone; this shows the
    key vetting (use, key_ops, size, exponent, ROCA, curve, point, kty, empty
    secret, duplicate kid, mixed set) refuses them by itself.
    """
    data = _load(conformance_dir, "json_web_key_test.json")
    wrong = []
    for group in data["testGroups"]:
        key_set = _jwk_key_set(group)
        for case in group["tests"]:
            got, _why = _verdict(case["jws"], key_set, set(ALGORITHMS))
            if case["result"] == "invalid" and got != "invalid":
                wrong.append(f"tcId {case['tcId']} ({case['comment']}) accepted")
    assert not wrong, "\n".join(wrong)


def test_psychic_signatures_are_rejected_as_bad_signatures(conformance_dir: Path) -> None:
    """tcId 386-401 (ECDSA r or s zero or n, CVE-2022-21449) fail signature verification."""
    data = _load(conformance_dir, "json_web_signature_test.json")
    reasons = {}
    for group in data["testGroups"]:
        for case in group["tests"]:
            if 386 <= case["tcId"] <= 401:
                algorithms = {group["public"]["alg"]}
                reasons[case["tcId"]] = _verdict(case["jws"], _jws_key_set(group), algorithms)
    assert len(reasons) == 16
    assert set(reasons.values()) == {("invalid", "bad_signature")}
