"""Driving pipeline coroutines without a task: results, errors, real suspensions."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from ramparts.gateway._pipeline import start, start_eager
from ramparts.telemetry.context import bind_correlation, current_correlation


def _run(body):
    return uvloop.run(body())


async def _collect(runner, coro):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    task = runner(coro, lambda result, err: fut.set_result((result, err)))
    return task, await asyncio.wait_for(fut, 5)


def test_eager_without_suspension_creates_no_task():
    async def stage():
        return "reply"

    async def body():
        task, (result, err) = await _collect(start_eager, stage())
        assert task is None
        assert (result, err) == ("reply", None)

    _run(body)


def test_eager_error_is_reported():
    async def stage():
        raise ValueError("boom")

    async def body():
        _, (result, err) = await _collect(start_eager, stage())
        assert result is None
        assert isinstance(err, ValueError)

    _run(body)


@pytest.mark.parametrize("runner", [start_eager, start])
def test_suspension_on_futures_tasks_and_shield(runner):
    """A stage that really waits (a future, a shielded task, sleep) finishes correctly."""

    async def fetch():
        await asyncio.sleep(0.01)
        return 41

    async def stage():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_result, 1)
        first = await fut
        second = await asyncio.shield(loop.create_task(fetch()))
        await asyncio.sleep(0)
        return first + second

    async def body():
        task, (result, err) = await _collect(runner, stage())
        assert task is not None
        assert (result, err) == (42, None)

    _run(body)


def test_failed_future_raises_inside_the_stage():
    async def stage():
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.01, fut.set_exception, KeyError("k"))
        try:
            await fut
        except KeyError:
            return "handled"
        return "not raised"

    async def body():
        _, (result, err) = await _collect(start_eager, stage())
        assert (result, err) == ("handled", None)

    _run(body)


def test_correlation_binding_does_not_leak_into_the_caller():
    async def stage():
        with bind_correlation("req-9"):
            await asyncio.sleep(0.01)
            return current_correlation().correlation_id

    async def body():
        _, (result, err) = await _collect(start_eager, stage())
        assert (result, err) == ("req-9", None)
        assert current_correlation() is None

    _run(body)
