"""Default rules: egress outside the allow-list, and cloud metadata access."""

from __future__ import annotations

import pytest
from tests.alerts._helpers import event, fired, replay


class TestEgressBlocked:
    def test_fires_on_blocked_egress(self) -> None:
        """A refused outbound connection raises one high alert naming service and host."""
        alerts = replay(
            [event("egress.blocked", service="payments", destination="evil.example:443")]
        )
        assert fired(alerts) == ["egress_blocked"]
        (a,) = alerts
        assert a.level == "high"
        assert dict(a.group) == {"service": "payments", "derived.destination_host": "evil.example"}

    def test_near_miss_allowed_egress(self) -> None:
        """An allowed connection to the same host raises nothing."""
        ev = event(
            "egress.allowed", outcome="allow", service="payments", destination="evil.example:443"
        )
        assert fired(replay([ev])) == []


class TestCloudMetadata:
    @pytest.mark.parametrize(
        "destination",
        ["169.254.169.254:80", "[fd00:ec2::254]:80", "metadata.google.internal:80"],
    )
    def test_fires_on_each_metadata_address(self, destination: str) -> None:
        """IPv4, IPv6 and GCP metadata names all raise a critical alert."""
        alerts = replay([event("egress.blocked", service="statements", destination=destination)])
        assert "cloud_metadata_access" in fired(alerts)
        assert next(a for a in alerts if a.rule == "cloud_metadata_access").level == "critical"

    def test_fires_on_metadata_url_in_request(self) -> None:
        """An SSRF attempt seen by the WAF, carrying the address in a parameter, also fires."""
        ev = event("waf.blocked", peer="203.0.113.9", args="url=http://169.254.169.254/latest/")
        assert "cloud_metadata_access" in fired(replay([ev]))

    @pytest.mark.parametrize("destination", ["169.254.169.253:80", "metadata.internal:80"])
    def test_near_miss_neighbouring_address(self, destination: str) -> None:
        """A neighbouring link-local address or a look-alike name is not metadata access."""
        alerts = replay([event("egress.blocked", service="statements", destination=destination)])
        assert fired(alerts) == ["egress_blocked"]
