"""Rule-engine semantics: variables, setvar/macros, chains, flow, ctl, modes, events."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ramparts.events import MemorySink, Outcome
from ramparts.waf import WafEngine

H = [("Host", "h"), ("Cookie", "sid=abc; theme=dark")]


def go(engine: WafEngine, uri: str = "/", body: bytes = b"", ct: str | None = None, **kw):
    headers = list(H)
    if ct:
        headers.append(("Content-Type", ct))
    tx = engine.new_transaction("192.0.2.7", kw.pop("method", "GET"), uri, "1.1", headers, **kw)
    v = tx.process_request_headers()
    if v is None:
        v = tx.process_request_body(body, ct)
    return tx, v


def test_variables_and_selectors(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRule ARGS:id "@streq 7" "id:1,phase:2,pass,log"\n'
        'SecRule ARGS:/^fi/ "@streq x" "id:2,phase:2,pass,log"\n'
        'SecRule ARGS|!ARGS:id "@streq 7" "id:3,phase:2,pass,log"\n'
        'SecRule &ARGS "@eq 3" "id:4,phase:2,pass,log"\n'
        'SecRule ARGS_NAMES "@streq filter" "id:5,phase:2,pass,log"\n'
        'SecRule REQUEST_COOKIES:theme "@streq dark" "id:6,phase:1,pass,log"\n'
        'SecRule REQUEST_COOKIES_NAMES "@streq sid" "id:7,phase:1,pass,log"\n'
        'SecRule REQUEST_HEADERS:HOST "@streq h" "id:8,phase:1,pass,log"\n'
        'SecRule REQUEST_BASENAME "@streq b c.php" "id:9,phase:1,pass,log"\n'
        'SecRule REQUEST_FILENAME "@streq /a/b c.php" "id:10,phase:1,pass,log"\n'
        'SecRule QUERY_STRING "@contains id=7" "id:11,phase:1,pass,log"\n'
        'SecRule REQUEST_LINE "@beginsWith GET /a/" "id:12,phase:1,pass,log"\n'
        'SecRule &ARGS:nope "@eq 0" "id:13,phase:2,pass,log"\n'
        'SecRule REQUEST_METHOD "@streq GET" "id:14,phase:1,pass,log"\n'
        'SecRule REQUEST_PROTOCOL "@streq HTTP/1.1" "id:15,phase:1,pass,log"\n'
    )
    tx, _ = go(engine, "/a/b%20c.php?id=7&filter=x&other=7")
    assert tx.matched_rule_ids == [6, 7, 8, 9, 10, 11, 12, 14, 15, 1, 2, 3, 4, 5, 13]


def test_setvar_arithmetic_delete_and_macros(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=10,setvar:tx.b=+5,setvar:tx.a=-3,'
        "setvar:tx.c=x,setvar:!tx.c,setvar:'tx.host_%{request_headers.host}=%{tx.a}'\"\n"
        'SecRule ARGS "@rx ." "id:2,phase:2,pass,nolog,setvar:tx.hits=+1,'
        "setvar:'tx.last=%{MATCHED_VAR_NAME}'\"\n"
    )
    tx, _ = go(engine, "/?p=1&q=2")
    assert tx.tx["a"] == "7"
    assert tx.tx["b"] == "5"
    assert "c" not in tx.tx
    assert tx.tx["host_h"] == "7"
    assert tx.tx["hits"] == "2"  # setvar runs once per matched value, as in ModSecurity
    assert tx.tx["last"] == "ARGS:q"


def test_chain_sees_parent_matches_and_only_full_chain_counts(
    make_engine: Callable[..., WafEngine],
) -> None:
    engine = make_engine(
        'SecRule ARGS "@rx ^\\d+$" "id:1,phase:2,pass,log,chain"\n'
        '    SecRule MATCHED_VARS_NAMES "@streq ARGS:n" "setvar:tx.ok=1"\n'
        'SecRule ARGS "@rx ^\\d+$" "id:2,phase:2,pass,log,chain"\n'
        '    SecRule MATCHED_VAR "@streq 99" "setvar:tx.never=1"\n'
    )
    tx, _ = go(engine, "/?n=5&s=x")
    assert tx.matched_rule_ids == [1]
    assert tx.tx.get("ok") == "1"
    assert "never" not in tx.tx


def test_skip_after_and_skip(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecAction "id:1,phase:1,pass,nolog,skipAfter:END"\n'
        'SecAction "id:2,phase:1,pass,log"\n'
        "SecMarker END\n"
        'SecAction "id:3,phase:1,pass,log,skip:1"\n'
        'SecAction "id:4,phase:1,pass,log"\n'
        'SecAction "id:5,phase:1,pass,log"\n'
    )
    tx, _ = go(engine)
    assert tx.matched_rule_ids == [3, 5]


def test_ctl_rule_remove_and_target_removal(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRule REQUEST_FILENAME "@streq /login" "id:1,phase:1,pass,nolog,'
        'ctl:ruleRemoveById=10-11,ctl:ruleRemoveTargetById=12;ARGS:password"\n'
        'SecRule ARGS "@contains \'" "id:10,phase:2,pass,log"\n'
        'SecRule ARGS "@contains \'" "id:11,phase:2,pass,log"\n'
        'SecRule ARGS "@contains \'" "id:12,phase:2,pass,log"\n'
    )
    tx, _ = go(engine, "/login?password=a'b")
    assert tx.matched_rule_ids == []
    tx, _ = go(engine, "/other?password=a'b")
    assert tx.matched_rule_ids == [10, 11, 12]


def test_multimatch_checks_every_stage(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRule ARGS "@streq A" "id:1,phase:2,pass,log,t:lowercase"\n'
        'SecRule ARGS "@streq A" "id:2,phase:2,pass,log,t:lowercase,multiMatch"\n'
    )
    tx, _ = go(engine, "/?x=A")
    assert tx.matched_rule_ids == [2]


def test_deny_status_verdict_and_event_without_values(
    make_engine: Callable[..., WafEngine], sink: MemorySink
) -> None:
    engine = make_engine(
        'SecRule ARGS "@contains secret-attack" "id:77,phase:2,deny,status:406,'
        "msg:'bad %{MATCHED_VAR}',setvar:tx.blocking_inbound_anomaly_score=+5\"\n"
    )
    tx, v = go(engine, "/?card=secret-attack")
    assert v is not None
    assert (v.status, v.rule_ids, v.variables, v.anomaly_score) == (406, (77,), ("ARGS:card",), 5)
    assert v.enforced and tx.interrupted
    (event,) = sink.events
    assert (event.type, event.outcome) == ("waf.blocked", Outcome.DENY)
    assert event.detail["rule_ids"] == [77]
    assert event.detail["messages"] == ["bad %{MATCHED_VAR}"]
    assert "secret-attack" not in repr(event)
    # Later phases report the same verdict and do not run again.
    assert tx.process_response_headers(200, []) is v


def test_detect_mode_records_but_does_not_block(
    make_engine: Callable[..., WafEngine], sink: MemorySink
) -> None:
    engine = make_engine('SecRule ARGS "@contains x" "id:5,phase:1,deny"\n', mode="detect")
    tx, v = go(engine, "/?a=x")
    assert v is None
    assert tx.verdict is not None and not tx.verdict.enforced
    assert [(e.type, e.outcome) for e in sink.events] == [("waf.detected", Outcome.ALLOW)]
    # A per-transaction mode overrides the engine's.
    _, v = go(engine, "/?a=x", mode="block")
    assert v is not None and v.status == 403


def test_block_uses_the_phase_default_action(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecDefaultAction "phase:2,log,deny,status:451"\n'
        'SecRule ARGS "@contains x" "id:5,phase:2,block"\n'
    )
    _, v = go(engine, "/?a=x")
    assert v is not None and v.status == 451


def test_allow_stops_later_rules(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRule REMOTE_ADDR "@ipMatch 192.0.2.7" "id:1,phase:1,allow,nolog"\n'
        'SecRule ARGS "@contains x" "id:2,phase:2,deny"\n'
    )
    _, v = go(engine, "/?a=x")
    assert v is None


def test_rule_engine_off_and_detection_only(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        'SecRuleEngine DetectionOnly\nSecRule ARGS "@contains x" "id:2,phase:2,deny"\n'
    )
    tx, v = go(engine, "/?a=x")
    assert v is None and tx.matched_rule_ids == [2]
    engine = make_engine('SecRuleEngine Off\nSecRule ARGS "@contains x" "id:2,phase:2,deny"\n')
    tx, v = go(engine, "/?a=x")
    assert v is None and tx.matched_rule_ids == []


def test_response_phases(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine(
        "SecResponseBodyAccess On\n"
        'SecRule RESPONSE_STATUS "@streq 500" "id:1,phase:3,pass,log"\n'
        'SecRule RESPONSE_HEADERS:X-Debug "@streq 1" "id:2,phase:3,pass,log"\n'
        'SecRule RESPONSE_BODY "@contains ORA-00933" "id:3,phase:4,deny,status:502"\n'
    )
    tx, _ = go(engine)
    assert (
        tx.process_response_headers(500, [("X-Debug", "1"), ("Content-Type", "text/html")]) is None
    )
    v = tx.process_response_body(b"<p>ORA-00933: SQL command not properly ended</p>")
    assert v is not None and v.status == 502
    assert tx.matched_rule_ids == [1, 2, 3]


def test_request_body_limit_rejects(make_engine: Callable[..., WafEngine]) -> None:
    engine = make_engine("SecRequestBodyNoFilesLimit 10\nSecRequestBodyLimitAction Reject\n")
    _, v = go(
        engine, "/", body=b"a=" + b"x" * 20, ct="application/x-www-form-urlencoded", method="POST"
    )
    assert v is not None and v.status == 413


@pytest.mark.parametrize("mode", ["nope", ""])
def test_bad_mode_is_refused(builtin_engine: WafEngine, mode: str) -> None:
    with pytest.raises(ValueError, match="mode"):
        builtin_engine.new_transaction("192.0.2.1", "GET", "/", "1.1", [], mode=mode or "x")


def test_shared_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from ramparts.waf import _engine

    monkeypatch.setattr(_engine, "_MEMO_LIMIT", 300)
    engine = WafEngine.load()
    peak = 0
    for i in range(400):
        tx = engine.new_transaction(
            "192.0.2.1", "GET", f"/?a={i}&b=x{i}&c=y{i}&d=z{i}", "1.1", [("Host", f"h{i}")]
        )
        tx.process_request_headers()
        tx.process_request_body(b"")
        peak = max(peak, len(engine.shared_tcache), len(engine.shared_hcache))
    # Each transaction adds a few dozen entries; without clearing there would be thousands.
    assert 300 < peak < 600
