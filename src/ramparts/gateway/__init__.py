"""The API gateway's data path: a fast asyncio reverse proxy with a security pipeline.

>>> from ramparts.config import default_topology
>>> gw = Gateway(default_topology(), options=GatewayOptions(plain_upstreams=True))
>>> gw.build_state(default_topology()).pipeline.names
['correlation', 'hygiene', 'route', 'jwt', 'ratelimit']

Every request passes correlation -> header hygiene -> route -> WAF -> JWT ->
rate limit, then is proxied over a pooled keep-alive connection (mTLS with
the service's SPIFFE ID checked). Each stage is a small object; the WAF,
the JWT verifier and the limiter plug in through the Protocols in
:mod:`ramparts.gateway._hooks`. Start it with ``await Gateway(...).start()``
or ``ramparts gateway run --topology ramparts.yaml``.

Decisions, each documented where it is made:

* framing: ambiguous requests get 400 and a closed connection, never
  forwarded; every message is re-serialised (:mod:`._server`);
* paths: one normalised spelling or a refusal, never a guess (:mod:`._paths`);
* who the client is: the TCP peer unless it is a trusted proxy (:mod:`._forwarded`);
* identity downstream: ``X-Ramparts-Subject``/``-Scopes``/``-Issuer`` only
  from a verified token, only over mTLS (or with ``identity_over_plain`` in
  development); client copies are always dropped (:mod:`._stages`);
* the bearer token itself is consumed at the edge and not forwarded;
* route ``timeout_seconds`` bounds upstream *inactivity*, so long streams
  that keep moving are not cut (:mod:`._upstream`).
"""

from ramparts.gateway._forwarded import TrustedProxies
from ramparts.gateway._gateway import Gateway, GatewayOptions, GatewayState, default_verifier
from ramparts.gateway._hooks import Limiter, Stage, TokenVerifier, VerifiedIdentity, WAFHook
from ramparts.gateway._http import Reply
from ramparts.gateway._observe import AccessLog, GatewayMetrics
from ramparts.gateway._paths import BadTarget, normalise_target
from ramparts.gateway._request import Request
from ramparts.gateway._routes import Route, RouteTable
from ramparts.gateway._upstream import UpstreamTLS

__all__ = [
    "AccessLog",
    "BadTarget",
    "Gateway",
    "GatewayMetrics",
    "GatewayOptions",
    "GatewayState",
    "Limiter",
    "Reply",
    "Request",
    "Route",
    "RouteTable",
    "Stage",
    "TokenVerifier",
    "TrustedProxies",
    "UpstreamTLS",
    "VerifiedIdentity",
    "WAFHook",
    "default_verifier",
    "normalise_target",
]
