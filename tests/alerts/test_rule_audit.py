"""Default rules: audit log integrity failures and dropped audit entries."""

from __future__ import annotations

import pytest
from tests.alerts._helpers import event, fired, replay


class TestIntegrityFailure:
    @pytest.mark.parametrize(
        "type_",
        ["audit.proof_invalid", "audit.signature_invalid", "audit.rollback", "witness.refused"],
    )
    def test_fires_on_each_failure(self, type_: str) -> None:
        alerts = replay([event(type_, service="audit", reason="bad proof")])
        assert fired(alerts) == ["audit_integrity_failure"]
        assert alerts[0].level == "critical"

    def test_near_miss_successful_verification(self) -> None:
        """A checkpoint verified (allow) is not a failure."""
        ev = event("audit.checkpoint_verified", outcome="allow", service="audit")
        assert fired(replay([ev])) == []


class TestEntriesDropped:
    def test_fires(self) -> None:
        ev = event("shipper.entries_dropped", service="payments", dropped=12)
        assert fired(replay([ev])) == ["audit_entries_dropped"]

    def test_near_miss_other_shipper_event(self) -> None:
        ev = event("shipper.batch_shipped", outcome="allow", service="payments")
        assert fired(replay([ev])) == []
