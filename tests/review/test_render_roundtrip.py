"""Ramparts' own `render k8s` output, reviewed against the same topology, is clean.

A true-negative test on real, generated manifests: the mesh variants have no
finding at all and no reachable edge outside ramparts.yaml; without a mesh the
only findings are R1.no-mesh.
"""

from __future__ import annotations

import pytest

from ramparts.config import default_topology
from ramparts.platform import k8s
from ramparts.review import scan


@pytest.mark.parametrize("mesh", ["istio", "linkerd", "none"])
def test_rendered_deployment_reviews_clean(tmp_path, mesh):
    topo = default_topology()
    path = tmp_path / f"{mesh}.yaml"
    with path.open("w", encoding="utf-8") as f:
        k8s.dump_all(k8s.render(topo, mesh=mesh), f)
    r = scan([path], topology=topo)
    assert not r.errors
    # Without a mesh the rendered pods declare application-level mTLS, so R1 stays quiet too.
    assert {f.rule for f in r.findings} == set()


def test_rendered_policies_allow_exactly_the_topology_edges(tmp_path):
    from ramparts.review import _load, _model
    from ramparts.review.checks.topology_edges import reachable_edges
    from ramparts.review.context import Context

    topo = default_topology()
    path = tmp_path / "istio.yaml"
    with path.open("w", encoding="utf-8") as f:
        k8s.dump_all(k8s.render(topo, mesh="istio"), f)
    (unit,) = _load.load_paths([path]).units
    ctx = Context(_model.build(unit), topo)
    got = set(reachable_edges(ctx))
    rendered = {w.service for w in ctx.dep.workloads}
    want = {(a, b) for a, b in topo.edges if a in rendered and b in rendered}
    assert want  # the check is not vacuous
    assert got == want
