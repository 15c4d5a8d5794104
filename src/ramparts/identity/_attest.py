"""Local attestation for ``ramparts up``: each service's first SVID, before it starts.

>>> # paths = attest_local(ca, topology, ".ramparts/identity")
>>> # paths["ledger"]  ->  .ramparts/identity/ledger/{svid.pem, svid.key, bundle.json, bundle.pem}

On one machine the supervisor *is* the attestor: it knows which process it is
about to start for which service, so it writes that service's SVID (chain,
0600 key, bundle) into a private 0700 directory that only the service reads.
After that the workload renews by itself over mTLS (:class:`SVIDRotator`).

How this maps onto Kubernetes: the supervisor's knowledge of "which process is
which service" becomes the kubelet's. Each pod gets a *projected service
account token* (audience ``ramparts-ca``, short expiry); an init container or
sidecar presents it to the CA, which validates it with the TokenReview API (or
the cluster's OIDC keys) and issues the SVID for
``spiffe://<td>/ns/<pod namespace>/sa/<service account>`` into an in-memory
``emptyDir`` volume. The ``ns/<namespace>/sa/<service>`` shape of our IDs is
exactly what SPIRE's k8s workload attestor and Istio issue, so an operator can
instead let SPIRE (Workload API, ``spiffe-helper`` writing the same three
files) or Istio's istiod be the issuer and trust its bundle: the workload side
(:meth:`IdentitySource.from_dir` and :meth:`~IdentitySource.refresh_from_dir`,
mTLS contexts, authorisation) is unchanged.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from ramparts.config import Topology
from ramparts.identity._ca import CertificateAuthority
from ramparts.identity._files import ensure_private_dir
from ramparts.identity._source import IdentitySource


def attest_local(
    ca: CertificateAuthority,
    topology: Topology,
    out_dir: str | os.PathLike[str],
    *,
    services: Iterable[str] | None = None,
    ttl: dt.timedelta | None = None,
) -> dict[str, Path]:
    """Write a first SVID and the bundle for each service into ``out_dir/<service>`` (0700).

    ``services`` defaults to every service in the topology; platform components
    (``gateway``, ``secrets``, ``audit`` ...) can be named too.
    """
    if topology.trust_domain != ca.trust_domain:
        raise ValueError(
            f"topology trust domain {topology.trust_domain} differs from the CA's {ca.trust_domain}"
        )
    root = ensure_private_dir(out_dir)
    bundle = ca.bundle()
    out: dict[str, Path] = {}
    for name in services if services is not None else topology.services:
        spiffe_id = topology.spiffe_id(name)  # KeyError names an unknown service
        source = IdentitySource(ca.issue_svid(spiffe_id, ttl=ttl), bundle)
        source.save(root / name)
        out[name] = root / name
    return out
