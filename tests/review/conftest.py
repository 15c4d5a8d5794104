"""Helpers for the review tests: write manifests to a temp dir and scan them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ramparts.review import ScanResult, scan

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def scan_yaml(tmp_path: Path) -> Callable[..., ScanResult]:
    """Scan YAML text written to ``tmp_path/<name>``; returns the whole result."""

    def run(text: str, name: str = "app.yaml", **kwargs: object) -> ScanResult:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return scan([path], **kwargs)  # type: ignore[arg-type]

    return run


def rules_of(result: ScanResult, prefix: str = "") -> list[str]:
    return sorted(f.rule for f in result.findings if f.rule.startswith(prefix))


def deployment(
    name: str,
    *,
    ns: str = "bank",
    labels: str | None = None,
    env: str = "",
    extra_spec: str = "",
    annotations: str = "",
    ports: str = "            - {name: http, containerPort: 8080}",
) -> str:
    """A Deployment manifest; ``env`` is the YAML of the env list items (12-space indent)."""
    labels = labels or f"{{app: {name}}}"
    ann = f"\n      annotations: {annotations}" if annotations else ""
    env_block = f"\n          env:\n{env}" if env else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
spec:
  template:
    metadata:
      labels: {labels}{ann}
    spec:{extra_spec}
      containers:
        - name: {name}
          image: ghcr.io/bank/{name}:1
          ports:
{ports}{env_block}
"""
