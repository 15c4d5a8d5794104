"""NetworkPolicy semantics as tables: which pod can reach which, on which port.

Each case is a set of policies and a table of (source, destination, port,
protocol, allowed). Pods: web (ns front), api and db (ns bank), batch (ns ops).
"""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from ramparts.review.netpol import External, Pod, Policy, Reachability

PODS = {
    "web": Pod("web", "front", {"app": "web", "tier": "edge"}, {"http": (8080, "TCP")}),
    "api": Pod("api", "bank", {"app": "api", "tier": "app"}, {"http": (8080, "TCP")}),
    "db": Pod("db", "bank", {"app": "db", "tier": "data"}, {"pg": (5432, "TCP")}),
    "batch": Pod("batch", "ops", {"app": "batch"}, {"metrics": (9090, "TCP")}),
}
NS_LABELS = {"front": {"zone": "dmz"}, "bank": {"zone": "core"}, "ops": {"zone": "core"}}


def reach(policies_yaml: str) -> Reachability:
    yaml = YAML(typ="rt")
    policies = [
        Policy(d["metadata"]["name"], d["metadata"].get("namespace", "default"), d)
        for d in yaml.load_all(policies_yaml)
        if d
    ]
    return Reachability(policies, NS_LABELS)


def peer(name: str):
    return External(name[3:]) if name.startswith("ip:") else PODS[name]


CASES = {
    "no policies: everything is open": (
        "",
        [
            ("web", "db", 5432, "TCP", True),
            ("batch", "api", 8080, "TCP", True),
            ("ip:8.8.8.8", "db", 5432, "TCP", True),
        ],
    ),
    "default deny ingress isolates only its namespace": (
        """
metadata: {name: deny, namespace: bank}
spec: {podSelector: {}, policyTypes: [Ingress]}
""",
        [
            ("web", "api", 8080, "TCP", False),
            ("api", "db", 5432, "TCP", False),
            ("api", "web", 8080, "TCP", True),
            ("db", "batch", 9090, "TCP", True),
        ],
    ),
    "podSelector and namespaceSelector in ONE peer AND": (
        """
metadata: {name: db, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {zone: core}}
          podSelector: {matchLabels: {tier: app}}
""",
        [
            ("api", "db", 5432, "TCP", True),
            ("batch", "db", 5432, "TCP", False),  # core namespace but not tier=app
            ("web", "db", 5432, "TCP", False),
        ],
    ),
    "in TWO peers they OR": (
        """
metadata: {name: db, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {zone: core}}
        - podSelector: {matchLabels: {tier: app}}
""",
        [
            ("api", "db", 5432, "TCP", True),
            ("batch", "db", 5432, "TCP", True),  # any pod of a core namespace
            ("web", "db", 5432, "TCP", False),
        ],
    ),
    "podSelector alone means the policy's namespace": (
        """
metadata: {name: api, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{podSelector: {}}]
""",
        [
            ("db", "api", 8080, "TCP", True),
            ("web", "api", 8080, "TCP", False),
        ],
    ),
    "empty namespaceSelector means every namespace": (
        """
metadata: {name: api, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from: [{namespaceSelector: {}}]
""",
        [
            ("web", "api", 8080, "TCP", True),
            ("ip:8.8.8.8", "api", 8080, "TCP", False),
        ],
    ),
    "matchExpressions: NotIn matches a pod without the key; Exists; DoesNotExist": (
        """
metadata: {name: api, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector:
            matchExpressions:
              - {key: tier, operator: NotIn, values: [edge]}
              - {key: app, operator: Exists}
""",
        [
            ("batch", "api", 8080, "TCP", True),  # no tier label: NotIn matches
            ("db", "api", 8080, "TCP", True),
            ("web", "api", 8080, "TCP", False),
        ],
    ),
    "policies are additive": (
        """
metadata: {name: a, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]
---
metadata: {name: b, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ops}}}]}]
""",
        [
            ("api", "db", 5432, "TCP", True),
            ("batch", "db", 5432, "TCP", True),
            ("web", "db", 5432, "TCP", False),
        ],
    ),
    "ports: numbers, named ports, endPort ranges, protocol": (
        """
metadata: {name: db, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - ports: [{port: pg}]
---
metadata: {name: api, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
    - ports: [{port: 8000, endPort: 8100}, {port: 53, protocol: UDP}]
""",
        [
            ("web", "db", 5432, "TCP", True),  # named port pg resolves on db to 5432
            ("web", "db", 5433, "TCP", False),
            ("web", "db", 5432, "UDP", False),
            ("web", "api", 8080, "TCP", True),  # inside 8000..8100
            ("web", "api", 8101, "TCP", False),
            ("web", "api", 53, "UDP", True),
            ("web", "api", 53, "TCP", False),
        ],
    ),
    "egress isolation needs both sides": (
        """
metadata: {name: api-out, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {app: db}}}]
      ports: [{port: pg}]
""",
        [
            ("api", "db", 5432, "TCP", True),  # named port resolved on the destination
            ("api", "web", 8080, "TCP", False),
            ("api", "ip:1.1.1.1", 443, "TCP", False),
            ("db", "web", 8080, "TCP", True),  # db is not egress-isolated
        ],
    ),
    "egress is a policy type only when listed or when egress rules exist": (
        """
metadata: {name: api, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: []
  egress: []
""",
        [
            ("api", "web", 8080, "TCP", True),  # `egress: []` without policyTypes: Ingress only
            ("web", "api", 8080, "TCP", False),
        ],
    ),
    "ipBlock with except matches addresses, never pods": (
        """
metadata: {name: api-out, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 169.254.169.254/32]}}]
""",
        [
            ("api", "ip:1.1.1.1", 443, "TCP", True),
            ("api", "ip:10.2.3.4", 443, "TCP", False),
            ("api", "ip:169.254.169.254", 80, "TCP", False),
            ("api", "db", 5432, "TCP", False),
        ],
    ),
    "empty rule allows everything; no rules allow nothing": (
        """
metadata: {name: open, namespace: bank}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{}]
---
metadata: {name: closed, namespace: bank}
spec:
  podSelector: {matchLabels: {app: db}}
""",
        [
            ("ip:8.8.8.8", "api", 1234, "TCP", True),
            ("batch", "api", 8080, "TCP", True),
            ("api", "db", 5432, "TCP", False),
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_reachability_table(case):
    policies, table = CASES[case]
    r = reach(policies)
    got = [(s, d, p, proto, r.allows(peer(s), peer(d), p, proto)) for s, d, p, proto, _ in table]
    assert got == table
