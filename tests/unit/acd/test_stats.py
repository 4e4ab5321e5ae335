"""Live ACD statistics from the event stream: a scripted day with every outcome, the sliding window,
the day changing with calls in progress, agents, and a replay that starts mid-call."""

from __future__ import annotations

from typing import Any

from ivrpowers.acd.events import AcdEvent
from ivrpowers.acd.stats import Stats

DAY = 1_700_000_000.0


def ev(kind: Any, at: float, queue: str | None = "support", task: str | None = None, agent: str | None = None,
       **detail: Any) -> AcdEvent:
    return AcdEvent(kind=kind, at=DAY + at, queue=queue, task=task, agent=agent,
                    channel="voice" if task else None, detail=detail)


def state(at: float, agent: str, old: str, new: str, reason: str | None = None) -> AcdEvent:
    return ev("agent_state", at, queue=None, agent=agent, old=old, new=new, reason=reason)


def fresh(window: float = 900.0) -> Stats:
    stats = Stats(window=window)
    stats.configure(sla={"support": 20.0, "sales": 30.0}, members={"support": ["ana", "bo"], "sales": ["bo"]})
    stats.new_day(DAY)
    return stats


def feed(stats: Stats, *events: AcdEvent) -> None:
    for event in events:
        stats.feed(event)


def scripted_day() -> Stats:
    stats = fresh()
    feed(stats,
         state(0, "ana", "logged_out", "available"), state(0, "bo", "logged_out", "available"),
         # t1: answered in 10 s by ana (in SLA), talks 60 s, wraps up 15 s.
         ev("task_joined", 100, task="t1", priority=0), ev("task_offered", 102, task="t1", agent="ana", expires=122),
         state(102, "ana", "available", "reserved"),
         ev("offer_ended", 110, task="t1", agent="ana", outcome="answered", ring=8),
         ev("task_answered", 110, task="t1", agent="ana", wait=10), state(110, "ana", "reserved", "busy"),
         ev("task_ended", 170, task="t1", agent="ana", outcome="handled", wait=10, talk=60),
         state(170, "ana", "busy", "wrap_up"), state(185, "ana", "wrap_up", "available"),
         # t2: bo declines, ana lets it ring out, bo answers at 40 s (out of SLA), talks 30 s.
         ev("task_joined", 200, task="t2"), ev("task_offered", 201, task="t2", agent="bo"),
         ev("offer_ended", 205, task="t2", agent="bo", outcome="declined", ring=4),
         ev("task_offered", 206, task="t2", agent="ana"),
         ev("offer_ended", 226, task="t2", agent="ana", outcome="no_answer", ring=20),
         state(226, "ana", "reserved", "paused", "ring_no_answer"),
         ev("task_answered", 240, task="t2", agent="bo", wait=40), state(240, "bo", "available", "busy"),
         ev("task_ended", 270, task="t2", agent="bo", outcome="handled", wait=40, talk=30),
         state(270, "bo", "busy", "wrap_up"),
         # t3 abandons after 25 s, t4 after 5 s; t5 times out; t6 leaves; t7 is parked for a callback.
         ev("task_joined", 300, task="t3"), ev("task_ended", 325, task="t3", outcome="abandoned", wait=25),
         ev("task_joined", 330, task="t4"), ev("task_ended", 335, task="t4", outcome="abandoned", wait=5),
         ev("task_joined", 340, task="t5"), ev("task_ended", 640, task="t5", outcome="timeout", wait=300),
         ev("task_joined", 350, task="t6"), ev("task_ended", 360, task="t6", outcome="left", wait=10),
         ev("task_joined", 370, task="t7"), ev("task_parked", 380, task="t7", wait=10),
         # t8 and t9 still wait; t10 in sales is talking.
         ev("task_joined", 600, task="t8"), ev("task_joined", 650, task="t9"),
         ev("task_joined", 600, queue="sales", task="t10"),
         ev("task_answered", 610, queue="sales", task="t10", agent="bo", wait=10))
    return stats


def test_a_day_with_every_outcome_adds_up() -> None:
    stats = scripted_day()
    support = stats.queue("support", DAY + 700)
    day = support["day"]
    assert {k: day[k] for k in ("offered", "answered", "answered_in_sla", "abandoned", "timeouts", "left",
                                "callbacks", "no_agents", "failed", "handled", "waits_ended")} == {
        "offered": 9, "answered": 2, "answered_in_sla": 1, "abandoned": 2, "timeouts": 1, "left": 1,
        "callbacks": 1, "no_agents": 0, "failed": 0, "handled": 2, "waits_ended": 7}
    assert day["service_level"] == round(1 / 7, 4) and day["abandon_rate"] == round(2 / 7, 4)
    assert day["asa"] == 25.0  # (10 + 40) / 2
    assert day["aht"] == 52.5  # (60 + 15 wrap-up + 30) / 2; bo's wrap-up is not over yet
    assert (day["abandoned_wait_avg"], day["abandoned_wait_max"]) == (15.0, 25.0)
    assert (day["talk_time"], day["wrap_up_time"]) == (90.0, 15.0)
    assert (support["waiting"], support["longest_wait"], support["callbacks_waiting"]) == (2, 100.0, 1)
    assert support["agents"] == {"logged_out": 0, "available": 0, "reserved": 0, "busy": 0, "wrap_up": 1,
                                 "paused": 1, "unreachable": 0}
    # Everything happened within the last 15 minutes: the window is the day.
    assert {k: v for k, v in support["window"].items() if k != "seconds"} == \
        {k: v for k, v in day.items() if k != "since"}
    sales = stats.queue("sales", DAY + 700)
    assert (sales["day"]["offered"], sales["talking"], sales["waiting"], sales["sla_seconds"]) == (1, 1, 0, 30.0)
    assert sales["agents"]["wrap_up"] == 1 and sum(sales["agents"].values()) == 1  # bo, as last told
    assert set(stats.queues(DAY + 700)) == {"support", "sales"}


def test_agents_have_their_state_and_day() -> None:
    stats = scripted_day()
    ana = stats.agent("ana", DAY + 700)
    assert (ana["state"], ana["reason"], ana["since"], ana["time_in_state"]) == ("paused", "ring_no_answer",
                                                                                 DAY + 226, 474.0)
    assert ana["day"] | {"since": None} == {"since": None, "handled": 1, "talk_time": 60.0, "wrap_up_time": 15.0,
                                             "offers": 2, "answered": 1, "declined": 0, "not_answered": 1}
    bo = stats.agent("bo", DAY + 700)
    assert (bo["state"], bo["queues"], bo["day"]["declined"], bo["day"]["handled"]) == ("wrap_up", ["sales",
                                                                                                   "support"], 1, 1)
    nobody = stats.agent("nobody", DAY + 700)
    assert nobody["state"] == "logged_out" and nobody["day"]["handled"] == 0 and not stats.knows_agent("nobody")
    assert set(stats.agents(DAY + 700)) == {"ana", "bo"}


def test_the_window_lets_old_events_go_and_keeps_the_longest_abandon_that_is_still_in_it() -> None:
    stats = fresh(window=100.0)
    feed(stats, ev("task_joined", 0, task="a"), ev("task_ended", 50, task="a", outcome="abandoned", wait=50),
         ev("task_joined", 60, task="b"), ev("task_ended", 80, task="b", outcome="abandoned", wait=20),
         ev("task_joined", 120, task="c"), ev("task_ended", 130, task="c", outcome="abandoned", wait=10))
    window = stats.queue("support", DAY + 130)["window"]
    assert (window["offered"], window["abandoned"], window["abandoned_wait_max"]) == (2, 3, 50.0)
    window = stats.queue("support", DAY + 155)["window"]  # the 50 s abandon (at 50) has left
    assert (window["offered"], window["abandoned"], window["abandoned_wait_max"]) == (2, 2, 20.0)
    assert window["abandoned_wait_avg"] == 15.0
    feed(stats, ev("task_joined", 160, task="d"), ev("task_ended", 172, task="d", outcome="abandoned", wait=12))
    window = stats.queue("support", DAY + 185)["window"]  # the 20 s one (at 80) has left too
    assert (window["abandoned"], window["abandoned_wait_max"]) == (2, 12.0)
    window = stats.queue("support", DAY + 10_000)["window"]
    assert (window["offered"], window["abandoned"], window["abandoned_wait_max"], window["asa"]) == (0, 0, None, None)
    assert stats.queue("support", DAY + 10_000)["day"]["abandoned"] == 4


def test_window_memory_is_what_happened_within_it() -> None:
    stats = fresh(window=60.0)
    for i in range(5000):  # a call every 2 s, each waiting 1 s then abandoning
        feed(stats, ev("task_joined", 2 * i, task=f"t{i}"),
             ev("task_ended", 2 * i + 1, task=f"t{i}", outcome="abandoned", wait=1))
    window = stats._queues["support"].window
    assert len(window.entries) <= 62 and len(window.abandons) <= 62
    assert stats.queue("support", DAY + 10_000)["day"]["abandoned"] == 5000
    assert not stats._tasks


def test_a_new_day_starts_the_counters_again_and_carries_calls_in_progress() -> None:
    stats = scripted_day()
    stats.new_day(DAY + 86400)
    support = stats.queue("support", DAY + 86400)
    # t8 and t9 wait, t7 is a parked callback: the three carry over (offered again, waiting still).
    assert (support["day"]["offered"], support["day"]["answered"], support["waiting"]) == (3, 0, 2)
    assert support["window"]["offered"] == 3 and support["day"]["since"] == DAY + 86400
    feed(stats, ev("task_answered", 86410, task="t8", agent="ana", wait=85810))
    assert stats.queue("support", DAY + 86410)["day"]["answered"] == 1
    assert stats.agent("ana", DAY + 86410)["day"]["handled"] == 0 and stats.agent("ana", DAY + 86410)["state"] == \
        "paused"
    # A callback's later call counts as the agent's work, not as a queue answer.
    feed(stats, ev("task_answered", 86420, task="t7", agent="bo", wait=0),
         ev("task_ended", 86480, task="t7", agent="bo", outcome="handled", talk=60))
    day = stats.queue("support", DAY + 86480)["day"]
    assert (day["answered"], day["callbacks"], day["handled"], day["talk_time"]) == (1, 0, 1, 60.0)


def test_tasks_first_heard_of_midway_count_from_then() -> None:
    stats = fresh()  # a replay that starts after t1 joined (yesterday, say)
    feed(stats, ev("task_answered", 30, task="t1", agent="ana", wait=45),
         ev("task_ended", 90, task="t1", agent="ana", outcome="handled", talk=60),
         ev("task_ended", 95, task="t2", outcome="abandoned", wait=12))
    day = stats.queue("support", DAY + 100)["day"]
    assert (day["offered"], day["answered"], day["answered_in_sla"], day["handled"], day["abandoned"]) == (2, 1, 0,
                                                                                                          1, 1)
    assert (day["asa"], day["abandoned_wait_max"]) == (45.0, 12.0)


def test_a_task_joining_again_after_a_restart_is_offered_once() -> None:
    stats = fresh()
    feed(stats, ev("task_joined", 0, task="t1"), ev("task_joined", 40, task="t1"))
    support = stats.queue("support", DAY + 50)
    assert (support["day"]["offered"], support["waiting"], support["longest_wait"]) == (1, 1, 50.0)


def test_unknown_queues_and_malformed_details_do_no_harm() -> None:
    stats = fresh()
    feed(stats, ev("task_joined", 0, queue="gone", task="x"),
         ev("task_ended", 5, queue=None, task="x", outcome="mystery", wait="soon"),
         ev("task_joined", 6, queue=None, task="y"), ev("agent_state", 7, queue=None, agent=None))
    gone = stats.queue("gone", DAY + 10)
    assert (gone["day"]["offered"], gone["day"]["failed"], gone["day"]["waits_ended"]) == (1, 1, 1)
    assert stats.knows_queue("gone") and not stats.knows_queue("never")
    assert stats.queue("never", DAY + 10)["day"]["offered"] == 0
    stats.new_day(DAY + 86400)
    assert not stats.knows_queue("gone")  # not configured, nothing in progress: forgotten
