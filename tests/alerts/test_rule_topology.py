"""Default rules: first-seen service edges outside the topology, unknown mTLS identities."""

from __future__ import annotations

from tests.alerts._helpers import event, fired, replay

from ramparts.config import Topology


def authz(topology: Topology, caller: str, callee: str, t: float = 0.0, *, allowed: bool = False):
    return event(
        "authz.allowed" if allowed else "authz.denied",
        outcome="allow" if allowed else "deny",
        service=callee,
        peer=topology.spiffe_id(caller),
        t=t,
        caller=caller,
        method="GET",
        path="/v1/x",
    )


class TestUnexpectedEdge:
    def test_fires_once_for_an_edge_outside_the_topology(self, topology: Topology) -> None:
        """statements -> payments is not in the topology: one alert, on first sight only."""
        events = [authz(topology, "statements", "payments", t) for t in (0, 1, 400, 800)]
        alerts = replay(events, topology=topology)
        assert fired(alerts) == ["unexpected_service_edge"]
        assert dict(alerts[0].group) == {"derived.edge": "statements->payments"}

    def test_caller_side_denial_counts_too(self, topology: Topology) -> None:
        """The SDK's own refusal (side=caller, detail.callee) names the same edge."""
        ev = event("authz.denied", service="statements", side="caller", callee="payments")
        assert fired(replay([ev], topology=topology)) == ["unexpected_service_edge"]

    def test_near_miss_expected_edge(self, topology: Topology) -> None:
        """payments -> ledger is in the topology: first sight raises nothing."""
        ev = authz(topology, "payments", "ledger", allowed=True)
        assert fired(replay([ev], topology=topology)) == []

    def test_near_miss_platform_callee(self, topology: Topology) -> None:
        """Calls to platform components (secrets, ca, audit) authorise per request."""
        ev = authz(topology, "payments", "secrets", allowed=True)
        assert fired(replay([ev], topology=topology)) == []


class TestUnknownIdentity:
    def test_fires_on_identity_outside_topology(self, topology: Topology) -> None:
        """A verified SPIFFE ID the topology does not know raises a high alert."""
        ev = event(
            "authz.denied", service="ledger", peer="spiffe://refbank.local/ns/refbank/sa/rogue"
        )
        alerts = replay([ev], topology=topology)
        assert "unknown_mtls_identity" in fired(alerts)

    def test_near_miss_known_identity(self, topology: Topology) -> None:
        """A known workload's identity raises nothing."""
        ev = authz(topology, "payments", "ledger", allowed=True)
        assert "unknown_mtls_identity" not in fired(replay([ev], topology=topology))

    def test_near_miss_client_address(self, topology: Topology) -> None:
        """At the gateway the peer is a client address, not an identity: not unknown."""
        ev = event("jwt.rejected", peer="203.0.113.7")
        assert fired(replay([ev], topology=topology)) == []
