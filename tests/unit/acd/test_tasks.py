"""Tasks: leaving, parking for a callback, max_wait, turned away; deadlines; events that do not apply."""

from __future__ import annotations

import pytest

from ivrpowers.acd import (
    AcdError,
    AgentStateChanged,
    InvalidEvent,
    NoAgents,
    NotFound,
    QueueConfig,
    Router,
    TaskTimedOut,
)

from .helpers import agent, cancels, offers, ring, router, task


def test_a_caller_hanging_up_while_ringing_cancels_the_offers() -> None:
    r = router([QueueConfig("q", strategy="ringall")], [agent("ana", "q"), agent("bob", "q")])
    r.arrive(task("c1"), 0)
    decisions = r.end_task("c1", 3)
    assert cancels(decisions) == [("c1", "ana", "task_ended"), ("c1", "bob", "task_ended")]
    assert r.task_ids() == [] and r.agent("ana").state == "available"


def test_a_caller_hanging_up_while_waiting_just_leaves() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.pause("ana", "brief", 0)
    r.arrive(task("c1"), 0)
    r.arrive(task("c2"), 1)
    assert r.end_task("c1", 2) == []
    assert r.waiting("q") == ["c2"]


def test_a_parked_callback_keeps_its_place_and_is_served_first_when_resumed() -> None:
    r = router([QueueConfig("q", strategy="linear")], [agent("ana", "q"), agent("bob", "q")])
    r.pause("bob", "brief", 0)
    r.arrive(task("cb", at=1), 1)  # rings ana
    decisions = r.park("cb", 2)  # the caller asks for a callback
    assert cancels(decisions) == [("cb", "ana", "task_parked")]
    assert offers(decisions) == [] and r.task("cb").status == "parked"
    assert offers(r.arrive(task("c2", at=3), 3)) == [("c2", "ana")]  # parked: not offered
    r.arrive(task("c3", at=4), 4)
    assert r.waiting("q") == ["c3"]
    assert r.resume("cb", 50) == []
    assert r.waiting("q") == ["cb", "c3"]  # ahead of those who came after it
    assert offers(r.unpause("bob", 51)) == [("cb", "bob")]


def test_a_released_callback_goes_back_parked_to_its_place_and_its_agent_wraps_up() -> None:
    r = router([QueueConfig("q", strategy="linear", wrapup_seconds=5)], [agent("ana", "q")])
    r.arrive(task("cb", at=1), 1)
    r.answer("cb", "ana", 2)  # the agent took the callback; the customer does not answer
    r.arrive(task("c2", at=3), 3)
    decisions = r.release("cb", 4)
    assert offers(decisions) == [] and r.task("cb").status == "parked" and r.task("cb").agent is None
    assert r.agent("ana").state == "wrap_up" and r.agent("ana").active == ()
    assert r.resume("cb", 5) == [] and r.waiting("q") == ["cb", "c2"]  # ahead of who came after it
    assert offers(r.tick(9)) == [("cb", "ana")]
    with pytest.raises(InvalidEvent):
        r.release("c2", 10)  # waiting, not answered


def test_parking_stops_max_wait_and_resuming_starts_it_again() -> None:
    r = router([QueueConfig("q", max_wait=60)], [agent("ana", "q")])
    r.pause("ana", "brief", 0)
    r.arrive(task("cb"), 0)
    assert r.next_deadline() == 60
    r.park("cb", 10)
    assert r.next_deadline() is None
    assert r.tick(100) == []
    r.resume("cb", 200)
    assert r.next_deadline() == 260
    assert r.tick(260) == [TaskTimedOut("cb")]


def test_parking_or_resuming_twice_changes_nothing_and_answered_tasks_cannot_be_parked() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.arrive(task("c1"), 0)
    assert r.resume("c1", 1) == []  # not parked
    r.park("c1", 2)
    assert r.park("c1", 3) == []
    r.resume("c1", 4)
    r.answer("c1", "ana", 5)
    with pytest.raises(InvalidEvent):
        r.park("c1", 6)


def test_max_wait_takes_the_task_out_of_the_queue_even_ringing() -> None:
    r = router([QueueConfig("q", max_wait=30, ring_timeout=60)], [agent("ana", "q")])
    r.arrive(task("c1"), 10)
    decisions = r.tick(40)
    assert cancels(decisions) == [("c1", "ana", "max_wait")]
    assert decisions[-1] == TaskTimedOut("c1")
    assert r.task_ids() == [] and r.agent("ana").state == "available"


def test_max_wait_counts_from_joining_and_spares_answered_tasks() -> None:
    r = router([QueueConfig("q", max_wait=30)], [agent("ana", "q")])
    r.arrive(task("c1", at=-100), 0)  # moved from another queue: keeps its place, not its clock
    r.answer("c1", "ana", 5)
    r.arrive(task("c2"), 6)
    assert r.next_deadline() == 36
    assert r.tick(36) == [TaskTimedOut("c2")]
    assert r.task("c1").status == "active"


def test_a_queue_with_nobody_logged_in_turns_tasks_away_unless_join_empty() -> None:
    r = router([QueueConfig("q"), QueueConfig("open", join_empty=True)], [agent("ana", "q", "open")], login=False)
    assert r.arrive(task("c1"), 0) == [NoAgents("c1")]
    assert r.task_ids() == []
    assert r.arrive(task("c2", "open"), 0) == [] and r.waiting("open") == ["c2"]
    r.login("ana", 1)
    r.pause("ana", "brief", 1)
    assert r.arrive(task("c3"), 2) == []  # paused is logged in: it waits


def test_the_last_member_logging_out_sends_the_waiting_tasks_away() -> None:
    r = router([QueueConfig("q"), QueueConfig("open", join_empty=True)], [agent("ana", "q", "open"), agent("bob", "q")])
    for a in ("ana", "bob"):
        r.pause(a, "brief", 0)
    r.arrive(task("c1", at=1), 1)
    r.arrive(task("c2", at=2), 2)
    r.arrive(task("cb", at=0), 2)
    r.park("cb", 3)
    r.arrive(task("o1", "open"), 3)
    assert r.logout("bob", 4) == [AgentStateChanged("bob", "paused", "logged_out", None, 4)]
    decisions = r.logout("ana", 5)
    assert [d for d in decisions if isinstance(d, NoAgents)] == [NoAgents("c1"), NoAgents("c2")]
    assert sorted(r.task_ids()) == ["cb", "o1"]  # the parked callback stays; "open" waits for agents
    assert r.resume("cb", 6) == [] and r.waiting("q") == ["cb"]


def test_next_deadline_is_the_earliest_pending_one() -> None:
    r = router([QueueConfig("q", ring_timeout=20, wrapup_seconds=15, max_wait=100, relaxation=((50, 1),))],
               [agent("ana", "q"), agent("bob", "q")])
    assert r.next_deadline() is None
    r.arrive(task("c1"), 0)
    r.arrive(task("c2"), 5)
    assert r.next_deadline() == 20  # c1 rings out
    r.answer("c1", "ana", 6)
    assert r.next_deadline() == 25  # c2 rings out
    r.answer("c2", "bob", 7)
    r.end_task("c1", 8)
    assert r.next_deadline() == 23  # ana's wrap-up
    r.end_wrap_up("ana", 9)
    r.pause("ana", "brief", 9)
    r.arrive(task("c3", skills={"billing": 2}), 10)
    assert r.next_deadline() == 50  # c3's relaxation step, before its max_wait at 110
    r.tick(50)
    assert r.next_deadline() == 110


def test_a_late_tick_runs_the_deadlines_in_order() -> None:
    def scenario(ticks: list[float]) -> list[object]:
        r = router([QueueConfig("q", ring_timeout=10, wrapup_seconds=7, strategy="round-robin")],
                   [agent("ana", "q"), agent("bob", "q")])
        r.arrive(task("c1"), 0)
        r.answer("c1", "ana", 1)
        r.arrive(task("c2"), 2)  # rings bob until 12
        r.end_task("c1", 3)  # ana wraps up until 10
        out: list[object] = []
        for now in ticks:
            out += [(type(d).__name__, getattr(d, "task", None), d.agent if hasattr(d, "agent") else None)
                    for d in r.tick(now)]
        return out

    assert scenario([10, 12]) == scenario([12]) == [
        ("AgentStateChanged", None, "ana"),  # wrap-up ends at 10
        ("CancelOffer", "c2", "bob"), ("AgentStateChanged", None, "bob"),  # c2 rings out at 12
        ("Offer", "c2", "ana"), ("AgentStateChanged", None, "ana"),
    ]


def test_unknown_names_and_events_that_do_not_apply_raise_and_change_nothing() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q"), agent("bob", "q")])
    r.arrive(task("c1"), 0)
    before = r.snapshot()
    with pytest.raises(NotFound):
        r.arrive(task("x", "nope"), 1)
    with pytest.raises(NotFound):
        r.login("nobody", 1)
    with pytest.raises(NotFound):
        r.end_task("nothing", 1)
    with pytest.raises(InvalidEvent):
        r.arrive(task("c1"), 1)  # in use
    with pytest.raises(InvalidEvent):
        r.arrive(task("m1", channel="chat"), 1)  # q takes voice only
    other = "bob" if ring(r, "c1") == ["ana"] else "ana"
    for event in (r.answer, r.decline, r.offer_timed_out):
        with pytest.raises(InvalidEvent):
            event("c1", other, 1)
    r.logout(other, 1)
    with pytest.raises(InvalidEvent):
        r.pause(other, "lunch", 1)
    with pytest.raises(AcdError):
        r.remove_agent(ring(r, "c1")[0])  # logged in
    with pytest.raises(AcdError):
        r.remove_queue("q")  # has tasks and members
    r.login(other, 0)  # as it was
    assert r.snapshot() == before


def test_queues_and_agents_come_and_go() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.set_queue(QueueConfig("new", join_empty=True), 1)
    r.arrive(task("c1", "new"), 2)
    r.set_agent(agent("bob", "new"), 3)
    assert offers(r.login("bob", 4)) == [("c1", "bob")]
    r.end_task("c1", 5)
    r.logout("bob", 6)
    r.remove_agent("bob")
    r.remove_queue("new")
    assert r.agent_ids() == ["ana"] and [q.name for q in r.queues] == ["q"]


def test_a_queue_that_stops_taking_a_channel_still_serves_the_tasks_it_holds() -> None:
    r = router([QueueConfig("q", channels=frozenset({"voice", "chat"}))], [agent("ana", "q")])
    r.pause("ana", "brief", 0)
    r.arrive(task("m1", channel="chat"), 1)
    r.set_queue(QueueConfig("q", channels=frozenset({"voice"})), 2)
    with pytest.raises(InvalidEvent):
        r.arrive(task("m2", channel="chat"), 3)
    restored = Router.restore(r.snapshot())
    assert offers(r.unpause("ana", 4)) == offers(restored.unpause("ana", 4)) == [("m1", "ana")]


def test_changing_a_queue_recomputes_its_tasks_relaxation() -> None:
    r = router([QueueConfig("q")], [agent("ana", "q")])
    r.arrive(task("c1", at=0, skills={"billing": 3}), 0)
    assert r.waiting("q") == ["c1"]
    assert offers(r.set_queue(QueueConfig("q", relaxation=((10, 3),)), 20)) == [("c1", "ana")]
