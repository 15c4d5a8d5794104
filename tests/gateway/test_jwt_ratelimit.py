"""The JWT and rate-limit stages with the real ramparts.jwt and ramparts.ratelimit."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from tests.gateway.conftest import Client

ISSUER = "https://idp.test"


@dataclass
class JWTSetup:
    key: RSAKey
    jwks_path: Path

    def token(
        self,
        sub: str = "alice",
        scope: str = "accounts:read payments:write",
        exp_in: int = 300,
        aud: str = "api",
    ) -> str:
        claims = {
            "iss": ISSUER,
            "aud": aud,
            "sub": sub,
            "exp": int(time.time()) + exp_in,
            "scope": scope,
        }
        return jose_jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)

    def topology(self, accounts_port: int, payments_port: int) -> str:
        return f"""
version: 1
trust_domain: test.local
namespace: test
services:
  accounts:
    listen: 127.0.0.1:{accounts_port}
  payments:
    listen: 127.0.0.1:{payments_port}
gateway:
  listen: 127.0.0.1:8443
  plain_http: true
  issuers:
    - issuer: {ISSUER}
      jwks: {self.jwks_path}
      algorithms: [RS256]
      audiences: [api]
  routes:
    - prefix: /v1/accounts
      service: accounts
      scopes: [accounts:read]
    - prefix: /v1/payments
      service: payments
      scopes: [payments:write]
      rate_limit: {{rate: 2/min, burst: 2, key: subject}}
    - prefix: /v1/open
      service: accounts
      auth: none
      rate_limit: {{rate: 1/min, burst: 1, key: ip}}
"""


def jwt_setup() -> JWTSetup:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    folder = Path(tempfile.mkdtemp(prefix="gw-jwks-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return JWTSetup(key, path)


SETUP = jwt_setup()


def _gw(make_gateway, upstream, upstream2):
    return make_gateway(SETUP.topology(upstream.port, upstream2.port))


def test_valid_token_passes_and_identity_goes_downstream(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    # JWTValidator + in-memory limiter: driven without a task; the first request
    # still suspends (the JWKS file is read in a task of the validator's own).
    assert gw.gateway.state.pipeline.eager["/v1/payments"] is True
    c = Client(gw.port)
    status, headers, body = c.request(
        "GET", "/v1/accounts/1", [("Authorization", f"Bearer {SETUP.token()}")]
    )
    assert status == 200, body
    got = upstream.last()
    assert got.header("x-ramparts-subject") == "alice"
    assert got.header("x-ramparts-scopes") == "accounts:read payments:write"
    assert got.header("x-ramparts-issuer") == ISSUER
    assert "authorization" not in got.names()
    line = next(x for x in gw.access_lines() if x["correlation_id"] == headers["x-request-id"])
    assert line["subject"] == "alice"


def test_forged_identity_header_is_replaced_by_the_verified_one(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    c.request(
        "GET",
        "/v1/accounts",
        [("Authorization", f"Bearer {SETUP.token()}"), ("X-Ramparts-Subject", "admin")],
    )
    assert upstream.last().header("x-ramparts-subject") == "alice"


def test_missing_token_is_401_with_event(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    status, headers, _ = c.request("GET", "/v1/accounts")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    events = gw.sink.of_type("jwt.rejected")
    assert len(events) == 1
    assert events[0].reason == "missing bearer token"
    assert events[0].correlation_id == headers["x-request-id"]
    assert upstream.connections == 0


def test_bad_signature_is_401_with_one_event(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    claims = {"iss": ISSUER, "aud": "api", "sub": "mallory", "exp": int(time.time()) + 60}
    forged = jose_jwt.encode({"alg": "RS256", "kid": "k1"}, claims, other)
    c = Client(gw.port)
    status, headers, _ = c.request("GET", "/v1/accounts", [("Authorization", f"Bearer {forged}")])
    assert status == 401
    events = gw.sink.of_type("jwt.rejected")
    assert len(events) == 1
    assert events[0].detail["reason_code"] == "bad_signature"
    assert events[0].correlation_id == headers["x-request-id"]
    assert upstream.connections == 0


def test_expired_token_is_401(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    status, _, body = c.request(
        "GET", "/v1/accounts", [("Authorization", f"Bearer {SETUP.token(exp_in=-3600)}")]
    )
    assert status == 401
    assert b"not valid at this time" in body
    assert gw.sink.of_type("jwt.rejected")[0].detail["reason_code"] == "expired"


def test_missing_scope_is_403(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    status, headers, _ = c.request(
        "GET", "/v1/accounts", [("Authorization", f"Bearer {SETUP.token(scope='x')}")]
    )
    assert status == 403
    assert 'error="insufficient_scope"' in headers["www-authenticate"]
    assert upstream.connections == 0


def test_rate_limit_by_subject_429_with_headers_and_event(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    auth = [("Authorization", f"Bearer {SETUP.token()}")]
    statuses = [c.request("GET", "/v1/payments", auth) for _ in range(3)]
    assert [s for s, _, _ in statuses] == [200, 200, 429]
    assert "ratelimit" in statuses[0][1]
    denied_headers = statuses[2][1]
    assert int(denied_headers["retry-after"]) >= 1
    events = gw.sink.of_type("ratelimit.exceeded")
    assert len(events) == 1
    assert events[0].correlation_id == denied_headers["x-request-id"]
    assert events[0].detail["key_kind"] == "subject"
    assert len(upstream2.requests) == 2
    # Another subject has its own budget.
    other = [("Authorization", f"Bearer {SETUP.token(sub='bob')}")]
    assert c.request("GET", "/v1/payments", other)[0] == 200


def test_rate_limit_by_ip_on_open_route(make_gateway, upstream, upstream2):
    gw = _gw(make_gateway, upstream, upstream2)
    c = Client(gw.port)
    assert c.request("GET", "/v1/open")[0] == 200
    assert c.request("GET", "/v1/open")[0] == 429
    assert gw.sink.of_type("ratelimit.exceeded")[0].detail["key_kind"] == "ip"
