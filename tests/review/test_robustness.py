"""Untrusted manifests of any shape never crash the scanner."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ramparts.review import scan

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.sampled_from(["", "{}", "0.0.0.0/0", "http", "x"]),
)
trees = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "template",
                    "metadata",
                    "labels",
                    "containers",
                    "env",
                    "name",
                    "value",
                    "ports",
                    "podSelector",
                    "ingress",
                    "egress",
                    "from",
                    "to",
                    "ipBlock",
                    "cidr",
                    "namespaceSelector",
                    "matchLabels",
                    "matchExpressions",
                    "selector",
                    "type",
                    "data",
                    "stringData",
                    "services",
                    "environment",
                    "mtls",
                    "mode",
                    "rules",
                    "valueFrom",
                    "secretKeyRef",
                    "envFrom",
                    "hostNetwork",
                    "annotations",
                ]
            ),
            kids,
            max_size=4,
        ),
    ),
    max_leaves=25,
)
KINDS = st.sampled_from(
    [
        "Deployment",
        "Pod",
        "CronJob",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "Namespace",
        "PeerAuthentication",
        "AuthorizationPolicy",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=st.lists(st.tuples(KINDS, trees), min_size=1, max_size=4))
def test_arbitrary_shapes_do_not_crash(tmp_path, docs):
    text = "---\n".join(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": "x", "namespace": "n"},
                "spec": body,
                "data": body,
            }
        )
        + "\n"
        for kind, body in docs
    )
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    result = scan([path])
    assert not result.errors
    for f in result.findings:
        assert f.line >= 1 and f.message


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=trees)
def test_arbitrary_compose_does_not_crash(tmp_path, body):
    path = tmp_path / "docker-compose.yml"
    path.write_text(json.dumps({"services": {"a": {"image": "x", "environment": body}, "b": body}}))
    scan([path])
