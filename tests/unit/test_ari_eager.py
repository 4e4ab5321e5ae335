"""`run_now`: a coroutine's first step runs in the caller's turn; the rest behaves as under a task."""

from __future__ import annotations

import asyncio

import pytest

from ivrpowers.ari.eager import run_now


async def test_the_first_step_runs_before_run_now_returns() -> None:
    seen: list[str] = []
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def request() -> str:
        seen.append("sent")
        return await reply

    outcome = run_now(request())
    assert seen == ["sent"]  # a task's first step would not have run yet
    assert not outcome.done()
    reply.set_result("200")
    assert await outcome == "200"


async def test_a_coroutine_that_never_waits_is_done_at_once() -> None:
    async def quick() -> int:
        return 7

    async def broken() -> int:
        raise ValueError("bad")

    done = run_now(quick())
    assert done.done() and done.result() == 7
    failed = run_now(broken())
    with pytest.raises(ValueError, match="bad"):
        await failed


async def test_exceptions_of_awaited_futures_reach_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[None] = loop.create_future()
    handled: list[str] = []

    async def body() -> str:
        try:
            await first
        except KeyError:
            handled.append("caught")
        await asyncio.sleep(0)  # a bare yield
        await asyncio.sleep(0.001)
        return "after"

    outcome = run_now(body())
    first.set_exception(KeyError("x"))
    assert await outcome == "after"
    assert handled == ["caught"]


async def test_cancelling_it_cancels_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()
    cleaned: list[str] = []

    async def body() -> None:
        try:
            await never
        finally:
            cleaned.append("finally")

    outcome = run_now(body())
    await asyncio.sleep(0)
    outcome.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome
    assert cleaned == ["finally"]
    assert never.cancelled()


async def test_a_cancellation_the_coroutine_swallows_lets_it_finish() -> None:
    loop = asyncio.get_running_loop()
    never: asyncio.Future[None] = loop.create_future()

    async def body() -> str:
        try:
            await never
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(0)
        return "went on"

    outcome = run_now(body())
    await asyncio.sleep(0)
    outcome.cancel()
    assert await outcome == "went on"
