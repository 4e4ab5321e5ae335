"""Start a coroutine now, in the caller's turn of the event loop: what Python 3.12's eager tasks do.

`asyncio.create_task` runs a coroutine's first step on a later turn of the loop, after whatever
is ready before it (the rest of a batch of events, other calls' work). A request the caller wants
on the wire at once (the answer to a new call) is written by its first step; the wait for the
reply, if any, goes on in a task.

Only for code that does not look at `asyncio.current_task()` before it first waits (timeouts do,
aiohttp's HTTP requests do): during that first step the current task is the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_now(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Run `coro` up to its first suspension now; its outcome (and the rest of it) as a future."""
    loop = asyncio.get_running_loop()
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        result: asyncio.Future[T] = loop.create_future()
        result.set_result(done.value)
        return result
    except Exception as exc:  # the future carries it, as a task would
        failed: asyncio.Future[T] = loop.create_future()
        failed.set_exception(exc)
        return failed
    return loop.create_task(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    """Drive `coro` on from where `run_now` left it, as its task would have: it waits on an asyncio
    future (`await future`) or on None (a bare yield, `asyncio.sleep(0)`)."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                # The coroutine's yield marked it as waited on, which a task takes back on receipt
                # (asyncio.Task.__step); awaiting it again here needs the same.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except (Exception, asyncio.CancelledError) as exc:  # passed on into the coroutine
            if waiting_on is None or not waiting_on.done():
                # Cancelled while its future still waits: the coroutine hears it where it waits.
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
                continue
            # Else the future failed or was cancelled with the task: its own `result()` raises
            # inside the coroutine when it resumes.
        try:
            waiting_on = coro.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
