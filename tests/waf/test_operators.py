"""Operators through real rules: each must match what it should and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ramparts.waf import WafEngine


def fires(
    make_engine: Callable[..., WafEngine], op: str, value: str, target: str = "ARGS:v"
) -> bool:
    engine = make_engine(f'SecRule {target} "{op}" "id:100,phase:2,pass,log,capture"\n')
    tx = engine.new_transaction("192.0.2.1", "GET", "/?v=" + value, "1.1", [("Host", "h")])
    tx.process_request_headers()
    tx.process_request_body(b"")
    return 100 in tx.matched_rule_ids


@pytest.mark.parametrize(
    ("op", "value", "want"),
    [
        ("@rx ^a.c$", "abc", True),
        ("@rx ^a.c$", "abcd", False),
        ("!@rx ^a", "bcd", True),
        ("!@rx ^a", "abc", False),
        ("@rx (?i)SELECT", "select", True),
        ("@rx \\x{e9}", "%e9", True),  # a byte, as PCRE without UTF mode
        ("@rx ^\\w+$", "%e9", False),  # \\w is ASCII-only
        ("@rx ^(?i)up", "UPLOAD", True),  # mid-pattern flag group
        ("@rx a\\z", "a", True),
        ("@pm foo bar", "xxBARxx", True),
        ("@pm foo bar", "baz", False),
        ("@contains oo", "foo", True),
        ("@contains zz", "foo", False),
        ("@streq foo", "foo", True),
        ("@streq foo", "food", False),
        ("@beginsWith fo", "foo", True),
        ("@beginsWith oo", "foo", False),
        ("@endsWith oo", "foo", True),
        ("@endsWith fo", "foo", False),
        ("@within GET POST", "POST", True),
        ("@within GET POST", "PUT", False),
        ("@containsWord bar", "foo bar baz", True),
        ("@containsWord bar", "foobarbaz", False),
        ("@eq 5", "5", True),
        ("@eq 5", "6", False),
        ("@ge 5", "5", True),
        ("@gt 5", "5", False),
        ("@le 5", "5", True),
        ("@lt 5", "4", True),
        ("@lt 5", "x", True),  # not a number reads as 0, like atoi
        ("@validateByteRange 48-57", "123", False),
        ("@validateByteRange 48-57", "12a", True),
        ("@validateUrlEncoding", "a%2", True),
        ("@validateUrlEncoding", "a%2541", False),  # ARGS are decoded once: a%41
        ("@validateUtf8Encoding", "%c3%a9", False),
        ("@validateUtf8Encoding", "%c3%28", True),
        ("@validateUtf8Encoding", "%c0%af", True),  # overlong
        ("@detectSQLi", "1%27%20or%20%271%27=%271", True),
        ("@detectSQLi", "hello%20world", False),
        ("@detectXSS", "%3Cscript%3Ealert(1)%3C/script%3E", True),
        ("@detectXSS", "a%20%3C%20b", False),
        ("@unconditionalMatch", "anything", True),
        ("@noMatch", "anything", False),
    ],
)
def test_operator(make_engine: Callable[..., WafEngine], op: str, value: str, want: bool) -> None:
    assert fires(make_engine, op, value) is want


def test_ip_match(make_engine: Callable[..., WafEngine]) -> None:
    rule = "@ipMatch 10.0.0.0/8,192.0.2.1,2001:db8::/32"
    assert fires(make_engine, rule, "x", target="REMOTE_ADDR")  # 192.0.2.1
    engine = make_engine('SecRule REMOTE_ADDR "@ipMatch 10.0.0.0/8" "id:100,phase:1,pass,log"\n')
    tx = engine.new_transaction("192.0.2.1", "GET", "/", "1.1", [("Host", "h")])
    tx.process_request_headers()
    assert tx.matched_rule_ids == []


def test_rx_with_macro_argument(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecAction "id:1,phase:1,pass,nolog,setvar:tx.word=sec.et"\n'
        'SecRule ARGS "@rx ^%{tx.word}$" "id:100,phase:2,pass,log"\n'
    )
    tx = engine.new_transaction("192.0.2.1", "GET", "/?a=secret", "1.1", [("Host", "h")])
    tx.process_request_headers()
    tx.process_request_body(b"")
    assert tx.matched_rule_ids == [100]


def test_capture_sets_tx_groups(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRule ARGS:v "@rx (\\d+)-(\\d+)" "id:100,phase:2,pass,nolog,capture,'
        'setvar:tx.sum=%{tx.1}%{tx.2}"\n'
    )
    tx = engine.new_transaction("192.0.2.1", "GET", "/?v=x12-34y", "1.1", [("Host", "h")])
    tx.process_request_headers()
    tx.process_request_body(b"")
    assert (tx.tx["0"], tx.tx["1"], tx.tx["2"], tx.tx["sum"]) == ("12-34", "12", "34", "1234")


@pytest.mark.parametrize(
    ("pattern", "value", "want"),
    [
        # PCRE lookbehinds with branches of different widths (CRS 3.x uses them).
        (r"(?<!&(?:[aou]uml)|&(?:amp));", "x&amp;", False),
        (r"(?<!&(?:[aou]uml)|&(?:amp));", "x&ouml;", False),
        (r"(?<!&(?:[aou]uml)|&(?:amp));", "x;", True),
        (r"(?<=ab|c)x", "cx", True),
        (r"(?<=ab|c)x", "bx", False),
        (r"[[:alpha:]]+[[:digit:]]", "ab1", True),
        (r"\h", "a\tb", True),
    ],
)
def test_pcre_spellings(pattern: str, value: str, want: bool) -> None:
    from ramparts.waf._regex import compile_pcre

    assert (compile_pcre(pattern).search(value) is not None) is want
