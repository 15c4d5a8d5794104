"""Run the asynchronous stages of the pipeline for one request.

The prelude stages (correlation, hygiene, route) are plain calls made by the
connection itself. The stages that may wait (WAF, JWT, rate limit) run here.

Most requests pass them without waiting for anything (the JWT verification
cache hits, the in-memory limiter answers at once), and an asyncio Task per
request would then cost more than the stages. So when every stage of a route
is *eager-safe*, :func:`start_eager` drives the coroutine by hand and creates
a task only if it really suspends, to finish it from where it stopped.

Eager-safe means: nothing the stage runs needs ``asyncio.current_task()``
before its first real suspension. That rules out redis-py (``asyncio.timeout``)
and httpx/anyio (cancel scopes) called *directly*; it holds for
``ramparts.jwt.JWTValidator`` (its JWKS fetch runs in a task of its own and is
awaited through ``asyncio.shield``) and for ``RateLimiter`` over
``MemoryBackend`` (no await at all). Anything else runs in a real task
(:func:`start`). A route with no such stage creates neither.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ramparts.gateway._hooks import Stage
from ramparts.gateway._http import Reply
from ramparts.gateway._request import Request
from ramparts.telemetry.context import bind_correlation

__all__ = ["run_pipeline", "start", "start_eager"]

Done = Callable[[Reply | None, BaseException | None], None]


async def run_pipeline(stages: Sequence[Stage], req: Request) -> Reply | None:
    """Each async stage in order; the first Reply ends the run."""
    # Bind the correlation for the run, so events emitted inside the JWT
    # validator and the limiter carry it.
    with bind_correlation(req.correlation_id, trace_id=req.trace_id):
        for stage in stages:
            reply = await stage(req)
            if reply is not None:
                return reply
    return None


def start_eager(coro: Coroutine[Any, Any, Reply | None], done: Done) -> asyncio.Task[None] | None:
    """Run ``coro`` now; if it suspends, finish it in a task. ``done`` is called either way."""
    # A context of its own, so the correlation bound inside the pipeline never
    # leaks into the protocol callback that started it, and a pipeline that
    # suspends resets its binding in the same context it set it in.
    ctx = contextvars.copy_context()
    try:
        yielded = ctx.run(coro.send, None)
    except StopIteration as stop:
        done(stop.value, None)
        return None
    except Exception as exc:
        done(None, exc)
        return None
    return asyncio.get_running_loop().create_task(_resume(coro, yielded, done), context=ctx)


async def _resume(coro: Coroutine[Any, Any, Reply | None], yielded: Any, done: Done) -> None:
    """Finish a coroutine that suspended on ``yielded`` while being driven by hand."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)  # a bare yield: give the loop one turn
            else:
                # The coroutine awaits this future. Clear the "blocking" mark its
                # await set (as a Task does when a future is yielded to it), wait
                # here, and let the coroutine read the result when resumed.
                yielded._asyncio_future_blocking = False
                try:
                    await yielded
                except asyncio.CancelledError:
                    if not yielded.cancelled():
                        raise
                except Exception:  # noqa: S110 - the coroutine reads it when resumed
                    pass
        except asyncio.CancelledError as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                done(stop.value, None)
                return
            except Exception as err:
                done(None, err)
                return
            continue
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            done(stop.value, None)
            return
        except Exception as exc:
            done(None, exc)
            return


def start(coro: Coroutine[Any, Any, Reply | None], done: Done) -> asyncio.Task[None]:
    """Run ``coro`` in a task; ``done(result, error)`` is called when it finishes."""
    return asyncio.get_running_loop().create_task(_finish(coro, done))


async def _finish(coro: Coroutine[Any, Any, Reply | None], done: Done) -> None:
    try:
        result = await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        done(None, exc)
    else:
        done(result, None)
