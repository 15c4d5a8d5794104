"""The egress client against real servers on 127.0.0.1: bypasses refused, allowed calls work."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import trustme
from tests.egress._server import http_server

from ramparts.config import EgressRule
from ramparts.egress import EgressBlocked, EgressClient, EgressError, EgressPolicy
from ramparts.events import EventEmitter, MemorySink

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
PARTNER = "partner.test"


def _client(
    port: int,
    *,
    resolver: Callable[[str, int], Any] | None = None,
    dangerously_allow: tuple[Any, ...] = (),
    extra_rules: tuple[str, ...] = (),
    ssl_context: ssl.SSLContext | None = None,
    **kw: Any,
) -> tuple[EgressClient, MemorySink]:
    rules = [EgressRule.parse(f"{PARTNER}:{port}"), *(EgressRule.parse(r) for r in extra_rules)]
    policy = EgressPolicy("notifications", rules, dangerously_allowed_networks=dangerously_allow)
    sink = MemorySink()

    async def partner_only(host: str, p: int) -> list[Any]:
        # The test's DNS: only the partner's name exists, and it lives on loopback.
        return [ipaddress.ip_address("127.0.0.1")] if host == PARTNER else []

    client = EgressClient(
        policy,
        EventEmitter([sink]),
        resolver=resolver or partner_only,
        ssl_context=ssl_context,
        **kw,
    )
    return client, sink


def _ok(method: str, target: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"delivered"


def bypasses(port: int) -> list[str]:
    """Every way of writing 'the machine itself' that SSRF filters have missed."""
    return [
        f"http://127.0.0.1:{port}/",
        f"http://2130706433:{port}/",
        f"http://0x7f000001:{port}/",
        f"http://0x7f.1:{port}/",
        f"http://0177.0.0.1:{port}/",
        f"http://127.1:{port}/",
        f"http://127.0.0.1.:{port}/",
        f"http://%31%32%37.0.0.1:{port}/",
        f"http://１２７.０.０.１:{port}/",
        f"http://[::1]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[::127.0.0.1]:{port}/",
        f"http://[64:ff9b::7f00:1]:{port}/",
        f"http://[2002:7f00:1::]:{port}/",
        f"http://0.0.0.0:{port}/",
        f"http://[::]:{port}/",
        f"http://localhost:{port}/",
        f"http://{PARTNER}:{port}@127.0.0.1:{port}/",
        f"http://127.0.0.1:{port}\\@{PARTNER}:{port}/",
        f"http://{PARTNER}:{port}\\@127.0.0.1:{port}/",
        f"http://[fe80::1%25lo]:{port}/",
        f"gopher://127.0.0.1:{port}/",
        f"http://169.254.169.254:{port}/latest/meta-data/",
        f"http://[::ffff:a9fe:a9fe]:{port}/",
        f"http://0251.0376.0251.0376:{port}/",
    ]


def test_every_bypass_class_is_blocked_with_an_event() -> None:
    """Loopback in every spelling is refused, even when listed in the allow-list itself."""

    async def run() -> None:
        async with http_server(_ok) as server:
            extra = (f"127.0.0.1:{server.port}", f"[::1]:{server.port}", f"0.0.0.0:{server.port}")
            client, sink = _client(server.port, extra_rules=extra)
            urls = bypasses(server.port)
            for url in urls:
                with pytest.raises(EgressBlocked):
                    await client.request("POST", url, content=b"{}")
            await client.aclose()
            assert server.requests == [], "a bypass reached the server"
            events = sink.of_type("egress.blocked")
            assert len(events) == len(urls)
            assert all(e.service == "notifications" and e.outcome == "deny" for e in events)
            assert all("?" not in e.detail["destination"] for e in events)

    asyncio.run(run())


def test_allowed_name_resolving_to_private_address_is_blocked() -> None:
    """DNS that points an allowed partner name at the inside is an attack, not a partner."""

    async def run() -> None:
        async with http_server(_ok) as server:
            client, sink = _client(server.port)  # no dangerous allowance: loopback refused
            with pytest.raises(
                EgressBlocked, match=r"partner.test resolves to 127.0.0.1, loopback"
            ):
                await client.request("GET", f"http://{PARTNER}:{server.port}/")
            await client.aclose()
            assert server.requests == []
            assert len(sink.events) == 1

    asyncio.run(run())


@pytest.mark.parametrize(
    "answers",
    [
        ["93.184.216.34", "10.0.0.7"],  # one good, one private: refuse the lot
        ["10.0.0.7", "93.184.216.34"],
        ["169.254.169.254"],
        ["::ffff:169.254.169.254"],
        ["fd12::1"],
        [],
    ],
)
def test_any_bad_resolved_address_blocks(answers: list[str]) -> None:
    async def run() -> None:
        async def resolver(host: str, port: int) -> list[Any]:
            return [ipaddress.ip_address(a) for a in answers]

        client, sink = _client(443, resolver=resolver)
        with pytest.raises(EgressBlocked):
            await client.check(f"https://{PARTNER}:443/hook")
        await client.aclose()
        assert len(sink.of_type("egress.blocked")) == 1

    asyncio.run(run())


def test_not_in_allow_list_is_blocked() -> None:
    async def run() -> None:
        client, sink = _client(443)
        for url in (
            "https://evil.example/",
            f"https://{PARTNER}:8443/",
            f"https://sub.{PARTNER}:443/",
        ):
            with pytest.raises(EgressBlocked, match="not in notifications's egress allow-list"):
                await client.check(url)
        await client.aclose()
        assert len(sink.events) == 3

    asyncio.run(run())


def test_connection_is_pinned_to_the_checked_address() -> None:
    """One lookup per hop; a rebinding answer on a second lookup is never asked for."""

    async def run() -> None:
        calls: list[str] = []

        async def rebinding(host: str, port: int) -> list[Any]:
            calls.append(host)
            first = len(calls) == 1
            return [ipaddress.ip_address("127.0.0.1" if first else "169.254.169.254")]

        async with http_server(_ok) as server:
            client, _ = _client(server.port, resolver=rebinding, dangerously_allow=LOOPBACK)
            resp = await client.request(
                "POST", f"http://{PARTNER}:{server.port}/hook", content=b"x"
            )
            await client.aclose()
        assert (resp.status, resp.body) == (200, b"delivered")
        assert calls == [PARTNER]
        assert server.requests[0][2]["host"] == f"{PARTNER}:{server.port}"

    asyncio.run(run())


def test_allowed_destination_over_tls_verifies_the_host_name() -> None:
    async def run() -> None:
        ca = trustme.CA()
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(PARTNER).configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        async with http_server(_ok, tls=server_ctx) as server:
            client, _ = _client(server.port, dangerously_allow=LOOPBACK, ssl_context=client_ctx)
            resp = await client.request(
                "POST", f"https://{PARTNER}:{server.port}/hook", content=b"{}"
            )
            await client.aclose()
        assert resp.status == 200

        wrong_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("someone-else.test").configure_cert(wrong_ctx)
        async with http_server(_ok, tls=wrong_ctx) as server:
            client, _ = _client(server.port, dangerously_allow=LOOPBACK, ssl_context=client_ctx)
            with pytest.raises(EgressError, match="network error"):
                await client.request("GET", f"https://{PARTNER}:{server.port}/")
            await client.aclose()

    asyncio.run(run())


def test_every_redirect_hop_is_checked() -> None:
    async def run() -> None:
        def redirect(
            method: str, target: str, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            if target == "/start":
                return 302, {"location": "/next"}, b""
            if target == "/next":
                return 307, {"location": "http://169.254.169.254/latest/meta-data/"}, b""
            return 200, {}, b"never"

        async with http_server(redirect) as server:
            client, sink = _client(server.port, dangerously_allow=LOOPBACK)
            with pytest.raises(EgressBlocked, match="cloud metadata"):
                await client.request("GET", f"http://{PARTNER}:{server.port}/start")
            await client.aclose()
        assert [r[1] for r in server.requests] == ["/start", "/next"]
        assert sink.events[-1].detail["destination"] == "http://169.254.169.254:80"

    asyncio.run(run())


def test_redirects_are_bounded_and_drop_credentials_across_origins() -> None:
    async def run() -> None:
        def loop(
            method: str, target: str, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            return 302, {"location": target + "x"}, b""

        async with http_server(loop) as server:
            client, _ = _client(server.port, dangerously_allow=LOOPBACK, max_redirects=3)
            with pytest.raises(EgressError, match="more than 3 redirects"):
                await client.request(
                    "GET",
                    f"http://{PARTNER}:{server.port}/a",
                    headers={"Authorization": "Bearer t"},
                )
            await client.aclose()
        assert len(server.requests) == 4
        assert all(
            r[2].get("authorization") == "Bearer t" for r in server.requests
        )  # same origin keeps it

    asyncio.run(run())


def test_response_size_is_bounded() -> None:
    async def run() -> None:
        def big(
            method: str, target: str, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            return 200, {}, b"x" * 5000

        async with http_server(big) as server:
            client, _ = _client(server.port, dangerously_allow=LOOPBACK, max_response_bytes=4096)
            with pytest.raises(EgressError, match="exceeds 4096 bytes"):
                await client.request("GET", f"http://{PARTNER}:{server.port}/")
            await client.aclose()

    asyncio.run(run())


def test_time_is_bounded() -> None:
    async def run() -> None:
        def silent(
            method: str, target: str, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            return 0, {}, b""

        async with http_server(silent) as server:
            client, _ = _client(server.port, dangerously_allow=LOOPBACK, timeout=0.3)
            with pytest.raises(EgressError, match="timed out"):
                await client.request("GET", f"http://{PARTNER}:{server.port}/")
            await client.aclose()

    asyncio.run(run())
