"""``ramparts alerts check`` and ``ramparts alerts test``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.alerts._helpers import event
from typer.testing import CliRunner

from ramparts.alerts.cli import app

runner = CliRunner()


def test_check_builtin_rules() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ")


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("title: t\ndetection:\n  s:\n    type|base64: x\n  condition: s\n")
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {bad}:4: modifier '|base64' is not supported"


def test_replays_events_and_prints_alerts(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        event("egress.blocked", service="payments", t=t, destination="x.io:443") for t in (0, 1)
    ]
    events.write_text("".join(e.to_json() + "\n" for e in lines))
    result = runner.invoke(app, ["test", "default", str(events)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "[high] egress_blocked: Egress to a destination outside the allow-list "
        "(service=payments, derived.destination_host=x.io) count=1",
        "[high] egress_blocked: Egress to a destination outside the allow-list "
        "(service=payments, derived.destination_host=x.io) count=2 (update)",
    ]
    as_json = runner.invoke(app, ["test", "default", str(events), "--json"])
    assert [json.loads(line)["count"] for line in as_json.stdout.splitlines()] == [1, 2]


def test_bad_event_line_is_located(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(event("x.y").to_json() + "\n" + '{"type": "x.y"}\n')
    result = runner.invoke(app, ["test", "default", str(events)])
    assert result.exit_code == 1
    assert f"Error: {events}:2: not a security event" in result.stderr


def test_missing_rules_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(tmp_path / "nope"), str(tmp_path / "e.jsonl")])
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr


def test_topology_option_enables_edge_rules(tmp_path: Path) -> None:
    """With --topology, a call outside the topology's edges is flagged."""
    from ramparts.config import default_topology

    topo = default_topology()
    topo_file = tmp_path / "ramparts.yaml"
    topo_file.write_text(topo.text)
    ev = event(
        "authz.denied", service="payments", peer=topo.spiffe_id("statements"), caller="statements"
    )
    events = tmp_path / "events.jsonl"
    events.write_text(ev.to_json() + "\n")
    without = runner.invoke(app, ["test", "default", str(events)])
    with_topo = runner.invoke(app, ["test", "default", str(events), "--topology", str(topo_file)])
    assert without.stdout == ""
    assert with_topo.stdout.startswith("[high] unexpected_service_edge: ")
