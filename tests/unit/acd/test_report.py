"""The queues' interval report (`acd.report`): the live statistics' definitions per interval, a
wait across a boundary offered in one interval and ended in the next, the tasks already waiting
when the report starts, and the refusals."""

from __future__ import annotations

import pytest

from ivrpowers.acd.events import AcdEvent
from ivrpowers.acd.report import interval_report, parse_interval

H = 3600.0
T0 = 1_795_000_000.0 - 1_795_000_000.0 % 86400  # a midnight (UTC)


def joined(task: str, at: float, queue: str = "support") -> AcdEvent:
    return AcdEvent("task_joined", T0 + at, queue=queue, task=task, channel="voice")


def answered(task: str, at: float, wait: float, queue: str = "support") -> AcdEvent:
    return AcdEvent("task_answered", T0 + at, queue=queue, task=task, agent="ana", detail={"wait": wait})


def ended(task: str, at: float, outcome: str, queue: str = "support", **detail: float) -> AcdEvent:
    return AcdEvent("task_ended", T0 + at, queue=queue, task=task, detail={"outcome": outcome, **detail})


DAY = [
    joined("old", -600), answered("old", 8 * H + 30, wait=600 + 8 * H + 30),  # waited overnight: a bad answer
    ended("old", 8 * H + 90, "handled", talk=60),
    joined("a", 8 * H + 100), answered("a", 8 * H + 110, wait=10), ended("a", 8 * H + 410, "handled", talk=300),
    joined("b", 8 * H + 200), ended("b", 8 * H + 260, "abandoned", wait=60),
    joined("c", 9 * H - 15), answered("c", 9 * H + 15, wait=30), ended("c", 9 * H + 135, "handled", talk=120),
    joined("s", 9 * H + 50, queue="sales"), ended("s", 9 * H + 70, "timeout", queue="sales", wait=20),
]


def test_each_interval_counts_what_began_and_what_ended_in_it() -> None:
    rows = interval_report(DAY, {"support": 20.0, "sales": 30.0}, T0 + 8 * H, T0 + 10 * H, H)
    by = {(r["queue"], r["start"]): r for r in rows}
    assert sorted(by) == [("sales", T0 + 8 * H), ("sales", T0 + 9 * H), ("support", T0 + 8 * H),
                          ("support", T0 + 9 * H)]
    eight = by[("support", T0 + 8 * H)]
    # a, b, and c (joined at 08:59:45); "old" joined the day before: answered here, offered there.
    assert (eight["offered"], eight["answered"], eight["abandoned"], eight["waits_ended"]) == (3, 2, 1, 3)
    assert eight["answered_in_sla"] == 1 and eight["service_level"] == pytest.approx(1 / 3, abs=1e-4)
    assert eight["asa"] == pytest.approx((600 + 8 * H + 30 + 10) / 2)
    assert eight["aht"] == pytest.approx((60 + 300) / 2) and eight["abandoned_wait_max"] == 60
    nine = by[("support", T0 + 9 * H)]
    assert (nine["offered"], nine["answered"], nine["handled"], nine["asa"]) == (0, 1, 1, 30)
    assert nine["service_level"] == 0.0  # 30 s against an SLA of 20 s
    sales = by[("sales", T0 + 9 * H)]
    assert (sales["offered"], sales["timeouts"], sales["abandon_rate"]) == (1, 1, 0.0)
    assert by[("sales", T0 + 8 * H)]["offered"] == 0 and by[("sales", T0 + 8 * H)]["service_level"] is None
    # Summed over the intervals, each task is offered once and ends once.
    assert sum(r["offered"] for r in rows) == 4 and sum(r["waits_ended"] for r in rows) == 5  # + "old"


def test_one_queue_a_last_short_interval_and_the_refusals() -> None:
    rows = interval_report(DAY, {"support": 20.0}, T0 + 8 * H, T0 + 9.5 * H, H, queues=["support"])
    assert [(r["queue"], r["end"] - r["start"]) for r in rows] == [("support", H), ("support", H / 2)]
    with pytest.raises(ValueError, match="since must come before until"):
        interval_report(DAY, {}, T0 + H, T0, H)
    with pytest.raises(ValueError, match="at most 2000 intervals"):
        interval_report(DAY, {}, T0, T0 + 31 * 86400, 60.0)
    assert parse_interval("15m") == 900 and parse_interval("1d") == 86400
    for bad in ("0m", "2d", "1w", "90", "h"):
        with pytest.raises(ValueError, match="interval"):
            parse_interval(bad)
