"""R4: shared databases and credentials — different services fire, versions of one do not."""

from __future__ import annotations

from tests.review.conftest import deployment, rules_of


def env_url(url: str) -> str:
    return f"""            - name: DATABASE_URL
              value: "{url}"
"""


def test_same_host_and_database_across_services(scan_yaml):
    a = deployment("ledger", env=env_url("postgres://ledger-db:5432/ledger"))
    b = deployment(
        "statements", env=env_url("jdbc:postgresql://ledger-db.bank.svc.cluster.local/ledger")
    )
    r = scan_yaml("---\n".join([a, b]))
    (f,) = [f for f in r.findings if f.risk == "R4"]
    assert f.rule == "R4.shared-database"
    assert "ledger (Deployment bank/ledger)" in f.message
    assert "statements (Deployment bank/statements)" in f.message
    assert f.related  # the second use is pointed at too


def test_versions_of_one_service_are_not_sharing(scan_yaml):
    url = env_url("postgres://payments-db:5432/payments")
    docs = [
        deployment("payments", env=url),
        deployment("payments-canary", env=url),
        deployment("payments-v2", labels="{app: payments-v2}", env=url),
        deployment("pay-blue", labels="{app: payments, version: blue}", env=url),
        deployment("payments-migrate", labels="{app: payments-migrate}", env=url),
    ]
    assert rules_of(scan_yaml("---\n".join(docs)), "R4") == []


def test_different_databases_on_one_server_are_not_shared(scan_yaml):
    a = deployment("ledger", env=env_url("postgres://pg:5432/ledger"))
    b = deployment("accounts", env=env_url("postgres://pg:5432/accounts"))
    assert rules_of(scan_yaml("---\n".join([a, b])), "R4") == []


def test_same_host_in_other_namespace_is_other_host(scan_yaml):
    a = deployment("ledger", env=env_url("postgres://db/ledger"))
    b = deployment("audit", ns="ops", env=env_url("postgres://db/ledger"))
    assert rules_of(scan_yaml("---\n".join([a, b])), "R4") == []


def test_pg_variables_via_configmap_and_env_from(scan_yaml):
    cm = """apiVersion: v1
kind: ConfigMap
metadata: {name: ledger-db, namespace: bank}
data:
  PGHOST: ledger-db
  PGDATABASE: ledger
"""
    a = deployment("ledger") + "          envFrom:\n            - configMapRef: {name: ledger-db}\n"
    env = """            - name: PGHOST
              valueFrom: {configMapKeyRef: {name: ledger-db, key: PGHOST}}
            - name: PGDATABASE
              valueFrom: {configMapKeyRef: {name: ledger-db, key: PGDATABASE}}
"""
    b = deployment("statements", env=env)
    r = scan_yaml("---\n".join([cm, a, b]))
    assert rules_of(r, "R4") == ["R4.shared-database"]


def test_shared_credentials_by_user_and_by_secret(scan_yaml):
    a = deployment("ledger", env=env_url("mysql://app@mysql:3306/ledger"))
    b = deployment("accounts", env=env_url("mysql://app@mysql:3306/accounts"))
    assert rules_of(scan_yaml("---\n".join([a, b])), "R4") == ["R4.shared-credentials"]
    env = """            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: shared-db, key: password}}
"""
    c = deployment("ledger", env=env)
    d = deployment("accounts", env=env)
    r = scan_yaml("---\n".join([c, d]))
    (f,) = [f for f in r.findings if f.risk == "R4"]
    assert f.rule == "R4.shared-credentials" and "Secret bank/shared-db" in f.message


def test_mongo_redis_and_ado_strings(scan_yaml):
    docs = [
        deployment("a", env=env_url("mongodb+srv://m1.example,m2.example/orders")),
        deployment("b", env=env_url("mongodb+srv://m1.example/orders?retryWrites=true")),
        deployment("c", env=env_url("Server=sql,1433;Database=core;User Id=c;Encrypt=True")),
        deployment("d", env=env_url("Data Source=sql;Initial Catalog=core;User Id=d")),
        deployment("e", env=env_url("redis://cache:6379/2")),
        deployment("f", env=env_url("redis://cache:6379/3")),
    ]
    r = scan_yaml("---\n".join(docs))
    shared = sorted(f.resource for f in r.findings if f.rule == "R4.shared-database")
    assert shared == [
        "database mongodb://m1.example:27017/orders",
        "database mssql://sql.bank:1433/core",
    ]


def test_database_server_itself_is_not_a_consumer(scan_yaml):
    server = deployment("ledger-db", env="            - {name: POSTGRES_DB, value: ledger}\n")
    server = server.replace("ghcr.io/bank/ledger-db:1", "postgres:16")
    client = deployment(
        "ledger",
        env="            - {name: PGHOST, value: ledger-db}\n"
        "            - {name: PGDATABASE, value: ledger}\n",
    )
    assert rules_of(scan_yaml("---\n".join([server, client])), "R4") == []


def test_compose_shared_database(scan_yaml):
    compose = """
    services:
      payments:
        image: bank/payments
        environment: {DATABASE_URL: "postgres://bank:${PW}@db:5432/bank"}
      accounts:
        image: bank/accounts
        environment: {POSTGRES_HOST: db, POSTGRES_DB: bank}
      db:
        image: postgres:16
    """
    r = scan_yaml(compose, name="docker-compose.yml")
    assert rules_of(r, "R4") == ["R4.shared-database"]


def test_base64_secret_via_env_from_secret_ref(scan_yaml):
    import base64

    url = base64.b64encode(b"postgres://ledger-db:5432/ledger").decode()
    secret = f"""apiVersion: v1
kind: Secret
metadata: {{name: ledger-db, namespace: bank}}
data:
  DATABASE_URL: {url}
"""
    a = deployment("ledger") + "          envFrom:\n            - secretRef: {name: ledger-db}\n"
    b = deployment("reports") + "          envFrom:\n            - secretRef: {name: ledger-db}\n"
    r = scan_yaml("---\n".join([secret, a, b]))
    shared = [f for f in r.findings if f.risk == "R4"]
    assert [f.rule for f in shared] == ["R4.shared-database"]
    assert shared[0].line == 5  # the Secret key the URL is written under
