"""The egress guard against public URL and address-policy suites in ../shared/conformance/urls.

* WHATWG host parsing (web-platform-tests via ada-url): for every absolute
  http(s) case, our parser must fail where WHATWG fails and otherwise produce
  the same host. Deviations are deliberate and listed below with why.
* Advocate's SSRF policy cases: address, host-name and URL decisions.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from ramparts.config import EgressRule
from ramparts.egress import EgressBlocked, EgressPolicy, URLError, forbidden_reason, parse_url

# WHATWG accepts these, the guard refuses them on purpose.
WPT_DEVIATIONS = {
    "http://./": "a host of '.' is no domain anyone can own; refused as invalid",
    "http://../": "likewise '..'",
}
# Advocate configurations we express differently: ports and names are allow-listed per
# service in the topology, not black/white-listed globally.
ADVOCATE_PORT_CASES_NOT_APPLICABLE = "ports are exact per egress entry in ramparts.yaml"


def _load(conformance_dir: Path, name: str) -> Any:
    return json.loads((conformance_dir / "urls" / name).read_text())


def test_wpt_host_parsing(conformance_dir: Path) -> None:
    cases = _load(conformance_dir, "wpt_url_ip_host_cases.json")["cases"]
    failures, checked = [], 0
    for case in cases:
        url = case["input"]
        if not url.lower().startswith(("http://", "https://")):
            continue  # file:, ftp:: the guard only speaks http(s), and refuses the rest
        checked += 1
        try:
            parsed = parse_url(url)
            host = f"[{parsed.host}]" if parsed.host_kind == "ipv6" else parsed.host
        except URLError:
            host = None
        if url in WPT_DEVIATIONS:
            assert host is None, f"{url!r}: deviation no longer needed"
            continue
        want = None if case["failure"] else case["hostname"]
        if host != want:
            failures.append(f"{url!r}: want {want!r}, got {host!r}")
    assert not failures, f"{len(failures)}/{checked} WPT host cases differ:\n" + "\n".join(failures)
    assert checked >= 160


def test_advocate_ip_cases(conformance_dir: Path) -> None:
    cases = _load(conformance_dir, "advocate_ip_policy_cases.json")["ip_cases"]
    failures = []
    for case in cases:
        addr = ipaddress.ip_address(case["ip"])
        config = case["validator_config"]
        policy = EgressPolicy(
            "svc",
            [],
            denied_networks=[ipaddress.ip_network(n) for n in _set(config, "ip_blacklist")],
            dangerously_allowed_networks=[
                ipaddress.ip_network(n) for n in _set(config, "ip_whitelist")
            ],
        )
        url = parse_url(f"http://[{addr}]/" if addr.version == 6 else f"http://{addr}/")
        try:
            policy.check_address(url, addr)
            allowed = True
        except EgressBlocked:
            allowed = False
        if allowed != case["allowed"]:
            failures.append(f"{case['ip']} ({case['reason']}): want allowed={case['allowed']}")
    assert not failures, "\n".join(failures)
    assert len(cases) == 22


def _set(config: str, name: str) -> list[str]:
    """Read ``name={a,b}`` out of Advocate's config description."""
    if f"{name}={{" not in config:
        return []
    inner = config.split(f"{name}={{", 1)[1].split("}", 1)[0]
    return [x.strip() for x in inner.split(",") if x.strip()]


def test_advocate_hostname_cases(conformance_dir: Path) -> None:
    """IDN and punycode spellings canonicalise alike; an embedded NUL is refused outright."""
    cases = _load(conformance_dir, "advocate_ip_policy_cases.json")["hostname_blacklist_cases"]
    for case in cases:
        host = case["hostname"]
        if "\x00" in host:
            with pytest.raises(URLError):
                parse_url(f"http://{host}/")
            continue
        canonical = parse_url(f"http://{host}/").host
        # Patterns are compared in the same canonical (punycode, lowercase) form as hosts.
        hit = any(fnmatch.fnmatchcase(canonical, _canonical_pattern(p)) for p in case["blacklist"])
        assert hit is (not case["allowed"]), case


def _canonical_pattern(pattern: str) -> str:
    return ".".join(
        label if label == "*" else parse_url(f"http://{label}/").host
        for label in pattern.split(".")
    )


def test_advocate_url_cases(conformance_dir: Path) -> None:
    cases = _load(conformance_dir, "advocate_ip_policy_cases.json")["url_cases"]
    policy = EgressPolicy("svc", [EgressRule.parse("httpbin.org:80")])
    for case in cases:
        if "redirect" in case.get("note", ""):
            continue  # covered with a real redirect server in tests/egress/test_client.py
        with pytest.raises(EgressBlocked):
            policy.check_url(case["url"])
        assert case["allowed"] is False


def test_address_rules_agree_with_advocate_defaults(conformance_dir: Path) -> None:
    """Every 'default' Advocate case is decided by the built-in address rules alone."""
    cases = _load(conformance_dir, "advocate_ip_policy_cases.json")["ip_cases"]
    for case in cases:
        if case["validator_config"].startswith("default"):
            refused = forbidden_reason(ipaddress.ip_address(case["ip"])) is not None
            assert refused is (not case["allowed"]), case
