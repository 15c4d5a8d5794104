"""What a service imports: one object that wires the platform around its app.

>>> # runtime = ServiceRuntime.from_state("ledger", topology, ".ramparts")
>>> # await runtime.serve(create_app(pool))

A :class:`ServiceRuntime` gives a service:

* its identity (SVID from local attestation, renewed by the CA) and an mTLS
  server that authorises every caller against the topology;
* correlation: inbound ``X-Request-ID``/``traceparent`` bound for the request,
  propagated on every outgoing call;
* security events to the configured sinks;
* ``calls``: other services by name, over mTLS, checking who answers;
* ``egress``: the SSRF-safe client limited to the service's egress list.
"""

from ramparts.sdk._calls import ServiceCalls
from ramparts.sdk._correlation import CorrelationMiddleware
from ramparts.sdk._runtime import ServiceRuntime

__all__ = ["CorrelationMiddleware", "ServiceCalls", "ServiceRuntime"]
