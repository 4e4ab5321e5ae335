"""How late the controller's event loop runs what is due: the one figure that says it is overloaded.

Every call's events, digits included, are handled on one event loop. When something holds it (a
burst of work, a long garbage collection, CPU starvation on a loaded host), nothing fails: every
call just waits, and callers hear it as late prompts and late answers. A timer due every
`interval` seconds measures the wait: how long after its due time it runs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import suppress
from typing import Any


class LoopLag:
    def __init__(self, *, interval: float = 0.1, window: float = 10.0, alarm: float = 0.5) -> None:
        self.interval = interval
        self.window = window  # `health` reports the worst lag over this many seconds
        self.alarm = alarm  # a lag this long is a stall, and degrades health while in the window
        self.stalls = 0  # since start
        self._recent: deque[tuple[float, float]] = deque()  # (loop time, lag), the last `window` seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.record(now, max(0.0, now - due))

    def record(self, now: float, lag: float) -> None:
        if lag >= self.alarm:
            self.stalls += 1
        self._recent.append((now, lag))
        while self._recent and self._recent[0][0] < now - self.window:
            self._recent.popleft()

    def worst(self) -> float:
        """The longest lag (seconds) in the last `window` seconds."""
        return max((lag for _, lag in self._recent), default=0.0)

    def health(self) -> dict[str, Any]:
        worst = self.worst()
        problem = None
        if worst >= self.alarm:
            problem = (f"event loop {worst * 1000:.0f} ms late in the last {self.window:.0f} s: every call's "
                       "events wait (the controller is overloaded or starved of CPU)")
        return {"loop_lag_ms": round(worst * 1000, 1), "loop_stalls": self.stalls, "problem": problem}
