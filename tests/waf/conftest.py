"""WAF test fixtures: engines are loaded once per session (loading CRS takes ~1 s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ramparts.events import EventEmitter, MemorySink
from ramparts.waf import Transaction, Verdict, WafEngine

BROWSER_HEADERS = [
    ("Host", "bank.example"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.7"),
    ("Accept-Encoding", "gzip, deflate, br"),
]


def run(
    engine: WafEngine,
    uri: str = "/",
    *,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    mode: str | None = None,
) -> tuple[Transaction, Verdict | None]:
    """One request through phases 1-2; returns the transaction and the verdict."""
    hdrs = list(BROWSER_HEADERS if headers is None else headers)
    if content_type is not None:
        hdrs.append(("Content-Type", content_type))
    if body:
        hdrs.append(("Content-Length", str(len(body))))
    tx = engine.new_transaction("192.0.2.10", method, uri, "1.1", hdrs, mode=mode)
    verdict = tx.process_request_headers()
    if verdict is None:
        verdict = tx.process_request_body(body, content_type)
    return tx, verdict


@pytest.fixture
def run_request() -> Callable[..., tuple[Transaction, Verdict | None]]:
    return run


@pytest.fixture(scope="session")
def builtin_engine() -> WafEngine:
    """Our own rules only (no CRS), blocking."""
    return WafEngine.load()


@pytest.fixture(scope="session")
def crs_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "crs"


@pytest.fixture(scope="session")
def crs_engine(crs_dir: Path) -> WafEngine:
    """CRS at PL1 plus our rules, blocking."""
    return WafEngine.load(crs_path=crs_dir)


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def make_engine(tmp_path: Path, sink: MemorySink) -> Callable[..., WafEngine]:
    """Engine from SecLang text (no built-in rules), events into ``sink``."""

    def make(text: str, *, mode: str = "block", builtin: bool = False) -> WafEngine:
        path = tmp_path / "rules.conf"
        path.write_text(text)
        emitter = EventEmitter([sink], service="gateway")
        return WafEngine.load([path], mode=mode, builtin_rules=builtin, emitter=emitter)

    return make
