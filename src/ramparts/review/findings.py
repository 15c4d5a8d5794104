"""Findings, severities, and the rule catalogue loaded from ``rules/R*.yaml``.

Each risk (R1..R6) has one YAML file listing its checks (rule ids such as
``R2.load-balancer``) with severity, title and fix. Remediation text lives
there, as data, so it can be reviewed and translated without touching code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

RISKS = ("R1", "R2", "R3", "R4", "R5", "R6")


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of {names}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Check:
    """One rule id of the catalogue."""

    id: str
    risk: str
    severity: Severity
    title: str
    fix: str


@dataclass(frozen=True, slots=True)
class Risk:
    id: str
    name: str
    title: str
    description: str
    doc: str
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: which rule, where, what, and how to fix it."""

    rule: str
    risk: str
    severity: Severity
    file: str
    line: int
    resource: str
    message: str
    fix: str
    unit: str = ""
    related: tuple[tuple[str, int], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "risk": self.risk,
            "severity": self.severity.label,
            "file": self.file,
            "line": self.line,
            "resource": self.resource,
            "message": self.message,
            "fix": self.fix,
            "unit": self.unit,
            "related": [{"file": f, "line": ln} for f, ln in self.related],
        }


@cache
def catalogue() -> dict[str, Risk]:
    """Every risk, from the packaged YAML files (read once)."""
    out: dict[str, Risk] = {}
    # The YAML files ship as package data next to this module (see pyproject package-data).
    base = Path(__file__).with_name("rules")
    for risk_id in RISKS:
        data = yaml.safe_load(base.joinpath(f"{risk_id}.yaml").read_text(encoding="utf-8"))
        checks = tuple(
            Check(
                cid,
                risk_id,
                Severity.parse(c["severity"]),
                str(c["title"]),
                " ".join(str(c["fix"]).split()),
            )
            for cid, c in data["checks"].items()
        )
        out[risk_id] = Risk(
            risk_id,
            str(data["name"]),
            str(data["title"]),
            " ".join(str(data["description"]).split()),
            str(data["doc"]),
            checks,
        )
    return out


@cache
def checks() -> dict[str, Check]:
    return {c.id: c for r in catalogue().values() for c in r.checks}


def finding(
    rule: str,
    file: str,
    line: int,
    resource: str,
    message: str,
    *,
    fix: str | None = None,
    severity: Severity | None = None,
    related: tuple[tuple[str, int], ...] = (),
) -> Finding:
    """A finding for catalogue rule ``rule``; severity and fix default to the catalogue's."""
    check = checks()[rule]
    return Finding(
        rule,
        check.risk,
        severity if severity is not None else check.severity,
        file,
        line,
        resource,
        message,
        fix or check.fix,
        related=related,
    )
