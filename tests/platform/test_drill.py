"""``ramparts drill`` against a real ``ramparts up``: every attack blocked, with its proof."""

from __future__ import annotations

import json
from pathlib import Path

from tests.platform._up import start_up, stop_up, topology_file
from typer.testing import CliRunner

from ramparts.cli import app


def test_drill_against_up(tmp_path: Path) -> None:
    topology, _ = topology_file(tmp_path)
    state = tmp_path / "state"
    proc = start_up(topology, state)
    try:
        result = CliRunner().invoke(app, ["drill", "--state", str(state), "--json"])
    finally:
        stop_up(proc)
    report = json.loads(result.stdout)
    by_name = {s["name"]: s for s in report["scenarios"]}
    not_blocked = {n: s["detail"] for n, s in by_name.items() if not s["blocked"]}
    assert not_blocked == {}
    assert result.exit_code == 0
    assert set(by_name) == {
        "forged and abused JWTs",
        "SSRF through notifications",
        "compromised statements service",
        "direct access bypassing the gateway",
        "WAF payloads",
        "rate-limit flood",
        "audit log tampering",
    }
    # Proof, not just verdicts: gateway denials carry the correlation IDs the client saw.
    jwt = by_name["forged and abused JWTs"]
    assert {e["correlation_id"] for e in jwt["events"]} <= set(jwt["correlation_ids"])
    assert all(e["type"] == "jwt.rejected" for e in jwt["events"])
    ssrf = by_name["SSRF through notifications"]
    assert {e["type"] for e in ssrf["events"]} <= {"waf.blocked", "egress.blocked"}
    # ...and alerts: the default rules raise them from the same events.
    assert "cloud_metadata_access" in ssrf["alerts"]
    assert "unexpected_service_edge" in by_name["compromised statements service"]["alerts"]
    assert "waf_burst" in by_name["WAF payloads"]["alerts"]
    assert "ratelimit_flood" in by_name["rate-limit flood"]["alerts"]


def test_drill_fails_when_a_control_fails(tmp_path: Path) -> None:
    """A drill that cannot see its proof reports NOT BLOCKED and exits 1 (no false green)."""
    topology, _ = topology_file(tmp_path)
    state = tmp_path / "state"
    proc = start_up(topology, state)
    try:
        # Sabotage the evidence: security events are written somewhere the drill does not look.
        for f in (state / "events").glob("*.jsonl"):
            f.unlink()
            f.mkdir()
        result = CliRunner().invoke(app, ["drill", "--state", str(state), "--json"])
    finally:
        stop_up(proc)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not all(s["blocked"] for s in report["scenarios"])
