"""Derived fields: what rules need to know that one event alone does not say.

The engine turns each event into a record (``SecurityEvent.to_dict()``) and adds
``derived.*`` fields, computed here and only here, so rules stay plain Sigma:

* ``derived.source``: who acted: the peer, else the remote address of a refused
  TLS handshake (``detail.remote``, port dropped);
* ``derived.peer_service``: the topology name for a SPIFFE peer;
  ``derived.peer_unknown``: true for a SPIFFE peer the topology does not know;
* ``derived.edge`` (``caller->callee``), ``derived.edge_expected`` (in the
  topology's edges) and ``derived.edge_first_seen`` (first time this engine sees
  it) for authorisation events: the stateful part, one set of seen edges;
* ``derived.destination_host``: the host of ``detail.destination``;
* ``derived.secret_owner`` (the service a secrets path belongs to) and
  ``derived.secret_foreign`` (the caller is someone else);
* ``derived.pii``: the kinds of PII the masker still finds in the event's text
  (reason, peer, detail), i.e. what masking upstream missed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from ramparts.config import GATEWAY, PLATFORM_COMPONENTS, Topology, split_host_port
from ramparts.events import SecurityEvent
from ramparts.masking import Masker

# secret/data/<svc>/..., secret/metadata/<svc>[/...], database/creds/<svc>[/lease]
_SECRET_PATH: Final = re.compile(r"^/?(?:v1/)?(?:secret/(?:data|metadata)|database/creds)/([^/]+)")
# Platform components authorise each request themselves; calls to them are not topology edges.
_PER_REQUEST: Final = frozenset(PLATFORM_COMPONENTS) - {GATEWAY}
# The seen-edge set is keyed by names the topology knows, or by unknown caller
# names from events; bound it so a flood of made-up names cannot grow it forever.
MAX_SEEN_EDGES: Final = 10_000


def _host(text: str) -> str:
    try:
        host, _ = split_host_port(text)
    except ValueError:
        host = text
    return host.strip("[]").lower()


class Enricher:
    """Builds rule records from events; holds the seen-edge state."""

    def __init__(self, topology: Topology | None = None, masker: Masker | None = None) -> None:
        self.topology = topology
        self.masker = masker or Masker()
        self._seen_edges: set[tuple[str, str]] = set()

    def record(self, event: SecurityEvent) -> dict[str, Any]:
        rec = event.to_dict()
        detail: Mapping[str, Any] = event.detail
        derived: dict[str, Any] = {}
        peer = event.peer
        remote = detail.get("remote")
        derived["source"] = peer or (_host(remote) if isinstance(remote, str) else "")
        peer_service = None
        if peer and peer.startswith("spiffe://") and self.topology is not None:
            peer_service = self.topology.name_for(peer)
            derived["peer_unknown"] = peer_service is None
            derived["peer_service"] = peer_service
        if event.type.startswith("authz."):
            self._edge(event, detail, peer_service, derived)
        dest = detail.get("destination")
        if isinstance(dest, str) and dest:
            derived["destination_host"] = _host(dest)
        if event.type.startswith("secrets."):
            path = detail.get("path")
            m = _SECRET_PATH.match(path) if isinstance(path, str) else None
            if m is not None:
                derived["secret_owner"] = m.group(1)
                if peer_service is not None:
                    derived["secret_foreign"] = m.group(1) != peer_service
        derived["pii"] = self.pii_kinds(event)
        rec["derived"] = derived
        return rec

    def _edge(
        self,
        event: SecurityEvent,
        detail: Mapping[str, Any],
        peer_service: str | None,
        derived: dict[str, Any],
    ) -> None:
        if detail.get("side") == "caller":
            caller, callee = event.service, detail.get("callee")
        else:
            caller, callee = detail.get("caller") or peer_service, event.service
        if not isinstance(caller, str) or not isinstance(callee, str) or not caller or not callee:
            return
        edge = (caller, callee)
        derived["edge"] = f"{caller}->{callee}"
        if self.topology is not None:
            derived["edge_expected"] = edge in self.topology.edges or callee in _PER_REQUEST
        first = edge not in self._seen_edges
        derived["edge_first_seen"] = first
        if first and len(self._seen_edges) < MAX_SEEN_EDGES:
            self._seen_edges.add(edge)

    def pii_kinds(self, event: SecurityEvent) -> list[str]:
        """Kinds of values the masker would still mask in the event's free text."""
        text = json.dumps(
            {"reason": event.reason, "peer": event.peer, "detail": dict(event.detail)},
            default=str,
            ensure_ascii=False,
        )
        return sorted({f.kind.value for f in self.masker.findings(text)})
