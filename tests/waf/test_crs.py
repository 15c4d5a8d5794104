"""The engine running the real OWASP CRS: blocking, paranoia levels, outbound rules, modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramparts.events import EventEmitter, MemorySink, Outcome
from ramparts.waf import WafEngine

from .conftest import run


def test_clean_request_passes(crs_engine: WafEngine) -> None:
    tx, v = run(crs_engine, "/v1/accounts/0123456789/statements?from=2024-01-01&page=2")
    assert v is None
    assert tx.matched_rule_ids == []


def test_sqli_is_blocked_by_anomaly_score(crs_engine: WafEngine) -> None:
    _, v = run(crs_engine, "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--")
    assert v is not None and v.status == 403
    assert 942100 in v.rule_ids and 949110 in v.rule_ids
    assert v.anomaly_score >= 5
    assert "ARGS:q" in v.variables


@pytest.mark.parametrize("uri", ["/get?var=blahblah&var2=LIKE%20NULL", "/get?a=b,1=1"])
def test_paranoia_level_two_rules_fire_only_at_pl2(crs_dir: Path, uri: str) -> None:
    pl1 = WafEngine.load(crs_path=crs_dir, paranoia_level=1, builtin_rules=False)
    pl2 = WafEngine.load(crs_path=crs_dir, paranoia_level=2, builtin_rules=False)
    tx1, v1 = run(pl1, uri)
    tx2, v2 = run(pl2, uri)
    assert v1 is None and tx1.matched_rule_ids == []
    assert v2 is not None and 949110 in v2.rule_ids
    assert any(942000 < r < 943000 for r in tx2.matched_rule_ids)


def test_outbound_sql_error_leak_is_blocked(crs_engine: WafEngine) -> None:
    tx, v = run(crs_engine, "/report?id=7")
    assert v is None
    assert tx.process_response_headers(500, [("Content-Type", "text/html")]) is None
    v = tx.process_response_body(
        b"<b>Warning</b>: mysql_fetch_array() expects parameter 1 to be resource, "
        b"boolean given in /var/www/html/report.php on line 12: You have an error in "
        b"your SQL syntax; check the manual that corresponds to your MySQL server version"
    )
    assert v is not None and v.status == 403
    assert 959100 in v.rule_ids
    assert any(951000 <= r < 952000 for r in v.rule_ids)


def test_detect_mode_with_crs_emits_detected(crs_dir: Path) -> None:
    sink = MemorySink()
    engine = WafEngine.load(
        crs_path=crs_dir, mode="detect", emitter=EventEmitter([sink], service="gateway")
    )
    tx, v = run(engine, "/?q=%3Cscript%3Ealert(1)%3C/script%3E")
    assert v is None
    assert 941100 in tx.matched_rule_ids
    assert [(e.type, e.outcome) for e in sink.events] == [("waf.detected", Outcome.ALLOW)]
    assert "alert(1)" not in repr(sink.events[0].detail)


def test_threshold_setting(crs_dir: Path) -> None:
    lenient = WafEngine.load(crs_path=crs_dir, inbound_threshold=100, builtin_rules=False)
    tx, v = run(lenient, "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--")
    assert v is None and 942100 in tx.matched_rule_ids


def test_crs_path_must_be_a_checkout(tmp_path: Path) -> None:
    from ramparts.waf import WafLoadError

    with pytest.raises(WafLoadError, match="not a CRS checkout"):
        WafEngine.load(crs_path=tmp_path)


def test_pathological_value_is_bounded_and_refused(crs_engine: WafEngine) -> None:
    """A long run of quotes makes several CRS patterns quadratic: the search is cut
    short, TX:MSC_PCRE_LIMITS_EXCEEDED is flagged and rule 200005 refuses the request,
    as ModSecurity does when SecPcreMatchLimit is hit."""
    body = b"x=" + b"'" * 20000
    tx, v = run(
        crs_engine, "/", method="POST", body=body, content_type="application/x-www-form-urlencoded"
    )
    assert tx.tx.get("msc_pcre_limits_exceeded") == "1"
    assert v is not None and 200005 in v.rule_ids
