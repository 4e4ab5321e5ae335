"""The event loop's lag in /health: a loop held by work is reported late, as a stall, then forgotten
once out of the window."""

from __future__ import annotations

import time

from ivrpowers.loop_lag import LoopLag

from .waiting import until


def test_the_worst_lag_of_the_window_and_the_stalls_since_start() -> None:
    lag = LoopLag(window=10.0, alarm=0.5)
    lag.record(100.0, 0.7)
    lag.record(101.0, 0.02)
    assert (lag.worst(), lag.stalls) == (0.7, 1)
    assert "700 ms late" in (lag.health()["problem"] or "")
    lag.record(110.5, 0.03)  # the stall is more than 10 s old
    assert lag.health() == {"loop_lag_ms": 30.0, "loop_stalls": 1, "problem": None}


async def test_a_loop_held_by_work_is_seen_late_then_recovers() -> None:
    lag = LoopLag(interval=0.01, window=0.5, alarm=0.2)
    lag.start()
    try:
        await until(lambda: lag._recent)  # the timer runs
        assert lag.health()["problem"] is None
        time.sleep(0.3)  # the work that holds the loop (what is measured, not a wait)
        await until(lambda: lag.stalls == 1)
        health = lag.health()
        assert health["loop_lag_ms"] >= 250 and health["problem"] is not None
        await until(lambda: lag.health()["problem"] is None, timeout=5)
        assert lag.stalls == 1
    finally:
        await lag.stop()
