"""Security events: one typed record for every security decision.

Events are the spine of Ramparts: logs, the audit log, alerts, the console and
drill reports all read them. Every deny decision emits exactly one.

>>> sink = MemorySink()
>>> emitter = EventEmitter([sink])
>>> _ = emitter.deny("mtls.rejected", service="ledger", reason="no client certificate")
>>> sink.events[0].outcome
<Outcome.DENY: 'deny'>

Sinks:

* :class:`MemorySink`, for tests;
* :class:`JSONLinesSink`, one JSON object a line, appended to a file;
* the audit log's shipper (``ramparts.audit``), the main sink in a deployment.
"""

from ramparts.events._emitter import EventEmitter, EventSink, JSONLinesSink, MemorySink
from ramparts.events._record import Outcome, SecurityEvent

__all__ = [
    "EventEmitter",
    "EventSink",
    "JSONLinesSink",
    "MemorySink",
    "Outcome",
    "SecurityEvent",
]
