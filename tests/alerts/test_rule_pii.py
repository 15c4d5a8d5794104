"""Default rule: PII still present after masking (a canary on the masker)."""

from __future__ import annotations

import json

import pytest
from tests.alerts._helpers import event, fired, replay

from ramparts.masking import Masker

PAN = "4242 4242 4242 4242"  # passes the Luhn check


class TestPIIAfterMasking:
    @pytest.mark.parametrize(
        "detail",
        [{"note": f"card {PAN}"}, {"note": "bvn 22212345678"}, {"to": "ada@example.com"}],
    )
    def test_fires_on_unmasked_pii(self, detail: dict[str, str]) -> None:
        alerts = replay([event("payments.refused", service="payments", **detail)])
        assert fired(alerts) == ["pii_after_masking"]

    def test_alert_carries_no_pii(self) -> None:
        """The alert about leaked PII must not leak it: every field is masked."""
        alerts = replay([event("payments.refused", service="payments", reason=f"card {PAN}")])
        text = json.dumps([a.to_dict() for a in alerts])
        assert "4242 4242 4242 4242" not in text
        assert "[PAN:" in text
        assert Masker().findings(text) == []

    def test_near_miss_masked_event(self) -> None:
        """An event that went through the masker raises nothing."""
        masked = Masker().mask_text(f"card {PAN}")
        assert fired(replay([event("payments.refused", service="payments", note=masked)])) == []

    def test_near_miss_number_failing_luhn(self) -> None:
        """16 digits that fail the card checksum are not a PAN."""
        ev = event("payments.refused", service="payments", note="ref 4242 4242 4242 4241")
        assert fired(replay([ev])) == []
