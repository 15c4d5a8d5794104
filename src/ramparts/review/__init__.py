"""``ramparts review``: find lateral-movement risks in an existing deployment.

Reads Kubernetes manifests (plain, Helm-rendered, Kustomize-built) and
docker-compose files, builds one model per deployment unit, and reports the
six risks: R1 no mutual TLS, R2 gateway bypass, R3 hard-coded secrets, R4
shared databases, R5 flat network (with exact NetworkPolicy semantics, and
extra edges against ``ramparts.yaml``), R6 IP allow-listing alone.

>>> from ramparts.review import scan
"""

from ramparts.review._errors import ScanError
from ramparts.review.findings import Finding, Severity, catalogue
from ramparts.review.report import print_human, to_json, to_sarif
from ramparts.review.scanner import ScanResult, scan

__all__ = [
    "Finding",
    "ScanError",
    "ScanResult",
    "Severity",
    "catalogue",
    "print_human",
    "scan",
    "to_json",
    "to_sarif",
]
