"""Render a scan: human (rich, grouped by risk), JSON, and SARIF 2.1.0 for code scanning.

Everything taken from manifests (names, labels, values) is untrusted; the
human renderer escapes it so a label cannot inject rich markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ramparts import __version__
from ramparts.review.findings import Finding, Severity, catalogue, checks
from ramparts.review.scanner import ScanResult

if TYPE_CHECKING:
    from rich.console import Console

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "ramparts-review"
TOOL_URI = "https://github.com/ramparts/ramparts"
# GitHub code scanning maps security-severity to critical (>= 9), high (7-8.9), medium, low.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def to_json(result: ScanResult) -> str:
    """One object with ``findings``: rule, risk, severity, file, line, resource, message, fix."""
    return json.dumps(
        {
            "tool": TOOL_NAME,
            "version": __version__,
            "topology": result.topology,
            "units": [u.__dict__ for u in result.units],
            "findings": [f.as_dict() for f in result.findings],
            "errors": [
                {"file": e.file, "line": e.line, "message": e.message} for e in result.errors
            ],
            "notes": [{"file": e.file, "line": e.line, "message": e.message} for e in result.notes],
        },
        indent=2,
    )


def print_human(result: ScanResult, console: Console) -> None:
    # rich is imported on use: JSON and SARIF runs in CI skip its start-up cost.
    from rich.markup import escape  # noqa: PLC0415

    cat = catalogue()
    for risk_id, risk in cat.items():
        group = [f for f in result.findings if f.risk == risk_id]
        if not group:
            continue
        console.rule(f"[bold]{risk_id} {escape(risk.title)}[/] ({len(group)})", align="left")
        fixed: set[tuple[str, str]] = set()  # print each distinct fix once per group
        for f in group:
            console.print(
                f"[{_STYLE[f.severity]}]{f.severity.label.upper():8}[/] "
                f"[bold]{escape(f.rule)}[/] {escape(f.file)}:{f.line}",
                highlight=False,
            )
            console.print(f"  {escape(f.message)}", highlight=False, soft_wrap=False)
            if (f.rule, f.fix) not in fixed:
                fixed.add((f.rule, f.fix))
                console.print(f"  [green]fix:[/] {escape(f.fix)}", highlight=False)
        console.print(f"  [dim]see {escape(risk.doc)}[/]", highlight=False)
    counts = {s: sum(1 for f in result.findings if f.severity == s) for s in Severity}
    summary = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n)
    units = len(result.units)
    console.print(
        f"\n[bold]{len(result.findings)} finding(s)[/]"
        + (f" ({summary})" if summary else "")
        + f" in {units} deployment unit(s), {result.files_read} file(s) read"
        + (f"; topology {escape(result.topology)}" if result.topology else ""),
        highlight=False,
    )
    for note in result.notes:
        console.print(f"[dim]note: {escape(str(note))}[/]", highlight=False)


def _artifact(file: str, base: Path | None) -> dict[str, Any]:
    """A relative URI under ``base`` (with ``uriBaseId``), else a relative path or file: URI."""
    p = Path(file)
    if base is not None:
        try:
            return {
                "uri": p.resolve().relative_to(base.resolve()).as_posix(),
                "uriBaseId": "SRCROOT",
            }
        except ValueError:
            return {"uri": p.resolve().as_uri()}
    return {"uri": p.as_posix() if not p.is_absolute() else p.as_uri()}


def fingerprint(f: Finding) -> str:
    """Stable across line moves: rule, resource and message, not the line number."""
    import hashlib  # noqa: PLC0415 - only SARIF needs it

    return hashlib.sha256(f"{f.rule}\0{f.resource}\0{f.message}".encode()).hexdigest()


def to_sarif(result: ScanResult, *, base: Path | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log GitHub code scanning accepts; ``base`` makes file URIs relative."""
    cat = catalogue()
    rule_ids = list(checks())
    rules = []
    for cid, c in checks().items():
        risk = cat[c.risk]
        rules.append(
            {
                "id": cid,
                "name": "".join(w.capitalize() for w in cid.replace(".", "-").split("-")),
                "shortDescription": {"text": c.title},
                "fullDescription": {"text": f"{risk.id} {risk.title}: {risk.description}"},
                "help": {
                    "text": f"{risk.description}\n\nFix: {c.fix}\n\nSee {risk.doc}",
                    "markdown": f"**{risk.id} {risk.title}**\n\n{risk.description}\n\n"
                    f"**Fix:** {c.fix}\n\n[{risk.doc}]({risk.doc})",
                },
                "helpUri": risk.doc,
                "defaultConfiguration": {"level": SARIF_LEVEL[c.severity]},
                "properties": {
                    "tags": ["security", "kubernetes", risk.id, risk.name],
                    "security-severity": SECURITY_SEVERITY[c.severity],
                    "precision": "high",
                },
            }
        )
    results = []
    for f in result.findings:
        result_obj: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_ids.index(f.rule),
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [_location(f.file, f.line, base, f.resource)],
            "partialFingerprints": {"rampartsFinding/v1": fingerprint(f)},
            "properties": {
                "risk": f.risk,
                "severity": f.severity.label,
                "security-severity": SECURITY_SEVERITY[f.severity],
            },
        }
        if f.related:
            result_obj["relatedLocations"] = [
                {"id": i + 1, **_location(file, line, base, None)}
                for i, (file, line) in enumerate(f.related)
            ]
        results.append(result_obj)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "locations": [_location(e.file, e.line or 1, base, None)],
        }
        for e in result.errors
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": TOOL_URI,
                "rules": rules,
            }
        },
        "invocations": [
            {
                "executionSuccessful": not result.errors,
                "toolExecutionNotifications": notifications,
            }
        ],
        "results": results,
    }
    if base is not None:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": base.resolve().as_uri() + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _location(file: str, line: int, base: Path | None, resource: str | None) -> dict[str, Any]:
    artifact = _artifact(file, base)
    loc: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": max(1, line)}}
    }
    if resource:
        loc["logicalLocations"] = [{"name": resource, "kind": "resource"}]
    return loc
