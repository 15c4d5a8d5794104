"""The Vault-compatible API over real mTLS: shapes, status codes, policy, audit."""

from __future__ import annotations

import ssl

import httpx
import pytest

from ramparts.events import Outcome

from .conftest import BrokerEnv, sid

pytestmark = pytest.mark.services  # real PostgreSQL behind every broker

ENVELOPE = {
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
}


def test_connection_without_client_certificate_is_refused(broker_env: BrokerEnv) -> None:
    ctx = ssl.create_default_context(cafile=str(broker_env.pki.ca_cert))
    with httpx.Client(base_url=broker_env.url, verify=ctx) as c, pytest.raises(httpx.HTTPError):
        c.get("/v1/sys/health")


def test_health_and_seal_status(broker_env: BrokerEnv) -> None:
    c = broker_env.client("svc-a")
    r = c.get("/v1/sys/health")
    assert r.status_code == 200
    assert r.json()["sealed"] is False and r.json()["initialized"] is True
    s = c.get("/v1/sys/seal-status").json()
    assert s["sealed"] is False and s["type"] == "shamir"


def test_cert_login_gives_a_short_lived_token_bound_to_the_service(broker_env: BrokerEnv) -> None:
    r = broker_env.client("svc-a").post("/v1/auth/cert/login", json={})
    assert r.status_code == 200
    body = r.json()
    assert body.keys() >= ENVELOPE
    auth = body["auth"]
    assert auth["client_token"].startswith("hvs.")
    assert auth["policies"] == ["default", "service-svc-a"]
    assert 0 < auth["lease_duration"] <= 3600 and auth["renewable"] is True
    assert auth["metadata"]["spiffe_id"] == sid("svc-a")
    me = broker_env.client("svc-a", auth["client_token"]).get("/v1/auth/token/lookup-self")
    assert me.status_code == 200
    assert me.json()["data"]["meta"]["service"] == "svc-a"


def test_login_refused_for_identities_outside_the_topology(broker_env: BrokerEnv) -> None:
    for who in ("stranger", "operator"):
        r = broker_env.client(who).post("/v1/auth/cert/login", json={})
        assert r.status_code == 403
        assert r.json() == {"errors": ["permission denied"]}
        assert r.headers["content-type"] == "application/json"
    denies = [e for e in broker_env.sink.events if e.outcome is Outcome.DENY]
    assert [e.peer for e in denies] == [sid("stranger", "elsewhere"), sid("console", "ramparts")]


def test_bad_missing_and_replayed_tokens_are_403(broker_env: BrokerEnv) -> None:
    assert broker_env.client("svc-a").get("/v1/auth/token/lookup-self").status_code == 403
    bad = broker_env.client("svc-a", "hvs.not-a-token").get("/v1/auth/token/lookup-self")
    assert bad.status_code == 403 and bad.json() == {"errors": ["permission denied"]}
    token = broker_env.client("svc-a").post("/v1/auth/cert/login").json()["auth"]["client_token"]
    # svc-b presenting svc-a's token over its own mTLS connection: the token is bound.
    stolen = broker_env.client("svc-b", token).get("/v1/auth/token/lookup-self")
    assert stolen.status_code == 403


def test_kv_v2_versions_cas_and_list(broker_env: BrokerEnv) -> None:
    root = broker_env.root()
    w1 = root.post("/v1/secret/data/svc-a/api", json={"data": {"key": "v1"}})
    assert w1.status_code == 200 and w1.json()["data"]["version"] == 1
    w2 = root.put("/v1/secret/data/svc-a/api", json={"data": {"key": "v2"}, "options": {"cas": 1}})
    assert w2.json()["data"]["version"] == 2
    stale = root.post(
        "/v1/secret/data/svc-a/api", json={"data": {"key": "x"}, "options": {"cas": 1}}
    )
    assert stale.status_code == 400
    assert "check-and-set" in stale.json()["errors"][0]
    create_only = root.post("/v1/secret/data/svc-a/api", json={"data": {}, "options": {"cas": 0}})
    assert create_only.status_code == 400
    root.post("/v1/secret/data/svc-a/nested/deep", json={"data": {"k": "d"}})
    root.post("/v1/secret/data/svc-b/db", json={"data": {"k": "b"}})

    a = broker_env.login("svc-a")
    latest = a.get("/v1/secret/data/svc-a/api").json()["data"]
    assert latest["data"] == {"key": "v2"} and latest["metadata"]["version"] == 2
    assert a.get("/v1/secret/data/svc-a/api?version=1").json()["data"]["data"] == {"key": "v1"}
    listed = a.request("LIST", "/v1/secret/metadata/svc-a")
    assert listed.status_code == 200 and listed.json()["data"]["keys"] == ["api", "nested/"]
    assert a.get("/v1/secret/metadata/svc-a?list=true").json()["data"]["keys"] == ["api", "nested/"]
    missing = a.get("/v1/secret/data/svc-a/nope")
    assert missing.status_code == 404 and missing.json() == {"errors": []}
    # another service's secrets, writes, and the admin surface are out of policy
    assert a.get("/v1/secret/data/svc-b/db").status_code == 403
    assert a.request("LIST", "/v1/secret/metadata/svc-b").status_code == 403
    assert a.post("/v1/secret/data/svc-a/api", json={"data": {"k": "x"}}).status_code == 403
    assert a.get("/v1/database/config/pg").status_code == 403


def test_routing_errors(broker_env: BrokerEnv) -> None:
    root = broker_env.root()
    assert root.get("/v1/no/such/route").status_code == 404
    assert root.delete("/v1/auth/cert/login").status_code == 405
    bad_json = root.post("/v1/secret/data/svc-a/x", content=b"{not json")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["errors"][0]
    # httpx would normalise a literal "..", so send it percent-encoded: the server decodes it
    dotted = root.post("/v1/secret/data/svc-a/%2E%2E/svc-b/x", json={"data": {}})
    assert dotted.status_code == 400 and "invalid request path" in dotted.json()["errors"][0]


def test_audit_events_hmac_secret_values(broker_env: BrokerEnv) -> None:
    root = broker_env.root()
    root.post("/v1/secret/data/svc-a/api", json={"data": {"password": "hunter2-plain"}})
    a = broker_env.login("svc-a")
    a.get("/v1/secret/data/svc-a/api")
    text = "\n".join(e.to_json() for e in broker_env.sink.events)
    assert "hunter2-plain" not in text
    assert broker_env.root_token not in text
    expected = broker_env.broker.auditor.hash_value("hunter2-plain")
    assert expected in text  # an operator holding the value can find where it went
    responses = [
        e
        for e in broker_env.sink.of_type("secrets.response")
        if e.detail.get("path") == "secret/data/svc-a/api"
    ]
    assert len(responses) == 2


def test_request_fails_when_audit_sink_fails(broker_env: BrokerEnv) -> None:
    class Broken:
        def write(self, event: object) -> None:
            raise OSError("disk full")

    root = broker_env.root()
    broker_env.broker.auditor.emitter.add_sink(Broken())
    r = root.post("/v1/secret/data/svc-a/api", json={"data": {"k": "v"}})
    assert r.status_code == 500 and "audit" in r.json()["errors"][0]
    broker_env.broker.auditor.emitter.sinks.pop()
    # nothing was written while the audit sink failed
    assert root.get("/v1/secret/data/svc-a/api").status_code == 404


def test_sealed_store_answers_503_and_unseals_with_key_file(broker_env: BrokerEnv) -> None:
    a = broker_env.login("svc-a")
    broker_env.root().put("/v1/sys/seal")
    assert broker_env.broker.sealed
    r = a.get("/v1/auth/token/lookup-self")
    assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
    assert a.get("/v1/sys/health").status_code == 503
    assert a.get("/v1/sys/seal-status").json()["sealed"] is True
    broker_env.broker.unseal_key_file(broker_env.key_file)
    assert a.get("/v1/auth/token/lookup-self").status_code == 200
