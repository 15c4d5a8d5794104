"""R3: hard-coded secrets — fires on literals, silent on references and interpolation."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.review.conftest import deployment, rules_of


def _pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PASSWORD", "hunter2"),
        ("JWT_SIGNING_SECRET", "correct-horse-battery-staple"),
        ("WEBHOOK_TOKEN", "abc123def456"),
        ("ANYTHING", "AKIAIOSFODNN7EXAMPLE"),
    ],
)
def test_literal_env_secret_fires(scan_yaml, name, value):
    env = f"""            - name: {name}
              value: "{value}"
"""
    r = scan_yaml(deployment("payments", env=env))
    (f,) = [f for f in r.findings if f.risk == "R3"]
    assert f.rule == "R3.env-literal" and f.line == 18
    assert name in f.message and value not in f.message  # never echo the secret


@pytest.mark.parametrize(
    "entry",
    [
        "- name: DB_PASSWORD\n  valueFrom: {secretKeyRef: {name: db, key: password}}",
        "- name: DB_PASSWORD\n  value: ${DB_PASSWORD}",
        "- name: DB_PASSWORD\n  value: $(VAULT_DB_PASSWORD)",
        "- name: DB_PASSWORD_FILE\n  value: /vault/secrets/db-password",
        "- name: API_KEY\n  value: vault:secret/data/payments#api_key",
        "- name: API_KEY\n  value: ref+awssecrets://payments/api-key",
        "- name: TOKEN_TTL\n  value: '300'",
        "- name: DATABASE_URL\n  value: postgres://payments:${DB_PASSWORD}@db/payments",
    ],
)
def test_references_and_interpolation_are_silent(scan_yaml, entry):
    env = "".join(f"            {line}\n" for line in entry.splitlines())
    r = scan_yaml(deployment("payments", env=env))
    assert rules_of(r, "R3") == []


def test_configmap_secret_and_connection_string(scan_yaml):
    cm = """apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: bank}
data:
  LOG_LEVEL: debug
  SMTP_PASSWORD: p4ssw0rd
  DATABASE_URL: mysql://app:letmein@mysql:3306/app
"""
    r = scan_yaml(cm)
    got = sorted((f.rule, f.line) for f in r.findings if f.risk == "R3")
    assert got == [("R3.configmap", 6), ("R3.connection-string-password", 7)]


def test_args_literal(scan_yaml):
    dep = deployment("payments") + "          args: [--db-password, s3cret, --log-level=info]\n"
    dep2 = deployment("ledger") + "          args: [--api-token=abcdef123, --port=8080]\n"
    r = scan_yaml("---\n".join([dep, dep2]))
    assert rules_of(r, "R3") == ["R3.args-literal", "R3.args-literal"]
    dep3 = deployment("ledger") + "          args: [--api-token-file=/run/secrets/t, --port=8080]\n"
    assert rules_of(scan_yaml(dep3), "R3") == []


def test_committed_secret_and_private_key(scan_yaml):
    pem = _pem()
    secret = f"""apiVersion: v1
kind: Secret
metadata: {{name: tls, namespace: bank}}
type: kubernetes.io/tls
data:
  tls.key: {base64.b64encode(pem.encode()).decode()}
"""
    r = scan_yaml(secret)
    assert rules_of(r, "R3") == ["R3.committed-secret", "R3.private-key"]
    key = next(f for f in r.findings if f.rule == "R3.private-key")
    assert key.severity.label == "critical" and key.line == 6


def test_external_secret_and_empty_secret_are_silent(scan_yaml):
    docs = """apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: db, namespace: bank}
spec:
  secretStoreRef: {name: vault, kind: ClusterSecretStore}
  data:
    - secretKey: password
      remoteRef: {key: database/creds/payments, property: password}
---
apiVersion: v1
kind: Secret
metadata:
  name: sa-token
  namespace: bank
  annotations: {kubernetes.io/service-account.name: payments}
type: kubernetes.io/service-account-token
"""
    assert rules_of(scan_yaml(docs), "R3") == []


def test_compose_literal_vs_interpolated(scan_yaml):
    compose = """
    services:
      api:
        image: bank/api
        environment:
          - API_TOKEN=${API_TOKEN}
          - DB_PASSWORD=swordfish
    """
    r = scan_yaml(compose, name="docker-compose.yml")
    (f,) = [f for f in r.findings if f.risk == "R3"]
    assert f.rule == "R3.env-literal" and f.line == 7
