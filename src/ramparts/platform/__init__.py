"""Running the whole system: the local supervisor behind ``ramparts up``."""

from ramparts.platform.supervisor import (
    ComponentSpec,
    ComponentState,
    StartupError,
    Supervisor,
    tcp_ready,
)

__all__ = [
    "ComponentSpec",
    "ComponentState",
    "StartupError",
    "Supervisor",
    "tcp_ready",
]
