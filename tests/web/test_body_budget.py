"""The idle bound of a request body (web/limits.py ``BodyBudget``) against other cancellations.

The bound cancels the task waiting in ``receive()`` and turns that one cancellation into
``RequestTimeout``; a cancellation by anyone else (an anyio scope, the server stopping) must go
on as a cancellation, also after a stall that coincided with one.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from pacsbridge.errors import RequestTimeout
from pacsbridge.web.limits import BodyBudget


def _silent_budget(idle_seconds: float) -> BodyBudget:
    async def receive() -> dict:
        await asyncio.Event().wait()  # the client sends nothing more
        raise AssertionError("unreachable")

    return BodyBudget(receive, 10**9, idle_seconds, None)


def test_a_body_that_stops_raises_request_timeout_after_the_idle_bound() -> None:
    async def scenario() -> float:
        budget = _silent_budget(0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeout):
            await budget()
        budget.close()
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        return loop.time() - started

    took = asyncio.run(scenario())
    assert 0.2 <= took < 1.0


def test_a_stall_that_came_with_a_scopes_cancel_leaves_later_cancellations_alone() -> None:
    async def scenario() -> None:
        budget = _silent_budget(1000.0)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        with anyio.CancelScope() as first:

            def both() -> None:  # the bound and a scope cancel the same wait at once
                first.cancel()
                budget._waiting = (task, loop.time() - 2000.0)
                budget._check()

            loop.call_soon(both)
            await budget()
        assert first.cancelled_caught  # the scope's cancellation went on to the scope
        with anyio.CancelScope() as second:  # e.g. Starlette's is_disconnected()
            second.cancel()
            await budget()  # a RequestTimeout here would answer 408 for a cancellation
        assert second.cancelled_caught and task.cancelling() == 0
        budget.close()

    asyncio.run(scenario())
