"""The SecLang loader: syntax, and refusing what it cannot evaluate (file and line named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramparts.waf import WafLoadError
from ramparts.waf._rules import load_rules
from ramparts.waf._seclang import Directive, parse_text, split_actions, split_variables

D = Directive("SecRule", (), "x.conf", 1)


def load_text(tmp_path: Path, text: str, **kw: object):
    p = tmp_path / "r.conf"
    p.write_text(text)
    return load_rules([p], **kw)  # type: ignore[arg-type]


def test_line_continuations_quotes_and_comments() -> None:
    text = (
        "# a comment\n"
        'SecRule ARGS "@rx a\\"b c" \\\n'
        '    "id:1,\\\n'
        "    phase:2,pass,msg:'x, y'\"\n"
        "\n"
        "SecMarker END\n"
    )
    ds = parse_text(text, "f.conf")
    assert [(d.name, d.line) for d in ds] == [("SecRule", 2), ("SecMarker", 6)]
    assert ds[0].args == ("ARGS", '@rx a"b c', "id:1,    phase:2,pass,msg:'x, y'")


def test_split_actions_keeps_quoted_commas_and_colons() -> None:
    acts = split_actions(
        "id:1, msg:'a, b: c',ctl:ruleRemoveTargetById=942100;ARGS:pw,setvar:'tx.x=+%{tx.y}',pass",
        D,
    )
    assert acts == [
        ("id", "1"),
        ("msg", "a, b: c"),
        ("ctl", "ruleRemoveTargetById=942100;ARGS:pw"),
        ("setvar", "tx.x=+%{tx.y}"),
        ("pass", None),
    ]


def test_split_variables_regex_selectors_and_xpath() -> None:
    assert split_variables("ARGS|!ARGS:/a|b/|XML:/*|XML://@*|&TX:x", D) == [
        "ARGS",
        "!ARGS:/a|b/",
        "XML:/*",
        "XML://@*",
        "&TX:x",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("SecFooBar On\n", "unsupported directive SecFooBar"),
        ('SecRule ARGS "@geoLookup" "id:1,pass"\n', "unsupported operator @geoLookup"),
        ('SecRule NOPE "@rx a" "id:1,pass"\n', "unsupported variable NOPE"),
        ('SecRule ARGS "@rx a" "id:1,pass,t:rot13"\n', "unsupported transformation t:rot13"),
        ('SecRule ARGS "@rx a" "id:1,pass,exec:/bin/x"\n', "unsupported action exec"),
        ('SecRule ARGS "@rx a" "id:1,pass,ctl:fooBar=1"\n', "unsupported ctl:fooBar"),
        ('SecRule ARGS "@rx (" "id:1,pass"\n', "does not compile"),
        ('SecRule XML:/a/b "@rx a" "id:1,pass"\n', "unsupported XPath"),
        ('SecRule REQUEST_METHOD:x "@rx a" "id:1,pass"\n', "takes no selector"),
        ('SecRule ARGS "@rx a" "phase:2,pass"\n', "rule has no id"),
        ('SecRule ARGS "@rx a" "id:1,pass"\nSecRule ARGS "@rx b" "id:1,pass"\n', "duplicate"),
        ('SecRule ARGS "@rx a" "id:1,pass,skipAfter:NOWHERE"\n', "no marker"),
        ('SecRule ARGS "@rx a" "id:1,pass,chain"\n', "chain"),
        ('SecRule ARGS "@rx a" "id:1,chain"\nSecRule ARGS "@rx b" "deny"\n', "inside a chain"),
        ('SecRule ARGS "@pmFromFile missing.data" "id:1,pass"\n', "cannot read data file"),
        ("SecRuleEngine Maybe\n", "SecRuleEngine takes"),
    ],
)
def test_unsupported_or_invalid_is_an_error_naming_file_and_line(
    tmp_path: Path, text: str, fragment: str
) -> None:
    with pytest.raises(WafLoadError) as info:
        load_text(tmp_path, "# header\n" + text)
    assert fragment in str(info.value)
    assert info.value.file.endswith("r.conf")
    assert info.value.line >= 2


def test_collect_mode_reports_every_problem(tmp_path: Path) -> None:
    rs = load_text(
        tmp_path,
        'SecRule ARGS "@rx a" "id:1,pass,t:rot13"\nSecBogus x\nSecRule ARGS "@rx b" "id:2,pass"\n',
        collect_errors=True,
    )
    assert [(e.line, e.message.split()[0]) for e in rs.errors] == [
        (1, "unsupported"),
        (2, "unsupported"),
    ]
    assert [r.id for r in rs.rules] == [2]


def test_include_and_data_file_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "words.data").write_text("# comment\nalpha\nbeta\n")
    (tmp_path / "sub" / "inner.conf").write_text(
        'SecRule ARGS "@pmFromFile words.data" "id:7,phase:2,pass"\n'
    )
    (tmp_path / "main.conf").write_text("Include sub/*.conf\n")
    rs = load_rules([tmp_path / "main.conf"])
    assert [r.id for r in rs.rules] == [7]


def test_default_actions_phase_and_block(tmp_path: Path) -> None:
    rs = load_text(
        tmp_path,
        'SecDefaultAction "phase:2,log,deny,status:418"\n'
        'SecRule ARGS "@rx a" "id:1,phase:2,block,t:lowercase"\n'
        'SecRule ARGS "@rx a" "id:2,phase:1,block"\n',
    )
    r1, r2 = rs.rules
    assert (r1.block_action, r1.block_status, r1.transforms) == ("deny", 418, ("lowercase",))
    assert r2.block_action == "pass"  # no default for phase 1


def test_remove_and_update_directives(tmp_path: Path) -> None:
    rs = load_text(
        tmp_path,
        'SecRule ARGS "@rx a" "id:10,pass,tag:foo"\n'
        'SecRule ARGS "@rx a" "id:11,pass"\n'
        'SecRule ARGS "@rx a" "id:12,pass"\n'
        "SecRuleRemoveById 11\n"
        "SecRuleRemoveByTag foo\n"
        'SecRuleUpdateTargetById 12 "!ARGS:pw|REQUEST_HEADERS:X"\n',
    )
    (r,) = rs.rules
    assert r.id == 12
    assert [t.text for t in r.targets] == ["ARGS", "REQUEST_HEADERS:X"]
    assert [t.text for t in r.exclusions] == ["!ARGS:pw"]


def test_crs_loads_whole(crs_dir: Path) -> None:
    rs = load_rules([crs_dir / "crs-setup.conf.example", crs_dir / "rules"])
    assert not rs.errors
    assert sum(1 for r in rs.rules if r.marker is None) > 600


def test_removals_and_updates_apply_wherever_written(tmp_path: Path) -> None:
    rs = load_text(
        tmp_path,
        "SecRuleRemoveById 11\n"
        'SecRuleUpdateTargetById 12 "!ARGS:pw"\n'
        'SecRule ARGS "@rx a" "id:11,pass"\n'
        'SecRule ARGS "@rx a" "id:12,pass"\n',
    )
    (r,) = rs.rules
    assert r.id == 12 and [t.text for t in r.exclusions] == ["!ARGS:pw"]


def test_update_of_a_missing_rule_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WafLoadError, match="no rule 99"):
        load_text(tmp_path, 'SecRuleUpdateTargetById 99 "!ARGS:pw"\n')


def test_collect_mode_skips_the_links_of_a_failed_chain(tmp_path: Path) -> None:
    rs = load_text(
        tmp_path,
        'SecRule REMOTE_ADDR "@rbl x.example" "id:1,pass,chain"\n'
        '    SecRule TX:a "@rx b" "chain"\n'
        '        SecRule TX:c "@rx d" "t:none"\n'
        'SecRule ARGS "@rx b" "id:2,pass"\n',
        collect_errors=True,
    )
    assert [e.message for e in rs.errors] == ["unsupported operator @rbl"]
    assert [r.id for r in rs.rules] == [2]
