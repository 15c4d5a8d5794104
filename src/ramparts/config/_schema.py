"""The schema of ``ramparts.yaml``: typed, immutable, unknown keys refused.

Field-level checks live here; checks that need the whole file (unknown
services, shared databases, duplicate ports) live in ``_validate``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ramparts.config._address import EgressRule, Endpoint
from ramparts.config._rates import parse_rate

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
# SPIFFE trust domain: lowercase letters, digits, dots, dashes and underscores (SPIFFE-ID §2.1).
TRUST_DOMAIN_PATTERN = r"^[a-z0-9._-]{1,255}$"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _endpoint(value: object) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    return Endpoint.parse(str(value))


EndpointField = Annotated[Endpoint, BeforeValidator(_endpoint)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


def parse_rule_range(item: int | str) -> tuple[int, int]:
    """``942100`` or ``"942100-942999"`` as an inclusive (first, last) pair."""
    text = str(item).strip()
    first, sep, last = text.partition("-")
    if not first.isdigit() or (sep and not last.isdigit()):
        raise ValueError(f"a WAF rule exclusion is an id or 'first-last', got {item!r}")
    lo, hi = int(first), int(last) if sep else int(first)
    if lo > hi:
        raise ValueError(f"WAF rule range {item!r} ends before it starts")
    return lo, hi


def _check_methods(cls: type, v: tuple[str, ...]) -> tuple[str, ...]:
    bad = [m for m in v if m not in HTTP_METHODS]
    if bad:
        raise ValueError(f"unknown HTTP method(s) {bad}; use {sorted(HTTP_METHODS)}")
    return v


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class RateLimitSpec(_Spec):
    """``rate: "100/s"``, an optional ``burst`` and what to key on."""

    rate: str
    burst: int = Field(default=0, ge=0)
    key: Literal["ip", "subject", "api_key", "route"] = "ip"

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: str) -> str:
        try:
            count, _ = parse_rate(v)
        except ValueError:
            count = 0
        if count <= 0:
            raise ValueError(f"rate must look like '100/s', '6000/min' or '10/hour', got {v!r}")
        return v

    @property
    def count(self) -> int:
        return parse_rate(self.rate)[0]

    @property
    def period_seconds(self) -> float:
        return parse_rate(self.rate)[1]


class IssuerSpec(_Spec):
    """A JWT issuer the gateway trusts, and the policy its tokens must meet."""

    issuer: str = Field(min_length=1)
    jwks: str = Field(min_length=1, description="https URL or file path of the JWKS")
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    audiences: tuple[str, ...] = Field(min_length=1)
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    required_claims: tuple[str, ...] = ("exp", "sub")

    @field_validator("algorithms")
    @classmethod
    def _algs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one algorithm is required")
        if any(a.lower() == "none" for a in v):
            raise ValueError("'none' is never an acceptable JWT algorithm")
        return v


class RouteSpec(_Spec):
    """A path prefix on the gateway and the service behind it."""

    prefix: str
    service: Name
    methods: tuple[str, ...] = ()
    auth: Literal["jwt", "none"] = "jwt"
    scopes: tuple[str, ...] = ()
    rate_limit: RateLimitSpec | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    waf: Literal["block", "detect", "off"] = "block"
    # Rules this route does not run (CRS tuning, as SecRuleRemoveById would for one
    # location): single ids or "first-last" ranges.
    waf_exclude: tuple[int | str, ...] = ()

    @field_validator("waf_exclude")
    @classmethod
    def _exclusions(cls, v: tuple[int | str, ...]) -> tuple[int | str, ...]:
        for item in v:
            parse_rule_range(item)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/") or any(c in v for c in "?#\\ \t") or "/../" in v + "/":
            raise ValueError(
                f"route prefix must be an absolute path without '?', '#', '..', got {v!r}"
            )
        return v

    _methods = field_validator("methods")(_check_methods)


class WafSpec(_Spec):
    """The gateway's WAF: built-in rules always, OWASP CRS when ``crs_path`` names a checkout."""

    enabled: bool = True
    crs_path: str | None = None
    paranoia_level: int = Field(default=1, ge=1, le=4)
    inbound_threshold: int | None = Field(default=None, ge=1)
    outbound_threshold: int | None = Field(default=None, ge=1)
    rules: tuple[str, ...] = ()


class RateLimitBackendSpec(_Spec):
    """Where rate-limit state lives: in each gateway process, or shared in Redis."""

    backend: Literal["memory", "redis"] = "memory"
    # No password here (no secret in configuration): a local or TLS-authenticated Redis.
    redis_url: str | None = None
    prefix: str = Field(default="ramparts:rl:", min_length=1)
    on_backend_error: Literal["open", "closed"] = "closed"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis_url must start with redis://, rediss:// or unix://, got {v!r}")
        userinfo = v.split("//", 1)[1].split("@", 1)[0] if "@" in v else ""
        if ":" in userinfo:
            raise ValueError("redis_url must not carry a password: no secret in ramparts.yaml")
        return v


class GatewaySpec(_Spec):
    listen: EndpointField
    admin_listen: EndpointField | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    plain_http: bool = Field(
        default=False, description="serve clients without TLS (development only)"
    )
    trusted_proxies: tuple[str, ...] = ()
    issuers: tuple[IssuerSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    default_rate_limit: RateLimitSpec | None = None
    waf: WafSpec = WafSpec()
    ratelimit: RateLimitBackendSpec = RateLimitBackendSpec()


class CallerRuleSpec(_Spec):
    """Narrows what one caller may do: only these methods on these paths (``*`` = one segment)."""

    model_config = ConfigDict(populate_by_name=True)

    caller: Name = Field(alias="from")
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = Field(min_length=1)

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in v if not p.startswith("/")]
        if bad:
            raise ValueError(f"paths must be absolute, got {bad}")
        return v

    _methods = field_validator("methods")(_check_methods)


class EgressSpec(_Spec):
    to: str
    allow_range: bool = False

    def rule(self) -> EgressRule:
        return EgressRule.parse(self.to, allow_range=self.allow_range)


def _egress(value: object) -> object:
    return {"to": value} if isinstance(value, str) else value


class ServiceSpec(_Spec):
    listen: EndpointField
    database: Name | None = None
    calls: tuple[Name, ...] = ()
    allow: tuple[CallerRuleSpec, ...] = ()
    egress: tuple[Annotated[EgressSpec, BeforeValidator(_egress)], ...] = ()


class PlatformSpec(_Spec):
    """Where the platform's own components listen, and where they keep state."""

    ca: EndpointField = Endpoint("127.0.0.1", 7000)
    secrets: EndpointField = Endpoint("127.0.0.1", 7001)
    audit: EndpointField = Endpoint("127.0.0.1", 7002)
    witness: EndpointField = Endpoint("127.0.0.1", 7003)
    console: EndpointField = Endpoint("127.0.0.1", 7004)
    state_dir: str = ".ramparts"


class TopologySpec(_Spec):
    version: Literal[1]
    trust_domain: Annotated[str, Field(pattern=TRUST_DOMAIN_PATTERN)]
    namespace: Name = "default"
    services: dict[Name, ServiceSpec] = Field(min_length=1)
    gateway: GatewaySpec
    platform: PlatformSpec = PlatformSpec()
