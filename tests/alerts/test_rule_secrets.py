"""Default rules: secrets read by another service's identity, lease operations refused."""

from __future__ import annotations

from tests.alerts._helpers import event, fired, replay

from ramparts.config import Topology


def secrets_req(topology: Topology, caller: str, path: str, *, outcome="allow", reason="read"):
    return event(
        "secrets.request",
        service="secrets",
        outcome=outcome,
        reason=reason,
        peer=topology.spiffe_id(caller),
        method="GET",
        path=path,
        operation="read",
    )


class TestForeignIdentity:
    def test_fires_on_another_services_secret(self, topology: Topology) -> None:
        """payments asking for ledger's database credentials is critical."""
        alerts = replay(
            [secrets_req(topology, "payments", "database/creds/ledger")], topology=topology
        )
        assert fired(alerts) == ["secret_foreign_identity"]
        assert alerts[0].level == "critical"
        assert dict(alerts[0].group)["derived.secret_owner"] == "ledger"

    def test_fires_on_token_bound_to_another_identity(self, topology: Topology) -> None:
        ev = secrets_req(
            topology,
            "payments",
            "secret/data/payments/api",
            outcome="deny",
            reason="permission denied: token is bound to another identity",
        )
        assert "secret_foreign_identity" in fired(replay([ev], topology=topology))

    def test_near_miss_own_secret(self, topology: Topology) -> None:
        """A service reading its own KV secret raises nothing."""
        ev = secrets_req(topology, "payments", "secret/data/payments/api")
        assert fired(replay([ev], topology=topology)) == []


class TestOutsideLease:
    def test_fires_on_refused_lease_renewal(self, topology: Topology) -> None:
        ev = secrets_req(topology, "payments", "sys/leases/renew", outcome="deny", reason="denied")
        assert fired(replay([ev], topology=topology)) == ["secret_outside_lease"]

    def test_near_miss_allowed_lease_renewal(self, topology: Topology) -> None:
        ev = secrets_req(topology, "payments", "sys/leases/renew")
        assert fired(replay([ev], topology=topology)) == []
