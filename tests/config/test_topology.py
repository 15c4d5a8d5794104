"""The topology file: what it accepts, what it derives, and every rejection with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramparts.config import TopologyError, default_topology, load_topology, parse_topology

BUILTIN = Path(__file__).resolve().parents[2] / "src/ramparts/config/refbank.yaml"
TEXT = BUILTIN.read_text()


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line number of the nth line containing ``needle``."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def _reject(text: str) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        parse_topology(text, source="ramparts.yaml")
    return info.value


class TestDefaultTopology:
    def test_builtin_reference_bank_loads(self) -> None:
        """The shipped topology is valid and names the five services of the bank."""
        topo = default_topology()
        assert set(topo.services) == {
            "accounts",
            "ledger",
            "payments",
            "notifications",
            "statements",
        }

    def test_statements_may_call_only_ledger(self) -> None:
        """Statements (the PDF renderer) has exactly one outgoing edge: ledger."""
        topo = default_topology()
        assert {callee for caller, callee in topo.edges if caller == "statements"} == {"ledger"}

    def test_every_database_has_one_owner(self) -> None:
        topo = default_topology()
        dbs = [s.database for s in topo.services.values()]
        assert len(dbs) == len(set(dbs)) == 5

    def test_spiffe_ids_round_trip(self) -> None:
        topo = default_topology()
        for name in topo.services:
            assert topo.name_for(topo.spiffe_id(name)) == name
        assert topo.spiffe_id("gateway") == "spiffe://refbank.local/ns/ramparts/sa/gateway"

    def test_load_from_file_equals_builtin(self) -> None:
        assert load_topology(BUILTIN).edges == default_topology().edges

    def test_objects_are_immutable(self) -> None:
        topo = default_topology()
        with pytest.raises(Exception, match=r"frozen|immutable|not support item assignment"):
            topo.spec.services["ledger"].calls = ("accounts",)  # type: ignore[misc]
        with pytest.raises(TypeError):
            topo.services["evil"] = topo.services["ledger"]  # type: ignore[index]


class TestAuthorization:
    """The authorisation table derived from the topology, as a decision table."""

    @pytest.mark.parametrize(
        ("callee", "caller", "method", "path", "allowed"),
        [
            ("ledger", "payments", "POST", "/v1/postings", True),
            ("ledger", "payments", "GET", "/v1/postings", False),  # method outside the rule
            ("ledger", "payments", "POST", "/v1/postings/x", False),  # path outside the rule
            ("ledger", "statements", "GET", "/v1/accounts/0000014579/entries", True),
            ("ledger", "statements", "GET", "/v1/accounts//entries", False),  # empty segment
            ("ledger", "statements", "GET", "/v1/accounts/../admin/entries", False),
            ("ledger", "statements", "GET", "/v1/accounts/x/../../postings", False),
            ("ledger", "statements", "POST", "/v1/postings", False),
            ("payments", "statements", "POST", "/v1/transfers", False),  # no edge
            ("accounts", "statements", "GET", "/v1/accounts/1", False),
            ("accounts", "payments", "GET", "/v1/accounts/1", True),
            ("notifications", "payments", "POST", "/anything", True),  # edge without rules
            ("ledger", "gateway", "GET", "/", False),  # ledger is not routed by the gateway
            ("payments", "gateway", "POST", "/v1/transfers", True),
            ("payments", "payments", "POST", "/v1/transfers", False),  # no self edge
        ],
    )
    def test_decision_table(
        self, callee: str, caller: str, method: str, path: str, allowed: bool
    ) -> None:
        topo = default_topology()
        decision = topo.authorize(callee, topo.spiffe_id(caller), method, path)
        assert decision.allowed is allowed, decision.reason

    def test_no_identity_is_denied(self) -> None:
        decision = default_topology().authorize("ledger", None, "GET", "/")
        assert not decision.allowed
        assert decision.reason == "no verified caller identity"

    @pytest.mark.parametrize(
        "spiffe_id",
        [
            "spiffe://evil.local/ns/refbank/sa/payments",  # foreign trust domain
            "spiffe://refbank.local/ns/other/sa/payments",  # wrong namespace
            "spiffe://refbank.local/ns/refbank/sa/payments/",  # trailing slash
            "spiffe://refbank.local/ns/ramparts/sa/payments",  # platform namespace
            "payments",
            "",
        ],
    )
    def test_lookalike_identities_are_unknown(self, spiffe_id: str) -> None:
        decision = default_topology().authorize("ledger", spiffe_id, "POST", "/v1/postings")
        assert not decision.allowed
        assert "unknown identity" in decision.reason


class TestRejections:
    """Each rejection names the file, the line and the field."""

    def test_unknown_service_in_calls(self) -> None:
        text = TEXT.replace("calls: [ledger]", "calls: [ledgr]")
        exc = _reject(text)
        line = _line_of(text, "calls: [ledgr]")
        assert (
            f"ramparts.yaml:{line}: services.statements.calls[0]: unknown service 'ledgr'"
            in str(exc)
        )
        assert "did you mean 'ledger'" in str(exc)

    def test_unknown_service_in_route(self) -> None:
        text = TEXT.replace("service: statements", "service: statement")
        exc = _reject(text)
        line = _line_of(text, "service: statement")
        assert (
            f"ramparts.yaml:{line}: gateway.routes[4].service: unknown service 'statement'"
            in str(exc)
        )

    def test_shared_database_is_refused(self) -> None:
        text = TEXT.replace("database: statements", "database: ledger")
        exc = _reject(text)
        line = _line_of(text, "database: ledger", nth=2)
        assert f"ramparts.yaml:{line}: services.statements.database" in str(exc)
        assert "shared-database anti-pattern" in str(exc)
        assert "already owned by service 'ledger'" in str(exc)

    def test_duplicate_service_name(self) -> None:
        text = TEXT.replace("  statements:\n", "  accounts:\n", 1)
        exc = _reject(text)
        line = _line_of(text, "  accounts:", nth=2)
        assert f"ramparts.yaml:{line}: YAML error: duplicate key 'accounts'" in str(exc)

    def test_duplicate_port(self) -> None:
        text = TEXT.replace("listen: 127.0.0.1:7105", "listen: 127.0.0.1:7101")
        exc = _reject(text)
        line = _line_of(text, "listen: 127.0.0.1:7101", nth=2)
        assert (
            f"ramparts.yaml:{line}: services.statements.listen: port 7101 is already used"
            in str(exc)
        )

    def test_port_shared_with_platform_component(self) -> None:
        text = TEXT.replace("listen: 127.0.0.1:7105", "listen: 127.0.0.1:7000")
        assert "port 7000 is already used by platform.ca" in str(_reject(text))

    def test_unknown_key_is_a_typo(self) -> None:
        text = TEXT.replace("    calls: [ledger]", "    calss: [ledger]")
        exc = _reject(text)
        line = _line_of(text, "calss:")
        assert f"ramparts.yaml:{line}: services.statements.calss: unknown key 'calss'" in str(exc)
        assert "did you mean 'calls'" in str(exc)

    def test_unknown_top_level_key(self) -> None:
        exc = _reject(TEXT + "gatewy: {}\n")
        assert "gatewy: unknown key 'gatewy'; did you mean 'gateway'?" in str(exc)

    @pytest.mark.parametrize("wide", ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "203.0.113.0/31"])
    def test_egress_range_is_refused(self, wide: str) -> None:
        dest = f"'[{wide}]:443'" if ":" in wide else f"{wide}:443"
        text = TEXT.replace("hooks.refbank-partners.example:443", dest)
        exc = _reject(text)
        line = _line_of(text, dest)
        assert f"ramparts.yaml:{line}: services.notifications.egress[0]: egress to a range" in str(
            exc
        )

    def test_egress_range_allowed_when_explicit(self) -> None:
        text = TEXT.replace(
            "- hooks.refbank-partners.example:443", "- {to: 203.0.113.0/28:443, allow_range: true}"
        )
        rule = parse_topology(text).services["notifications"].egress[0]
        assert rule.is_range
        assert str(rule) == "203.0.113.0/28:443"

    def test_single_host_cidr_is_a_host(self) -> None:
        text = TEXT.replace("hooks.refbank-partners.example:443", "203.0.113.7/32:443")
        assert not parse_topology(text).services["notifications"].egress[0].is_range

    @pytest.mark.parametrize(
        ("old", "new", "expect"),
        [
            ("listen: 127.0.0.1:7104", "listen: 127.0.0.1:99999", "port must be 1-65535"),
            ("listen: 127.0.0.1:7104", "listen: ledger.internal:7104", "IP literal or 'localhost'"),
            ("version: 1", "version: 2", "version: Input should be 1"),
            ("trust_domain: refbank.local", "trust_domain: Ref Bank", "trust_domain"),
            ("algorithms: [RS256, ES256]", "algorithms: [none]", "'none' is never"),
            ("prefix: /v1/customers", "prefix: v1/customers", "absolute path"),
            ("methods: [POST]", "methods: [FETCH]", "unknown HTTP method"),
            ("rate: 10/s", "rate: lots", "rate must look like"),
        ],
    )
    def test_field_errors_name_line_and_field(self, old: str, new: str, expect: str) -> None:
        text = TEXT.replace(old, new, 1)
        exc = _reject(text)
        assert expect in str(exc)
        assert f"ramparts.yaml:{_line_of(text, new)}:" in str(exc)

    def test_rule_for_caller_without_edge(self) -> None:
        text = TEXT.replace("    calls: [ledger]\n", "")
        exc = _reject(text)
        assert "rule for caller 'statements', but 'statements' does not list 'ledger'" in str(exc)

    def test_service_named_like_platform_component(self) -> None:
        text = TEXT.replace("  statements:\n", "  gateway:\n").replace(
            "calls: [ledger]", "calls: []"
        )
        assert "'gateway' is the name of a platform component" in str(_reject(text))

    def test_jwt_route_without_issuers(self) -> None:
        start = TEXT.index("  issuers:")
        end = TEXT.index("  default_rate_limit")
        exc = _reject(TEXT[:start] + TEXT[end:])
        assert "route requires a JWT but the gateway has no issuers" in str(exc)

    def test_all_problems_reported_at_once(self) -> None:
        text = TEXT.replace("calls: [ledger]", "calls: [ledgr]").replace(
            "database: statements", "database: ledger"
        )
        exc = _reject(text)
        assert len(exc.problems) >= 2

    @pytest.mark.parametrize(
        ("text", "expect"),
        [
            ("", "must be a mapping"),
            ("- a\n- b\n", "must be a mapping"),
            ("version: 1\nservices: {a: [\n", "YAML error"),
            ("version: 1\n", "required field is missing"),
        ],
    )
    def test_malformed_files(self, text: str, expect: str) -> None:
        assert expect in str(_reject(text))

    def test_unreadable_file(self, tmp_path: Path) -> None:
        with pytest.raises(TopologyError, match="cannot read"):
            load_topology(tmp_path / "missing.yaml")

    def test_binary_file(self, tmp_path: Path) -> None:
        bad = tmp_path / "t.yaml"
        bad.write_bytes(b"\xff\xfe\x00garbage")
        with pytest.raises(TopologyError, match="not UTF-8"):
            load_topology(bad)


class TestPlatformEndpoints:
    """Workloads reach the CA, the secrets broker and the audit log; nothing else does."""

    @pytest.mark.parametrize("platform", ["ca", "secrets", "audit"])
    def test_every_workload_may_call_the_platform(self, platform: str) -> None:
        topo = default_topology()
        for caller in [*topo.services, "gateway"]:
            assert topo.authorize(platform, topo.spiffe_id(caller), "POST", "/v1/x").allowed, caller

    @pytest.mark.parametrize("caller", ["audit", "secrets", "witness", "console"])
    def test_platform_components_are_not_workloads(self, caller: str) -> None:
        topo = default_topology()
        decision = topo.authorize("audit", topo.spiffe_id(caller), "POST", "/v1/ingest")
        assert not decision.allowed
        assert "not a workload" in decision.reason

    def test_workloads_still_cannot_call_the_console_or_witness(self) -> None:
        topo = default_topology()
        assert not topo.authorize("witness", topo.spiffe_id("ledger"), "GET", "/").allowed


class TestWafExclusions:
    def test_ids_and_ranges_are_accepted(self) -> None:
        text = TEXT.replace(
            "      scopes: [statements:read]",
            "      scopes: [statements:read]\n      waf_exclude: [942100, '920000-920999']",
        )
        route = parse_topology(text).gateway.routes[-1]
        assert route.waf_exclude == (942100, "920000-920999")

    @pytest.mark.parametrize("bad", ["'94x'", "'942999-942100'", "'-5'"])
    def test_malformed_exclusions_name_the_line(self, bad: str) -> None:
        text = TEXT.replace(
            "      scopes: [statements:read]",
            f"      scopes: [statements:read]\n      waf_exclude: [{bad}]",
        )
        exc = _reject(text)
        assert "waf_exclude" in str(exc)
        assert f"ramparts.yaml:{_line_of(text, 'waf_exclude')}:" in str(exc)


class TestRateLimitBackend:
    def _with(self, block: str) -> str:
        return TEXT.replace(
            "  default_rate_limit:", f"  ratelimit:\n{block}\n  default_rate_limit:"
        )

    def test_redis_backend(self) -> None:
        text = self._with("    backend: redis\n    redis_url: redis://127.0.0.1:6379/0")
        assert parse_topology(text).gateway.ratelimit.redis_url == "redis://127.0.0.1:6379/0"

    def test_password_in_url_is_refused(self) -> None:
        exc = _reject(self._with("    backend: redis\n    redis_url: redis://:hunter2@cache:6379"))
        assert "must not carry a password" in str(exc)
        assert "hunter2" not in str(exc)  # the message names the field, never the secret

    def test_redis_backend_needs_a_url(self) -> None:
        exc = _reject(self._with("    backend: redis"))
        assert "backend 'redis' needs a redis_url" in str(exc)
