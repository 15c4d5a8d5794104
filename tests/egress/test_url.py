"""The egress URL parser: canonical hosts, and every confusing form refused or normalised."""

from __future__ import annotations

import pytest

from ramparts.egress import URLError, parse_url


@pytest.mark.parametrize(
    ("url", "host", "kind", "port", "target"),
    [
        ("https://hooks.example.com/a?b=1", "hooks.example.com", "domain", 443, "/a?b=1"),
        ("HTTPS://HOOKS.Example.COM", "hooks.example.com", "domain", 443, "/"),
        ("http://hooks.example.com.:8080/", "hooks.example.com", "domain", 8080, "/"),
        ("http://hooks.example.com?x", "hooks.example.com", "domain", 80, "/?x"),
        ("http://h.example/a#frag", "h.example", "domain", 80, "/a"),
        ("http://h.example/a b", "h.example", "domain", 80, "/a%20b"),
        ("http://2130706433/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://0x7f.1/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://0177.0.0.1/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://127.1/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://127.0.0.1./", "127.0.0.1", "ipv4", 80, "/"),
        ("http://%31%32%37.0.0.1/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://１２７.０.０.１/", "127.0.0.1", "ipv4", 80, "/"),
        ("http://0251.0376.0251.0376/", "169.254.169.254", "ipv4", 80, "/"),
        ("http://[::1]:8080/", "::1", "ipv6", 8080, "/"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", "ipv6", 80, "/"),
        ("http://[0:0:0:0:0:0:0:1]/", "::1", "ipv6", 80, "/"),
        ("http://bücher.example/", "xn--bcher-kva.example", "domain", 80, "/"),
        ("http://xn--bcher-kva.example/", "xn--bcher-kva.example", "domain", 80, "/"),
    ],
)
def test_canonical_form(url: str, host: str, kind: str, port: int, target: str) -> None:
    parsed = parse_url(url)
    assert (parsed.host, parsed.host_kind, parsed.port, parsed.target) == (host, kind, port, target)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com@127.0.0.1/", "credentials"),
        ("http://user:pass@hooks.example.com/", "credentials"),
        ("http://hooks.example.com\\@127.0.0.1/", "backslash"),
        ("http:\\\\127.0.0.1\\", "backslash"),
        ("http://127.0.0.1\t/", "tab or newline"),
        ("http://hooks.exa\nmple.com/", "tab or newline"),
        (" http://hooks.example.com/", "leading or trailing"),
        ("http://[fe80::1%25eth0]/", "zone identifiers"),
        ("http://[::1/", "closing ']'"),
        ("http://[::1]x/", "unexpected"),
        ("http://h.example:99999/", "port must be 1-65535"),
        ("http://h.example:0/", "port must be 1-65535"),
        ("http://h.example:8o/", "port must be digits"),
        ("http://h.example:-80/", "port must be digits"),
        ("gopher://h.example/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("//h.example/", "only http and https"),
        ("http:h.example/", "must be absolute"),
        ("http:///x", "empty host"),
        ("http://%25/", "forbidden character"),
        ("http://%252e/", "forbidden character"),
        ("http://h%00.example/", "forbidden character"),
        ("http://a..b/", "not a valid domain"),
        ("http://192.168.0.257/", "out of range"),
        ("http://1.2.3.4.5/", "5 parts"),
        ("http://0x1g.1/", "not a valid IPv4"),
        ("http://%ff/", "not valid UTF-8"),
        ("http://" + "a" * 300 + "/", "not a valid domain"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(URLError, match=why):
        parse_url(url)


def test_origin_hides_path_and_query() -> None:
    assert parse_url("https://h.example/reset?token=abc").origin == "https://h.example:443"
