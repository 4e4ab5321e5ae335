"""Waiting for a condition in a test: polls it while the other tasks run, fails after `timeout`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until `predicate()` (or the awaitable it returns) is true; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not await _value(predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value
