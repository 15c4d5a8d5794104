"""The engine as an EventSink: fed by an EventEmitter, from any thread, never blocking."""

from __future__ import annotations

import asyncio
import threading

from tests.alerts._helpers import T0, defaults, event

from ramparts.alerts import Alert, AlertEngine
from ramparts.events import EventEmitter, MemorySink


class TestOnline:
    def test_emitter_feeds_engine(self) -> None:
        """An EventEmitter with the engine as a sink raises alerts in the running loop."""

        async def main() -> list[Alert]:
            seen: list[Alert] = []
            engine = AlertEngine(defaults(), silence_after=None)
            engine.on_alert = seen.append
            emitter = EventEmitter([MemorySink(), engine], service="payments")
            await engine.start()
            emitter.deny("egress.blocked", reason="not allowed", detail={"destination": "x.io:443"})
            assert await engine.wait_idle(5)
            await engine.aclose()
            return seen

        (alert,) = asyncio.run(main())
        assert alert.rule == "egress_blocked"

    def test_writes_from_other_threads(self) -> None:
        """write() from worker threads is safe; every event is evaluated."""

        async def main() -> AlertEngine:
            engine = AlertEngine(defaults(), silence_after=None)
            await engine.start()

            def burst(k: int) -> None:
                for i in range(50):
                    engine.write(event("authz.allowed", outcome="allow", t=i, n=k))

            threads = [threading.Thread(target=burst, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert await engine.wait_idle(10)
            await engine.aclose()
            return engine

        engine = asyncio.run(main())
        assert engine.stats().events == 200

    def test_full_inbox_drops_and_counts_without_raising(self) -> None:
        """Before start (or when the consumer lags) a full inbox drops, never blocks or raises."""
        engine = AlertEngine(defaults(), silence_after=None, inbox_size=3)
        for i in range(5):
            engine.write(event("authz.allowed", outcome="allow", t=i))
        assert engine.stats().dropped_events == 2

        async def main() -> None:
            await engine.start()
            assert await engine.wait_idle(5)
            await engine.aclose()

        asyncio.run(main())
        assert engine.stats().events == 3

    def test_ticker_reports_silence_on_the_injected_clock(self) -> None:
        """Online, time comes from the clock: a silent service is found by the ticker."""
        now = [T0]

        async def main() -> list[Alert]:
            seen: list[Alert] = []
            engine = AlertEngine(defaults(), silence_after=60, clock=lambda: now[0],
                                 tick_interval=0.01)  # fmt: skip
            engine.on_alert = seen.append
            await engine.start()
            engine.write(event("authz.allowed", outcome="allow", service="ledger"))
            assert await engine.wait_idle(5)
            now[0] = T0 + 61
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not seen and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await engine.aclose()
            return seen

        alerts = asyncio.run(main())
        assert [a.rule for a in alerts] == ["log_source_silent"]
