"""Exporters against local fake servers that check the exact wire format and reject anything off.

Each fake is a real HTTP server on 127.0.0.1. It validates method, path,
headers, body framing and field types the way the real product documents them,
answers 400 with the reason if anything is off, and records that reason as a
violation: every test asserts there were none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ramparts.audit.exporters import (
    ElasticExporter,
    ExportRecord,
    LokiExporter,
    Secret,
    SplunkHECExporter,
)
from ramparts.events import Outcome, SecurityEvent
from ramparts.telemetry.backoff import Backoff

FAST = Backoff(base=0.001, cap=0.01)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HEX64 = re.compile(r"[0-9a-f]{64}")
ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
HEC_TOKEN = "11111111-2222-3333-4444-555555555555"


class Reject(Exception):
    """A wire-format violation: the fake answers 400 and records the reason."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Fake:
    """A strict fake: ``check`` validates a request and returns (status, JSON body or None)."""

    check: Callable[[Request], tuple[int, Any]]
    requests: list[Request] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def serve():
    servers: list[ThreadingHTTPServer] = []

    def start(check: Callable[[Request], tuple[int, Any]]) -> Fake:
        fake = Fake(check)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                fake.requests.append(request)
                try:
                    status, body = fake.check(request)
                except Reject as exc:
                    fake.violations.append(str(exc))
                    status, body = 400, {"error": str(exc)}
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        fake.url = f"http://127.0.0.1:{server.server_address[1]}"
        return fake

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def leaf(n: int) -> str:
    return f"{n:064x}"


def event_record(
    n: int, *, outcome: Outcome = Outcome.DENY, when: float = 1767225600.123456
) -> ExportRecord:
    event = SecurityEvent(
        type="jwt.rejected",
        service="gateway",
        outcome=outcome,
        reason="token expired",
        peer="203.0.113.9",
        correlation_id=f"req-{n}",
        trace_id=TRACE,
        detail={"kid": "k1"},
        time=when,
    )
    return ExportRecord(n, leaf(n), event.to_dict())


def log_record(n: int) -> ExportRecord:
    entry = {
        "@timestamp": "2026-01-01T00:00:01.500Z",
        "log.level": "warning",
        "message": "upstream slow",
        "service.name": "payments",
        "correlation_id": "req-x",
        "transaction.id": "req-x",
        "trace.id": TRACE,
    }
    return ExportRecord(n, leaf(n), entry)


def run(coro):
    return asyncio.run(coro)


def require(condition: bool, why: str) -> None:
    if not condition:
        raise Reject(why)


# -- Elastic ---------------------------------------------------------------------------


class FakeElastic:
    """``_bulk`` with create semantics: 201 on first create of an _id, 409 after."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.docs: dict[str, dict[str, Any]] = {}
        self.item_override: Callable[[int, str], tuple[int, str] | None] = lambda attempt, _id: None
        self.request_status: Callable[[int], int | None] = lambda attempt: None
        self.attempt = 0
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> tuple[int, Any]:
        require(req.method == "POST", f"method {req.method}")
        require(req.path == "/_bulk", f"path {req.path}")
        require(req.headers.get("content-type") == "application/x-ndjson", "content-type")
        if self.api_key is not None:
            require(req.headers.get("authorization") == f"ApiKey {self.api_key}", "authorization")
        require(req.body.endswith(b"\n"), "body must end with a newline")
        lines = req.body.decode().split("\n")[:-1]
        require(len(lines) % 2 == 0 and lines, "bulk body must be action/source pairs")
        with self.lock:
            self.attempt += 1
            attempt = self.attempt
        pairs = []
        for action_line, source_line in zip(lines[::2], lines[1::2], strict=True):
            action, source = json.loads(action_line), json.loads(source_line)
            require(list(action) == ["create"], f"action must be create, got {list(action)}")
            meta = action["create"]
            require(set(meta) == {"_index", "_id"}, "create metadata must be _index and _id")
            require(isinstance(meta["_index"], str) and isinstance(meta["_id"], str), "meta types")
            require(isinstance(source, dict), "source must be an object")
            require(ISO_Z.fullmatch(str(source.get("@timestamp"))) is not None, "@timestamp")
            require(HEX64.fullmatch(str(source.get("event.hash"))) is not None, "event.hash")
            require(source.get("trace.id") == TRACE, "trace.id")
            require(isinstance(source.get("transaction.id"), str), "transaction.id")
            require(type(source.get("event.sequence")) is int, "event.sequence must be an integer")
            require(meta["_id"] == f"{source['event.sequence']}-{source['event.hash']}", "_id")
            pairs.append((meta, source))
        forced = self.request_status(attempt)
        if forced is not None:
            for meta, source in pairs:  # stored, but the client hears a failure
                self.docs.setdefault(meta["_id"], source)
            return forced, {"error": "forced"}
        items = []
        for meta, source in pairs:
            item: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"]}
            override = self.item_override(attempt, meta["_id"])
            if override is not None:
                item["status"], kind = override
                item["error"] = {"type": kind, "reason": "forced"}
            elif meta["_id"] in self.docs:
                item["status"] = 409
                item["error"] = {"type": "version_conflict_engine_exception"}
            else:
                self.docs[meta["_id"]] = source
                item["status"], item["result"] = 201, "created"
            items.append({"create": item})
        errors = any(i["create"]["status"] >= 300 for i in items)
        return 200, {"took": 3, "errors": errors, "items": items}


class TestElastic:
    def exporter(self, fake: Fake, **kw: Any) -> ElasticExporter:
        return ElasticExporter(
            fake.url, index="logs-ramparts-default", api_key=Secret(API_KEY), backoff=FAST, **kw
        )

    def test_bulk_wire_format_and_ecs_fields(self, serve) -> None:
        """NDJSON create/source pairs with ECS fields; security events and log records both map."""
        es = FakeElastic(API_KEY)
        fake = serve(es)
        records = [event_record(0), log_record(1), event_record(2, outcome=Outcome.ALLOW)]
        result = run(self._export(fake, records))
        assert fake.violations == []
        assert (result.sent, result.failed, result.requests) == (3, [], 1)
        doc = es.docs[f"0-{leaf(0)}"]
        assert doc["@timestamp"] == "2026-01-01T00:00:00.123Z"
        assert doc["event.action"] == "jwt.rejected"
        assert doc["event.outcome"] == "failure"
        assert doc["event.hash"] == leaf(0)
        assert doc["transaction.id"] == "req-0"
        assert doc["service.name"] == "gateway"
        assert doc["ramparts.peer"] == "203.0.113.9"
        assert es.docs[f"2-{leaf(2)}"]["event.outcome"] == "success"
        log_doc = es.docs[f"1-{leaf(1)}"]
        assert (log_doc["log.level"], log_doc["message"]) == ("warning", "upstream slow")

    async def _export(self, fake: Fake, records, **kw: Any):
        async with self.exporter(fake, **kw) as exporter:
            return await exporter.export(records)

    def test_retries_only_failed_items(self, serve) -> None:
        """429 items are re-sent alone; a 400 mapping error fails that item without retry."""
        es = FakeElastic(API_KEY)
        es.item_override = lambda attempt, _id: (
            (429, "es_rejected_execution_exception") if attempt == 1 and _id.startswith("1-")
            else (400, "mapper_parsing_exception") if _id.startswith("2-")
            else None
        )  # fmt: skip
        fake = serve(es)
        result = run(self._export(fake, [event_record(0), event_record(1), event_record(2)]))
        assert fake.violations == []
        assert result.sent == 2
        assert [(f.index, f.reason) for f in result.failed] == [
            (2, "item HTTP 400 mapper_parsing_exception")
        ]
        second = fake.requests[1].body.decode().split("\n")
        assert len(second) == 3 and json.loads(second[0])["create"]["_id"] == f"1-{leaf(1)}"
        assert sorted(es.docs) == [f"0-{leaf(0)}", f"1-{leaf(1)}"]

    def test_lost_answer_retry_is_idempotent(self, serve) -> None:
        """Stored but answered 503: the retry gets 409s, counted as delivered, no duplicates."""
        es = FakeElastic(API_KEY)
        es.request_status = lambda attempt: 503 if attempt == 1 else None
        fake = serve(es)
        result = run(self._export(fake, [event_record(0), event_record(1)]))
        assert fake.violations == []
        assert (result.sent, result.failed, result.requests) == (2, [], 2)
        assert len(es.docs) == 2

    def test_auth_failure_is_not_retried(self, serve) -> None:
        es = FakeElastic(API_KEY)
        es.request_status = lambda attempt: 401
        fake = serve(es)
        result = run(self._export(fake, [event_record(0)]))
        assert result.requests == 1
        assert [f.reason for f in result.failed] == ["HTTP 401"]

    def test_gives_up_after_max_attempts(self, serve) -> None:
        es = FakeElastic(API_KEY)
        es.request_status = lambda attempt: 503
        fake = serve(es)
        result = run(self._export(fake, [event_record(0)], max_attempts=3))
        assert result.requests == 3
        assert "gave up after 3 attempts" in result.failed[0].reason

    def test_unreachable_cluster_fails_after_retries(self) -> None:
        exporter = ElasticExporter("http://127.0.0.1:9", index="x", backoff=FAST, max_attempts=2)

        async def go():
            async with exporter:
                return await exporter.export([event_record(0)])

        result = run(go())
        assert result.requests == 2 and not result.ok

    def test_chunks_by_max_batch(self, serve) -> None:
        es = FakeElastic(API_KEY)
        fake = serve(es)
        result = run(self._export(fake, [event_record(n) for n in range(7)], max_batch=3))
        assert (result.sent, result.requests) == (7, 3)

    @pytest.mark.parametrize("index", ["", "Logs", "a b", "_x", "logs/x"])
    def test_rejects_bad_index_names(self, index: str) -> None:
        with pytest.raises(ValueError, match="index name"):
            ElasticExporter("http://127.0.0.1:9200", index=index)


# -- Splunk HEC ------------------------------------------------------------------------


HEC_KEYS = {"time", "host", "source", "sourcetype", "index", "event", "fields"}


def parse_concatenated(body: str) -> list[dict[str, Any]]:
    """HEC's framing: JSON objects back to back; anything else between them is rejected."""
    decoder = json.JSONDecoder()
    events, pos = [], 0
    require(bool(body), "empty body")
    while pos < len(body):
        require(body[pos] == "{", f"expected an object at offset {pos}")
        obj, pos = decoder.raw_decode(body, pos)
        events.append(obj)
    return events


class FakeHEC:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.responses: list[tuple[int, Any]] = []  # consumed first, then success

    def __call__(self, req: Request) -> tuple[int, Any]:
        require(req.method == "POST", f"method {req.method}")
        require(req.path == "/services/collector/event", f"path {req.path}")
        if req.headers.get("authorization") != f"Splunk {HEC_TOKEN}":
            return 401, {"text": "Invalid authorization", "code": 3}
        require(req.headers.get("content-type") == "application/json", "content-type")
        events = parse_concatenated(req.body.decode())
        for e in events:
            require(set(e) <= HEC_KEYS, f"unknown HEC keys {set(e) - HEC_KEYS}")
            require(
                type(e.get("time")) in (int, float), "time must be a JSON number (epoch seconds)"
            )
            require(
                all(isinstance(e.get(k), str) for k in ("host", "source", "sourcetype")), "metadata"
            )
            require(isinstance(e.get("event"), dict), "event must be an object")
        if self.responses:
            status, body = self.responses.pop(0)
            if status == 400 and body.get("code") == 6:
                self.events += events[: body["invalid-event-number"]]
            return status, body
        self.events += events
        return 200, {"text": "Success", "code": 0}


class TestSplunk:
    def exporter(self, fake: Fake, **kw: Any) -> SplunkHECExporter:
        return SplunkHECExporter(fake.url, token=Secret(HEC_TOKEN), host="gw-1", backoff=FAST, **kw)

    async def _export(self, fake: Fake, records, **kw: Any):
        async with self.exporter(fake, **kw) as exporter:
            return await exporter.export(records)

    def test_hec_wire_format(self, serve) -> None:
        hec = FakeHEC()
        fake = serve(hec)
        result = run(self._export(fake, [event_record(0), log_record(1)], index="security"))
        assert fake.violations == []
        assert result.sent == 2 and result.ok
        first, second = hec.events
        assert first["time"] == 1767225600.123
        assert (first["host"], first["source"], first["sourcetype"], first["index"]) == (
            "gw-1", "ramparts", "_json", "security",
        )  # fmt: skip
        assert first["event"]["event.hash"] == leaf(0)
        assert first["event"]["trace.id"] == TRACE
        assert second["time"] == 1767225601.5
        assert b"}{" in fake.requests[0].body  # concatenated, no separator

    def test_invalid_event_number_splits_the_batch(self, serve) -> None:
        """Code 6 at event 1: event 0 was indexed, 1 fails, 2 is sent again."""
        hec = FakeHEC()
        hec.responses = [
            (400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 1})
        ]
        fake = serve(hec)
        result = run(self._export(fake, [event_record(0), event_record(1), event_record(2)]))
        assert fake.violations == []
        assert result.sent == 2
        assert [f.index for f in result.failed] == [1]
        assert [e["event"]["event.sequence"] for e in hec.events] == [0, 2]

    def test_busy_is_retried(self, serve) -> None:
        hec = FakeHEC()
        hec.responses = [(503, {"text": "Server is busy", "code": 9})]
        fake = serve(hec)
        result = run(self._export(fake, [event_record(0)]))
        assert (result.sent, result.requests) == (1, 2)

    def test_bad_token_is_a_failure(self, serve) -> None:
        fake = serve(FakeHEC())
        exporter = SplunkHECExporter(fake.url, token=Secret("wrong-token"), backoff=FAST)

        async def go():
            async with exporter:
                return await exporter.export([event_record(0)])

        result = run(go())
        assert result.requests == 1
        assert result.failed[0].reason == "HTTP 401 (HEC code 3)"

    def test_token_must_be_a_secret(self) -> None:
        with pytest.raises(TypeError, match="Secret"):
            SplunkHECExporter("http://127.0.0.1:8088", token=HEC_TOKEN)  # type: ignore[arg-type]


# -- Loki ------------------------------------------------------------------------------


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
ALLOWED_LABELS = {"job", "env", "service", "kind", "outcome", "level"}


class FakeLoki:
    def __init__(self, tenant: str | None) -> None:
        self.tenant = tenant
        self.streams: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    def __call__(self, req: Request) -> tuple[int, Any]:
        require(req.method == "POST", f"method {req.method}")
        require(req.path == "/loki/api/v1/push", f"path {req.path}")
        require(req.headers.get("content-type") == "application/json", "content-type")
        if self.tenant is not None:
            require(req.headers.get("x-scope-orgid") == self.tenant, "X-Scope-OrgID")
        body = json.loads(req.body)
        require(set(body) == {"streams"} and isinstance(body["streams"], list), "top level")
        for stream in body["streams"]:
            require(set(stream) == {"stream", "values"}, "stream keys")
            labels = stream["stream"]
            require(isinstance(labels, dict) and labels, "labels")
            for name, value in labels.items():
                require(LABEL_NAME.fullmatch(name) is not None, f"label name {name}")
                require(name in ALLOWED_LABELS, f"high-cardinality or unknown label {name}")
                require(isinstance(value, str) and value, f"label {name} value")
                require(re.search(r"[0-9a-f]{16}", value) is None, f"label {name} looks like an id")
            stamps = []
            for value in stream["values"]:
                require(isinstance(value, list) and len(value) == 2, "value must be [ts, line]")
                ts, line = value
                require(
                    isinstance(ts, str) and ts.isdigit(), "timestamp must be a string of digits"
                )
                require(isinstance(line, str), "line must be a string")
                stamps.append(int(ts))
            require(stamps == sorted(stamps), "values must be oldest first")
        if self.statuses:
            return self.statuses.pop(0), {"message": "slow down"}
        self.streams += body["streams"]
        return 204, None


class TestLoki:
    async def _export(self, fake: Fake, records, **kw: Any):
        async with LokiExporter(fake.url, backoff=FAST, **kw) as exporter:
            return await exporter.export(records)

    def test_push_wire_format_and_streams(self, serve) -> None:
        """Records group into low-cardinality streams; timestamps are exact nanosecond strings."""
        loki = FakeLoki(tenant="bank")
        fake = serve(loki)
        records = [
            event_record(0, when=1767225600.5),
            event_record(1, when=1767225600.123456),
            event_record(2, outcome=Outcome.ALLOW),
            log_record(3),
        ]
        labels = {"job": "ramparts", "env": "test"}
        result = run(self._export(fake, records, tenant="bank", labels=labels))
        assert fake.violations == []
        assert result.sent == 4
        by_labels = {tuple(sorted(s["stream"].items())): s["values"] for s in loki.streams}
        deny = by_labels[(("env", "test"), ("job", "ramparts"), ("kind", "event"),
                          ("outcome", "deny"), ("service", "gateway"))]  # fmt: skip
        assert [ts for ts, _ in deny] == ["1767225600123456000", "1767225600500000000"]
        line = json.loads(deny[0][1])
        assert (line["event.hash"], line["trace.id"]) == (leaf(1), TRACE)
        log_values = by_labels[(("env", "test"), ("job", "ramparts"), ("kind", "log"),
                                ("level", "warning"), ("service", "payments"))]  # fmt: skip
        assert log_values[0][0] == "1767225601500000000"
        assert len(loki.streams) == 3

    def test_rate_limited_push_is_retried(self, serve) -> None:
        loki = FakeLoki(tenant=None)
        loki.statuses = [429]
        fake = serve(loki)
        result = run(self._export(fake, [event_record(0)]))
        assert (result.sent, result.requests) == (1, 2)

    def test_bad_request_is_not_retried(self, serve) -> None:
        loki = FakeLoki(tenant=None)
        loki.statuses = [400]
        fake = serve(loki)
        result = run(self._export(fake, [event_record(0)]))
        assert (result.requests, result.failed[0].reason) == (1, "HTTP 400")

    @pytest.mark.parametrize("labels", [{"bad-name": "x"}, {"__name__": "x"}, {"service": "x"}])
    def test_rejects_bad_static_labels(self, labels: dict[str, str]) -> None:
        with pytest.raises(ValueError, match="label"):
            LokiExporter("http://127.0.0.1:3100", labels=labels)


# -- Secrets ---------------------------------------------------------------------------


class TestSecret:
    def test_masked_everywhere(self, serve, caplog) -> None:
        """The token is on the wire, but not in reprs, strings or any log record."""
        hec = FakeHEC()
        fake = serve(hec)
        token = Secret(HEC_TOKEN)
        exporter = SplunkHECExporter(fake.url, token=token, backoff=FAST)
        with caplog.at_level(logging.DEBUG):

            async def go():
                async with exporter:
                    return await exporter.export([event_record(0)])

            run(go())
        assert fake.requests[0].headers["authorization"] == f"Splunk {HEC_TOKEN}"
        for text in (repr(token), str(token), f"{token}", repr(exporter), caplog.text):
            assert HEC_TOKEN not in text
        with pytest.raises(TypeError):
            pickle.dumps(token)

    def test_from_file(self, tmp_path: Path) -> None:
        path = tmp_path / "token"
        path.write_text(HEC_TOKEN + "\n")
        os.chmod(path, 0o600)
        assert Secret.from_file(path).reveal() == HEC_TOKEN

    def test_loose_file_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "token"
        path.write_text(HEC_TOKEN)
        os.chmod(path, 0o644)
        with pytest.raises(ValueError, match="chmod 600") as info:
            Secret.from_file(path)
        assert HEC_TOKEN not in str(info.value)

    @pytest.mark.parametrize("value", ["", "two words", "line\r\nX-Injected: 1", "tab\t"])
    def test_rejects_values_that_could_break_a_header(self, value: str, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="secret"):
            Secret(value)
        if value:
            path = tmp_path / "t"
            path.write_text(value)
            os.chmod(path, 0o600)
            with pytest.raises(ValueError, match="secret file") as info:
                Secret.from_file(path)
            assert value not in str(info.value)


class TestRecord:
    def test_rejects_bad_leaf_hash(self) -> None:
        with pytest.raises(ValueError, match="64 lowercase hex"):
            ExportRecord(0, "ABC", {})

    def test_rejects_negative_index(self) -> None:
        with pytest.raises(ValueError, match=">= 0"):
            ExportRecord(-1, leaf(0), {})


def test_package_surface_and_doctest() -> None:
    import doctest

    import ramparts.audit.exporters as pkg
    import ramparts.audit.exporters._secret as secret_mod

    assert sorted(pkg.__all__) == sorted(
        n for n in dir(pkg) if not n.startswith("_") and n[0].isupper()
    )
    assert doctest.testmod(pkg).failed == 0
    assert doctest.testmod(secret_mod).failed == 0
