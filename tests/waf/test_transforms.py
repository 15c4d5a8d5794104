"""Transformations, with ModSecurity's byte semantics (values are latin-1 views of bytes)."""

from __future__ import annotations

import pytest

from ramparts.waf._transforms import TRANSFORMS, to_wire


@pytest.mark.parametrize(
    ("name", "given", "want"),
    [
        ("lowercase", "AbC\xc9", "abc\xc9"),  # ASCII only, like C tolower in the C locale
        ("uppercase", "abc\xe9", "ABC\xe9"),
        ("urlDecode", "a%20b+c%zz%4", "a b c%zz%4"),
        ("urlDecodeUni", "%u0041%uFF1C%41+", "A<A "),  # full-width < becomes <
        ("urlDecodeUni", "%u2215", "\x15"),  # other code points keep their low byte
        ("htmlEntityDecode", "&lt;&#x41;&#66&quot;&nbsp;&copy;", '<AB"\xa0&copy;'),
        ("jsDecode", r"\x41\u0042\103\n\q", "ABC\nq"),
        ("cssDecode", r"\61 \62\\", "ab\\"),
        ("escapeSeqDecode", r"\x41\101\n\z", "AA\n\\z"),
        ("cmdLine", "C^a\"t'   /etc;ls , x (y", "cat/etc ls x(y"),
        ("compressWhitespace", "a \t\n\xa0b", "a b"),
        ("removeWhitespace", "a \t\nb\xa0c", "abc"),
        ("removeNulls", "a\0b", "ab"),
        ("replaceNulls", "a\0b", "a b"),
        ("replaceComments", "a/*x*/b/*open", "a b "),
        ("removeComments", "a/*x*/b<!--y-->c--z\nd#e", "abcd"),
        ("removeCommentsChar", "a/*b*/c--d#e<!--f-->", "abcdef"),
        ("normalizePath", "/a/./b/../../c//d/", "/c/d/"),
        ("normalizePath", "a/../../b", "../b"),
        ("normalizePathWin", "\\a\\..\\b", "/b"),
        ("utf8toUnicode", to_wire("é<"), "%u00e9<"),
        ("base64Decode", "aGVsbG8=", "hello"),
        ("base64DecodeExt", "aGV sbG8", "hello"),
        ("base64Encode", "hi", "aGk="),
        ("hexEncode", "AB", "4142"),
        ("hexDecode", "4142", "AB"),
        ("length", "abcd", "4"),
        ("trim", "  a \0", "a"),
        ("trimLeft", "  a ", "a "),
        ("trimRight", "  a ", "  a"),
        ("urlEncode", "a b&", "a+b%26"),
        ("none", "x", "x"),
    ],
)
def test_transformation(name: str, given: str, want: str) -> None:
    assert TRANSFORMS[name.lower()](given) == want


def test_sha1_and_md5_are_raw_digests() -> None:
    assert TRANSFORMS["sha1"]("abc").encode("latin-1").hex().startswith("a9993e36")
    assert TRANSFORMS["md5"]("abc").encode("latin-1").hex() == "900150983cd24fb0d6963f7d28e17f72"


def test_to_wire_is_the_utf8_bytes_one_char_each() -> None:
    assert to_wire("é") == "\xc3\xa9"
    assert to_wire(b"\xff") == "\xff"
    assert to_wire("plain") == "plain"
