"""Body processors: what ARGS/FILES/XML they produce, and strictness on malformed bodies."""

from __future__ import annotations

from ramparts.waf import WafEngine
from ramparts.waf._bodies import parse_json, parse_multipart, parse_urlencoded, parse_xml

from .conftest import run

B = "multipart/form-data; boundary=XyZ"
FORM = "application/x-www-form-urlencoded"


def test_urlencoded() -> None:
    assert parse_urlencoded("a=1&b&c=%41+b&&d=%zz") == [
        ("a", "1"),
        ("b", ""),
        ("c", "A b"),
        ("d", "%zz"),
    ]


def test_json_names_follow_modsecurity_v3() -> None:
    res = parse_json('{"a": {"b": 1, "c": [true, null, "x"]}, "e": {}}')
    assert res.args == [
        ("json.a.b", "1"),
        ("json.a.c.array_0", "true"),
        ("json.a.c.array_1", ""),
        ("json.a.c.array_2", "x"),
        ("json.e", ""),
    ]
    assert parse_json("{bad").error is not None


def test_json_strings_are_utf8_bytes() -> None:
    assert parse_json('{"n": "\\u00e9"}').args == [("json.n", "\xc3\xa9")]


def test_xml_root_text_and_attributes_and_no_entities() -> None:
    res = parse_xml('<a x="1"><b y="2">hi</b> there</a>')
    assert res.xml == {"/*": ["hi there"], "//@*": ["1", "2"]}
    bomb = '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    assert parse_xml(bomb).error is not None


def _mp(*parts: str, end: str = "--XyZ--\r\n") -> str:
    return "".join(f"--XyZ\r\n{p}\r\n" for p in parts) + end


def test_multipart_fields_files_and_part_headers() -> None:
    body = _mp(
        'Content-Disposition: form-data; name="note"\r\n\r\nhello',
        'Content-Disposition: form-data; name="up"; filename="a\\\\b.php"\r\n'
        "Content-Type: text/plain\r\n\r\n<?php ?>",
    )
    res = parse_multipart(body, B)
    assert res.error is None
    assert res.args == [("note", "hello")]
    assert res.files == [("up", "a\\b.php")]
    assert res.file_sizes == [("up", "8")]
    assert ("up", "Content-Type: text/plain") in res.part_headers
    assert not res.flags.get("MULTIPART_STRICT_ERROR")


def test_multipart_strictness_flags() -> None:
    missing_end = parse_multipart(
        _mp('Content-Disposition: form-data; name="a"\r\n\r\nx', end=""), B
    )
    assert missing_end.flags["MULTIPART_UNMATCHED_BOUNDARY"] == 1
    assert missing_end.error is not None
    before = parse_multipart(
        "junk\r\n" + _mp('Content-Disposition: form-data; name="a"\r\n\r\nx'), B
    )
    assert before.flags["MULTIPART_DATA_BEFORE"] == 1
    assert before.flags["MULTIPART_STRICT_ERROR"] == 1
    quoting = parse_multipart(_mp("Content-Disposition: form-data; name='a'\r\n\r\nx"), B)
    assert quoting.flags["MULTIPART_INVALID_QUOTING"] == 1
    no_boundary = parse_multipart("x", "multipart/form-data")
    assert no_boundary.error is not None


def test_malformed_bodies_are_refused_by_the_engine_settings(builtin_engine: WafEngine) -> None:
    _, v = run(
        builtin_engine, "/api", method="POST", body=b'{"a": ', content_type="application/json"
    )
    assert v is not None and (v.status, v.rule_ids[-1]) == (400, 200002)
    _, v = run(
        builtin_engine,
        "/up",
        method="POST",
        body=_mp('Content-Disposition: form-data; name="a"\r\n\r\nx', end="").encode(),
        content_type=B,
    )
    assert v is not None and v.status == 400


def test_json_args_are_inspected(builtin_engine: WafEngine) -> None:
    _, v = run(
        builtin_engine,
        "/api",
        method="POST",
        body=b'{"user": {"name": "x\' OR \'1\'=\'1"}}',
        content_type="application/json",
    )
    assert v is not None
    assert "ARGS:json.user.name" in v.variables


def test_xml_is_inspected(builtin_engine: WafEngine) -> None:
    _, v = run(
        builtin_engine,
        "/soap",
        method="POST",
        body=b"<r><q>1 UNION SELECT password FROM users</q></r>",
        content_type="text/xml",
    )
    assert v is not None and "XML:/*" in v.variables


def test_json_keys_are_utf8_bytes_too() -> None:
    assert parse_json('{"\\u00e9": 1}').args == [("json.\xc3\xa9", "1")]


def test_content_type_given_with_the_body_selects_the_processor(builtin_engine: WafEngine) -> None:
    tx = builtin_engine.new_transaction("192.0.2.1", "POST", "/f", "1.1", [("Host", "h")])
    assert tx.process_request_headers() is None
    v = tx.process_request_body(b"q=%3Cscript%3Ealert(1)%3C/script%3E", FORM)
    assert v is not None and "ARGS:q" in v.variables
