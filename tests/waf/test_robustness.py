"""Arbitrary bytes anywhere in a request never crash the engine (a crash would fail closed)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ramparts.waf import WafEngine

CTYPES = [
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=b",
    'multipart/form-data; boundary="b"',
    "application/json",
    "text/xml",
    "text/plain",
    "",
]
junk = st.binary(max_size=200)
bodyish = st.one_of(
    junk,
    st.builds(
        lambda a, b: (
            b"--b\r\nContent-Disposition: form-data; " + a + b"\r\n\r\n" + b + b"\r\n--b--"
        ),
        junk,
        junk,
    ),
    st.builds(lambda a: b'{"k": ' + a + b"}", junk),
    st.builds(lambda a: b"<r a='" + a + b"'>" + a + b"</r>", junk),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    uri=junk,
    header=junk,
    body=bodyish,
    ctype=st.sampled_from(CTYPES),
    method=st.sampled_from(["GET", "POST", "PUT", "X\x00"]),
)
def test_engine_survives_garbage(
    crs_engine: WafEngine, *, uri: bytes, header: bytes, body: bytes, ctype: str, method: str
) -> None:
    headers = [
        (b"Host", b"h"),
        (b"X-J", header),
        (b"Cookie", header),
        (b"Content-Type", ctype.encode()),
    ]
    tx = crs_engine.new_transaction("192.0.2.1", method, b"/" + uri, "1.1", headers)
    v = tx.process_request_headers()
    if v is None:
        v = tx.process_request_body(body, ctype)
    if v is None:
        tx.process_response_headers(200, [(b"Content-Type", b"text/html"), (b"X", header)])
        tx.process_response_body(body)
